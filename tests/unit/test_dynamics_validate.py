"""Step 1 validators: property tests over hosts, ports and usernames."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from bot.dynamics.validate import validate_client_pair, validate_dynamics_url, validate_username

label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
hosts = st.lists(label, min_size=1, max_size=4).map(".".join)
ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))
paths = st.sampled_from(["", "/", "/main.aspx?appid=1&pagetype=entitylist", "/api/data/v9.2/", "//x"])


@given(host=hosts, port=ports, path=paths, upper=st.booleans())
def test_any_https_host_and_port_is_accepted_and_normalized(host: str, port: int | None, path: str, upper: bool) -> None:
    netloc = host.upper() if upper else host
    if port is not None:
        netloc += f":{port}"
    normalized, error = validate_dynamics_url(f"  https://{netloc}{path}  ")
    assert error is None
    expected_port = "" if port in (None, 443) else f":{port}"
    assert normalized == f"https://{host}{expected_port}"
    assert validate_dynamics_url(normalized) == (normalized, None)


@given(host=hosts, port=ports)
def test_plain_http_is_refused(host: str, port: int | None) -> None:
    netloc = host + (f":{port}" if port else "")
    _, error = validate_dynamics_url(f"http://{netloc}")
    assert error and "https" in error


def test_url_edge_cases() -> None:
    assert validate_dynamics_url("org.crm4.dynamics.com") == ("https://org.crm4.dynamics.com", None)
    assert validate_dynamics_url("https://crm.contoso.internal:8443/") == ("https://crm.contoso.internal:8443", None)
    assert validate_dynamics_url("")[1]
    assert validate_dynamics_url("https://user:pw@org.crm.dynamics.com")[1]
    assert validate_dynamics_url("https://org.crm.dynamics.com:99999")[1]
    assert validate_dynamics_url("https://exa mple.com")[1]


@given(local=st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=20), domain=hosts,
       tld=st.sampled_from(["com", "org", "onmicrosoft.com"]))
def test_upn_usernames_are_accepted(local: str, domain: str, tld: str) -> None:
    assert validate_username(f"{local}@{domain}.{tld}") is None


@given(domain=label, user=label)
def test_domain_backslash_user_is_explained(domain: str, user: str) -> None:
    message = validate_username(f"{domain.upper()}\\{user}")
    assert message is not None
    assert "user@domain.com" in message and "Entra ID" in message


def test_other_bad_usernames() -> None:
    assert validate_username("") is not None
    assert validate_username("sync") is not None
    assert validate_username("a@b@c.com") is not None
    assert "DOMAIN" not in (validate_username("sync") or "")


@given(secret=st.text(min_size=1, max_size=40), guid=st.uuids())
def test_client_pair_both_or_neither(secret: str, guid: object) -> None:
    cid = str(guid)
    assert validate_client_pair(cid, secret) == {}
    assert validate_client_pair(cid.upper(), secret) == {}
    assert validate_client_pair("", "") == {}
    assert validate_client_pair(None, None) == {}
    assert set(validate_client_pair(cid, "")) == {"client_secret"}
    assert set(validate_client_pair("", secret)) == {"client_id"}
    assert "GUID" in validate_client_pair("not-a-guid", secret)["client_id"]
