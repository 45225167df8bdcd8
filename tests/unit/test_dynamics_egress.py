"""Where the bot may connect for Dynamics: the host rule, the allowlist, the bounded lookup at submit,
and the transport that connects only to the address it validated. No test sends traffic off loopback:
names that "resolve" elsewhere are answered by a stub resolver, and connections by a recording backend."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from bot.config import Settings
from bot.dynamics import egress
from bot.dynamics.egress import GuardedTransport, HostAllowlist, check_host, checked_dynamics_url
from bot.dynamics.errors import HostLookupFailed, HostRefused
from bot.tls import ssl_context
from tests.support.listener import listener

NOBODY = HostAllowlist()
PUBLIC = "20.50.60.70"  # never contacted: connections go to the recording backend


class Resolver:
    """A stub for `socket.getaddrinfo`: one answer list per call for each name, the last repeated."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        calls = self.answers[host]
        addresses = calls.pop(0) if len(calls) > 1 else calls[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resolver]:
    stub = Resolver({})
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    yield stub


class RecordingBackend(httpcore.NetworkBackend):
    """Stands in for the network: records where it was asked to connect, then fails the connect."""

    def __init__(self) -> None:
        self.connected_to: list[tuple[str, int]] = []

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: object = None) -> httpcore.NetworkStream:
        self.connected_to.append((host, port))
        raise httpcore.ConnectError("recorded, not connected")


@pytest.mark.parametrize(("host", "kind", "shown"), [
    ("127.0.0.1", "loopback", "127.0.0.1"),
    ("2130706433", "loopback", "127.0.0.1"),
    ("0x7f.0.0.1", "loopback", "127.0.0.1"),
    ("0177.0.0.1", "loopback", "127.0.0.1"),
    ("127.1", "loopback", "127.0.0.1"),
    ("[::1]", "loopback", "::1"),
    ("[::ffff:127.0.0.1]", "loopback", "127.0.0.1"),
    ("10.1.2.3", "private", "10.1.2.3"),
    ("192.168.0.10", "private", "192.168.0.10"),
    ("172.16.5.4", "private", "172.16.5.4"),
    ("[fd00::1]", "private", "fd00::1"),
    ("169.254.169.254", "link-local", "169.254.169.254"),
    ("[fe80::1]", "link-local", "fe80::1"),
    ("224.0.0.251", "multicast", "224.0.0.251"),
    ("240.0.0.1", "reserved", "240.0.0.1"),
    ("0.0.0.0", "unspecified", "0.0.0.0"),
    ("100.64.0.1", "non-public", "100.64.0.1"),
])
def test_numeric_hosts_in_every_form_are_refused_without_a_lookup(
    resolver: Resolver, host: str, kind: str, shown: str
) -> None:
    with pytest.raises(HostRefused) as refused:
        check_host(f"https://{host}:8443", NOBODY)
    assert (refused.value.kind, refused.value.address) == (kind, shown)
    assert resolver.asked == []
    _, error = checked_dynamics_url(f"https://{host}:8443", NOBODY)
    assert error == (f"{host.strip('[]')} resolves to a {kind} address ({shown}). The bot does "
                     "not connect to private, loopback or link-local addresses unless DYNAMICS_HOST_ALLOWLIST "
                     "lists the host.")


def test_a_name_that_resolves_to_a_private_address_is_refused(resolver: Resolver) -> None:
    resolver.answers = {"crm.contoso.example": [["10.0.0.5"]], "mixed.contoso.example": [[PUBLIC, "192.168.1.9"]]}
    _, error = checked_dynamics_url("https://crm.contoso.example", NOBODY)
    assert error and error.startswith("crm.contoso.example resolves to a private address (10.0.0.5).")
    _, error = checked_dynamics_url("https://mixed.contoso.example", NOBODY)
    assert error and "private address (192.168.1.9)" in error  # any non-public answer refuses


def test_a_name_on_public_addresses_is_accepted(resolver: Resolver) -> None:
    resolver.answers = {"org.crm.dynamics.com": [[PUBLIC, "2603:1030::5"]]}
    assert checked_dynamics_url("https://org.crm.dynamics.com/main.aspx", NOBODY) == ("https://org.crm.dynamics.com",
                                                                                      None)


def test_allowlisted_host_or_host_and_port(resolver: Resolver) -> None:
    resolver.answers = {"crm.corp.internal": [["10.0.0.5"]]}
    any_port = HostAllowlist(["crm.corp.internal"])
    one_port = HostAllowlist(["CRM.corp.internal:8443", "[::1]:9443"])
    assert checked_dynamics_url("https://crm.corp.internal:9000", any_port)[1] is None
    assert checked_dynamics_url("https://crm.corp.internal:8443", one_port)[1] is None
    assert checked_dynamics_url("https://[::1]:9443", one_port)[1] is None
    assert resolver.asked == []  # an allowlisted host is not even looked up
    assert "private address" in (checked_dynamics_url("https://crm.corp.internal:9443", one_port)[1] or "")
    assert "private address" in (checked_dynamics_url("https://crm.corp.internal", one_port)[1] or "")
    assert "loopback address" in (checked_dynamics_url("https://[::1]:8443", one_port)[1] or "")
    with pytest.raises(ValueError, match="DYNAMICS_HOST_ALLOWLIST"):
        HostAllowlist(["crm.corp.internal:http"])


def test_the_setting_is_a_comma_separated_list() -> None:
    assert Settings().DYNAMICS_HOST_ALLOWLIST == []
    settings = Settings(DYNAMICS_HOST_ALLOWLIST=" localhost, crm.corp.internal:8443 ,")
    assert settings.DYNAMICS_HOST_ALLOWLIST == ["localhost", "crm.corp.internal:8443"]


def test_an_unknown_host_gets_its_own_message(resolver: Resolver) -> None:
    _, error = checked_dynamics_url("https://no-such-org.crm.dynamics.com", NOBODY)
    assert error and error.startswith("The host no-such-org.crm.dynamics.com could not be found")
    with pytest.raises(HostLookupFailed):
        check_host("https://no-such-org.crm.dynamics.com:8443", NOBODY)


def test_a_slow_lookup_answers_within_slacks_ack_window(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging(*args: object, **kwargs: object) -> list:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        _, error = checked_dynamics_url("https://slow.contoso.example", NOBODY)
    finally:
        release.set()
    assert time.monotonic() - started < egress.SUBMIT_LOOKUP_SECONDS + 1.0
    assert error and "the lookup took too long" in error


# -- the transport: the check at the address actually connected to --------------------------------------


def _get(transport: httpx.BaseTransport, url: str) -> None:
    with httpx.Client(transport=transport) as client:
        client.get(url)


def test_transport_connects_only_to_the_address_it_validated(resolver: Resolver) -> None:
    """DNS rebinding: the name answers a public address once, then loopback. The connection goes to the
    public address the transport validated; the name is resolved exactly once."""
    resolver.answers = {"rebind.example": [[PUBLIC], ["127.0.0.1"]]}
    network = RecordingBackend()
    with pytest.raises(httpx.ConnectError):
        _get(GuardedTransport(NOBODY, ssl_context(None), inner=network), "https://rebind.example/api/data/v9.2/WhoAmI")
    assert network.connected_to == [(PUBLIC, 443)]
    assert resolver.asked == ["rebind.example"]


def test_transport_refuses_when_the_answer_changes_to_loopback_after_the_form_check(resolver: Resolver) -> None:
    resolver.answers = {"rebind.example": [[PUBLIC], ["127.0.0.1"]]}
    check_host("https://rebind.example", NOBODY)  # the check at submit sees the public address
    network = RecordingBackend()
    with pytest.raises(HostRefused) as refused:
        _get(GuardedTransport(NOBODY, ssl_context(None), inner=network), "https://rebind.example/")
    assert (refused.value.kind, refused.value.address) == ("loopback", "127.0.0.1")
    assert network.connected_to == []


def test_transport_sends_nothing_to_a_loopback_server_unless_allowlisted() -> None:
    with listener() as server:
        with pytest.raises(HostRefused, match="loopback 127.0.0.1"):
            _get(GuardedTransport(NOBODY, ssl_context(None)), f"http://127.0.0.1:{server.port}/")
        with pytest.raises(HostRefused):
            _get(GuardedTransport(HostAllowlist([f"127.0.0.1:{server.port + 1}"]), ssl_context(None)),
                 f"http://127.0.0.1:{server.port}/")
        assert server.requests == []
        _get(GuardedTransport(HostAllowlist([f"127.0.0.1:{server.port}"]), ssl_context(None)),
             f"http://127.0.0.1:{server.port}/")
        assert len(server.requests) == 1
