"""Where the bot may connect for Dynamics: public addresses only, unless DYNAMICS_HOST_ALLOWLIST says so.

The Dynamics URL is typed by an admin and fetched by the server, so without a rule it would let a
Slack user reach the server's own network (loopback, the private LAN, the cloud metadata address).
The rule is checked three times: when the form is submitted (a bounded lookup, so the reply is an
inline error), when the pre-flight starts, and at every connection (`guarded_transport`). The last
check is the one that matters: the transport resolves the host once, validates every address and
connects to a validated address, so a DNS answer that changes between check and connect (DNS
rebinding) cannot move the connection. TLS still verifies the host name the user typed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from urllib.parse import urlsplit

import httpcore
import httpx

from bot.dynamics.errors import DynamicsError, HostLookupFailed, HostRefused
from bot.dynamics.validate import validate_dynamics_url

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SUBMIT_LOOKUP_SECONDS = 1.0
"""How long the form's submit waits for DNS: Slack wants the ack within 3 s."""

_IPV4_NUMBERS = re.compile(r"^[0-9a-fA-FxX.]+$")
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dynamics-dns")


class HostAllowlist:
    """`host` (any port) or `host:port` entries; IPv6 literals in brackets, e.g. `[::1]:8443`."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._any_port: set[str] = set()
        self._with_port: set[tuple[str, int]] = set()
        for entry in entries:
            try:
                parts = urlsplit(f"//{entry.strip()}")
                host, port = _normal_host(parts.hostname or ""), parts.port
            except ValueError:
                host, port = "", None
            if not host:
                raise ValueError(f"DYNAMICS_HOST_ALLOWLIST: {entry!r} is not a host or host:port")
            if port is None:
                self._any_port.add(host)
            else:
                self._with_port.add((host, port))

    def allows(self, host: str, port: int) -> bool:
        host = _normal_host(host)
        return host in self._any_port or (host, port) in self._with_port


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").lower()


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (`::ffff:127.0.0.1`, 6to4), which is where it leads."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour
    return None


def literal_address(host: str) -> Address | None:
    """The address a numeric host stands for, read the way the OS reads it: IPv6 (with or without
    brackets) and every IPv4 form `inet_aton` accepts (`2130706433`, `0x7f.0.0.1`, `127.1`, octal)."""
    bare = _normal_host(host)
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not _IPV4_NUMBERS.match(bare):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def non_public_kind(address: Address) -> str | None:
    """Why the bot will not connect to `address` ("loopback", "private" …), or None when it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return non_public_kind(embedded)
    for kind, flag in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("reserved", address.is_reserved), ("private", address.is_private)):
        if flag:
            return kind
    return None if address.is_global else "non-public"


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` stands for (a literal is not looked up). Raises `socket.gaierror`."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(_normal_host(host), port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def refuse_non_public(host: str, addresses: list[Address]) -> None:
    """Raise `HostRefused` when any of `addresses` is not a public address."""
    for address in addresses:
        kind = non_public_kind(address)
        if kind is not None:
            raise HostRefused(host, str(_embedded_ipv4(address) or address), kind)


def url_origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, _normal_host(parts.hostname or ""), parts.port or (443 if scheme == "https" else 80)


def check_host(url: str, allowlist: HostAllowlist, *, timeout: float | None = None) -> None:
    """Refuse a URL whose host resolves to a non-public address (`HostRefused`), or cannot be resolved
    within `timeout` seconds (`HostLookupFailed`). An allowlisted host is not looked up."""
    _, host, port = url_origin(url)
    if allowlist.allows(host, port):
        return
    try:
        addresses = _lookups.submit(resolve, host, port).result(timeout=timeout)
    except LookupTimeout:
        raise HostLookupFailed(host, "the lookup took too long") from None
    except (OSError, UnicodeError) as exc:
        raise HostLookupFailed(host, str(exc)) from None
    refuse_non_public(host, addresses)


def checked_dynamics_url(typed: str, allowlist: HostAllowlist) -> tuple[str, str | None]:
    """Step 1's URL field: (normalized URL, inline error or None): the format, then where it leads."""
    url, error = validate_dynamics_url(typed)
    if error:
        return url, error
    try:
        check_host(url, allowlist, timeout=SUBMIT_LOOKUP_SECONDS)
    except DynamicsError as exc:
        return url, exc.user_message
    return url, None


class GuardedBackend(httpcore.NetworkBackend):
    """A network backend that connects only to public addresses (or to allowlisted hosts).

    It resolves the host once, refuses if any address is not public, and hands the inner backend
    the validated address itself, so nothing resolves the name a second time.
    """

    def __init__(self, allowlist: HostAllowlist, inner: httpcore.NetworkBackend | None = None) -> None:
        self.allowlist = allowlist
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if self.allowlist.allows(host, port):
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        refuse_non_public(host, addresses)
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the Dynamics client does not use Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over `GuardedBackend`. httpx takes no network backend, so the connection
    pool is rebuilt with one (same limits as httpx's default)."""

    def __init__(self, allowlist: HostAllowlist, ssl_context: ssl.SSLContext,
                 inner: httpcore.NetworkBackend | None = None) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allowlist, inner),
        )
