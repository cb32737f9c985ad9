"""Which addresses a fetch may connect to, decided when it connects (SSRF).

watcher fetches URLs that users and imported lists supply, so a URL must not
reach what only this machine can reach: loopback, the private network,
link-local (cloud metadata at 169.254.169.254), multicast, reserved and
unspecified addresses. The decision is made on the *resolved* address, inside
the connection layer, by an httpcore network backend:

1. the host httpcore asks to connect to is resolved once, here;
2. every address of the answer is checked, and one refused address refuses the
   name (an answer mixing public and private addresses is an attack or a
   mistake, either way not something to pick from);
3. the socket is opened to a checked address, never to the name, so there is
   no second resolution for DNS rebinding to answer differently.

TLS is unchanged: httpcore still gives the name for SNI and certificate
checks, and the Host header comes from the URL. Every redirect hop opens its
connection through the same backend, so every hop is checked. Alternative
spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``,
``::ffff:127.0.0.1``) need no special cases: they resolve like any name, and
the address they resolve to is what is checked.

``WATCHER_ALLOW_HOSTS`` lists the exceptions: host names (compared with the
URL's host) and addresses or CIDR ranges (compared with the resolved address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``(host, port) -> addresses``; injected by tests, :func:`resolve_system` otherwise.
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]

ALLOW_SETTING = "WATCHER_ALLOW_HOSTS"
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052, an IPv4 address in the low bits


class AddressRefused(Exception):
    """The connection layer refused ``host``; ``detail`` says why, in a few words."""

    def __init__(self, host: str, detail: str) -> None:
        super().__init__(detail)
        self.host = host
        self.detail = detail

    def reason(self, *, redirected: bool = False) -> str:
        """The text a check records, pointing at the setting that allows exceptions."""
        where = " (after a redirect)" if redirected else ""
        return f"refused{where}: {self.detail}; see {ALLOW_SETTING}"


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` unfit to fetch from ("a loopback address"), or None when public."""
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "a shared (CGNAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((kind for hit, kind in checks if hit), None)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses only, except the allowed host names and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> AddressPolicy:
        """From ``WATCHER_ALLOW_HOSTS`` entries: host names, addresses, CIDR ranges."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def refusal(self, host: str, address: str) -> str | None:
        """Why connecting to ``address`` (an answer for ``host``) is refused, or None."""
        ip = ipaddress.ip_address(address)
        inner = embedded_ipv4(ip)
        if any(self._allows(candidate) for candidate in (ip, inner) if candidate is not None):
            return None
        kind = non_public_kind(inner or ip)
        if kind is None:
            return None
        shown = f"{ip} ({inner})" if inner is not None else str(ip)
        if _same_address(host, ip):
            return f"{shown} is {kind}"
        return f"{host} resolves to {shown}, {kind}"

    def _allows(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def _same_address(host: str, ip: IPAddress) -> bool:
    """True when ``host`` is ``ip`` written the canonical way (not 2130706433 or 127.1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")) == ip
    except ValueError:
        return False


async def resolve_system(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order, once each."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the checked address.

    ``resolve`` and ``backend`` (the one that really opens sockets) are
    injected by tests, so no test ever resolves a name or connects anywhere
    but 127.0.0.1.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: Resolve | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolve or resolve_system
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in await self.checked_addresses(host, port):
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next address, as a resolving connect would
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once; raise :class:`AddressRefused` unless every answer may be used."""
        try:
            addresses = list(await self._resolve(host, port))
        except OSError as exc:  # socket.gaierror: unknown name, no DNS
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        if not self.policy.allows_host(host):
            for address in addresses:
                detail = self.policy.refusal(host, address)
                if detail is not None:
                    raise AddressRefused(host, detail)
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, f"{path} is a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
