"""Refusing what must not be fetched (SSRF): non-public addresses, however
spelled or reached, and redirects to other schemes (watcher/guard.py).

No test here resolves a name through DNS or opens a connection anywhere but
127.0.0.1: names go through ``FakeDNS`` (numeric spellings through the system
parser with AI_NUMERICHOST, which never queries DNS), and the socket layer
under the guard is ``LoopbackOnly``, which records every connect and refuses
to open anything but loopback, so even a broken guard sends no traffic out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import httpcore
import pytest
from click.testing import CliRunner

from tests.support.http_server import LocalServer
from watcher import api
from watcher.cli import main
from watcher.errors import FetchError, RefusedAddressError, WatcherError
from watcher.fetch import Fetcher, guarded_transport
from watcher.guard import AddressPolicy
from watcher.models import FetchResult
from watcher.pipeline import Pipeline
from watcher.settings import FetchSettings, Settings
from watcher.store import CheckOutcome, Store

PUBLIC = "93.184.216.34"  # a global address; LoopbackOnly fakes it, never connects
PAGE = b"<html><body><p>the public page</p></body></html>"


class FakeDNS:
    """Answers from a table (a list of answers is used in turn, the last one
    repeating); any other host is parsed as a numeric address by the system,
    never looked up. Records every question."""

    def __init__(self, table: Mapping[str, list[str] | list[list[str]]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answer = self.table.get(host)
        if answer is None:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        if answer and isinstance(answer[0], list):
            turns = answer
            turn = sum(1 for h in self.asked if h == host) - 1
            return turns[min(turn, len(turns) - 1)]
        return cast(list[str], answer)


class LoopbackOnly(httpcore.AsyncNetworkBackend):
    """The socket layer under the guard: records each connect; opens real
    sockets to 127.0.0.1 only; serves ``PAGE`` for :data:`PUBLIC` from memory;
    refuses anything else without touching the network."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host == PUBLIC:
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAGE)}\r\nConnection: close\r\n\r\n"
            return httpcore.AsyncMockStream([head.encode() + PAGE])
        if ipaddress.ip_address(host) != ipaddress.ip_address("127.0.0.1"):
            raise httpcore.ConnectError(f"test: no connection to {host}")
        return await self._real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def outside_loopback(self) -> list[tuple[str, int]]:
        return [(h, p) for h, p in self.connects if h != "127.0.0.1"]


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def settings(*allow: str, **changes: Any) -> FetchSettings:
    """The default fetch settings (nothing allowed), retries on and fast."""
    base = Settings.from_env({}).fetch_settings()
    assert base.allow_hosts == ()
    return replace(
        base, timeout_s=5, retries=2, backoff_base_s=0.01, backoff_max_s=0.02, allow_hosts=allow
    )


class Harness:
    """A Fetcher over the real guard, with FakeDNS and LoopbackOnly under it."""

    def __init__(self, dns: FakeDNS | None = None) -> None:
        self.dns = dns or FakeDNS()
        self.backend = LoopbackOnly()
        self.sleep = NoSleep()

    def fetcher(self, fetch_settings: FetchSettings) -> Fetcher:
        transport = guarded_transport(fetch_settings, resolve=self.dns, backend=self.backend)
        return Fetcher(fetch_settings, sleep=self.sleep, transport=transport)

    def fetch(self, url: str, fetch_settings: FetchSettings | None = None) -> FetchResult:
        async def run() -> FetchResult:
            async with self.fetcher(fetch_settings or settings()) as fetcher:
                return await fetcher.fetch(url)

        return asyncio.run(run())

    def refused(self, url: str, fetch_settings: FetchSettings | None = None) -> str:
        """The reason ``url`` is refused; asserts it was refused at once, unretried."""
        with pytest.raises(RefusedAddressError) as info:
            self.fetch(url, fetch_settings)
        assert self.sleep.delays == [], "a refusal must not be retried"
        assert info.value.url == url
        return info.value.reason


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as site:
        yield site


# -- every spelling of a non-public address ---------------------------------------
SPELLINGS = [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.2:8080/x", "127.0.0.2 is a loopback address"),
    ("http://127.1/", "127.1 resolves to 127.0.0.1, a loopback address"),
    ("http://127.0.1/", "127.0.1 resolves to 127.0.0.1, a loopback address"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("http://0x7f000001/", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
    ("http://0x7f.0.0.1/", "0x7f.0.0.1 resolves to 127.0.0.1, a loopback address"),
    ("http://017700000001/", "017700000001 resolves to 127.0.0.1, a loopback address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "(127.0.0.1) is a loopback address"),
    ("http://[::ffff:7f00:1]/", "(127.0.0.1) is a loopback address"),
    ("http://[::ffff:a00:1]/", "(10.0.0.1) is a private address"),
    ("http://[64:ff9b::a00:1]/", "(10.0.0.1) is a private address"),  # NAT64
    ("http://[2002:a00:1::]/", "(10.0.0.1) is a private address"),  # 6to4
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://0/", "0 resolves to 0.0.0.0, an unspecified address"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://0x0a.0.0.1/", "0x0a.0.0.1 resolves to 10.0.0.1, a private address"),
    ("http://167772161/", "167772161 resolves to 10.0.0.1, a private address"),
    ("http://172.16.5.4/", "172.16.5.4 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://[fc00::1]/", "fc00::1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
    ("http://255.255.255.255/", "255.255.255.255 is a reserved address"),
    ("https://192.168.0.10/", "192.168.0.10 is a private address"),
]


@pytest.mark.parametrize(("url", "detail"), SPELLINGS, ids=[u for u, _ in SPELLINGS])
def test_every_spelling_is_refused_before_any_connection(url: str, detail: str) -> None:
    h = Harness()
    reason = h.refused(url)
    assert reason.startswith("refused: ") and reason.endswith("; see WATCHER_ALLOW_HOSTS")
    assert detail in reason
    assert h.backend.connects == []
    assert len(h.dns.asked) == 1  # resolved once, refused, not retried


def test_a_spelling_httpx_rejects_is_never_fetched_either() -> None:
    """A dotted quad with a leading zero (octal to inet_aton) is an invalid URL
    to httpx: refused even before the guard is asked."""
    h = Harness()
    with pytest.raises(FetchError, match="Invalid IPv4 address"):
        h.fetch("http://0177.0.0.1/")
    assert h.dns.asked == [] and h.backend.connects == []


def test_the_reason_reads_well() -> None:
    reason = Harness().refused("http://10.0.0.1/")
    assert reason == "refused: 10.0.0.1 is a private address; see WATCHER_ALLOW_HOSTS"


# -- names: decided on what they resolve to -----------------------------------------
@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (["127.0.0.1"], "news.example resolves to 127.0.0.1, a loopback address"),
        (["10.0.0.1"], "news.example resolves to 10.0.0.1, a private address"),
        (["::ffff:127.0.0.1"], "news.example resolves to ::ffff:7f00:1 (127.0.0.1), a loopback"),
        (["169.254.169.254"], "news.example resolves to 169.254.169.254, a link-local"),
        ([PUBLIC, "10.0.0.1"], "news.example resolves to 10.0.0.1, a private address"),
        (["10.0.0.1", PUBLIC], "news.example resolves to 10.0.0.1, a private address"),
    ],
)
def test_a_name_resolving_to_a_non_public_address_is_refused(
    answer: list[str], detail: str
) -> None:
    h = Harness(FakeDNS({"news.example": answer}))
    reason = h.refused("http://news.example/a")
    assert detail in reason
    assert h.backend.connects == []  # one bad answer refuses the name: nothing is picked


def test_a_name_resolving_to_loopback_reaches_the_local_server_only_when_allowed(
    server: LocalServer,
) -> None:
    server.page("/page", b"<p>local</p>")
    port = server.server_address[1]
    url = f"http://news.example:{port}/page"
    dns = {"news.example": ["127.0.0.1"]}

    h = Harness(FakeDNS(dns))
    assert "news.example resolves to 127.0.0.1, a loopback address" in h.refused(url)
    assert server.received() == 0 and h.backend.connects == []

    for allow in ("127.0.0.1", "127.0.0.0/8", "news.example", "NEWS.example."):
        h = Harness(FakeDNS(dns))
        result = h.fetch(url, settings(*Settings.from_env({}, allow_hosts=allow).allow_hosts))
        assert (result.status, result.text) == (200, "<p>local</p>"), allow
        assert h.backend.connects == [("127.0.0.1", port)]  # the checked address, not the name
    assert server.hits("/page")[-1].headers["Host"] == f"news.example:{port}"


def test_allowing_one_address_does_not_allow_its_neighbours() -> None:
    h = Harness(FakeDNS({"a.example": ["127.0.0.2"], "b.example": ["10.0.0.2"]}))
    allow = settings("127.0.0.1", "10.0.0.1/32", "intranet.example")
    assert "127.0.0.2, a loopback" in h.refused("http://a.example/", allow)
    assert "10.0.0.2, a private" in h.refused("http://b.example/", allow)


def test_the_default_fetcher_refuses_loopback(server: LocalServer) -> None:
    """No transport injected: what ``watcher run`` uses (loopback only, so safe)."""
    server.page("/page", b"<p>local</p>")

    async def run() -> None:
        async with Fetcher(settings(), sleep=NoSleep()) as fetcher:
            await fetcher.fetch(server.url("/page"))

    with pytest.raises(RefusedAddressError, match=r"127\.0\.0\.1 is a loopback address"):
        asyncio.run(run())
    assert server.received() == 0


# -- DNS rebinding -------------------------------------------------------------------
def test_rebinding_cannot_swap_the_address_between_check_and_connect() -> None:
    """The resolver answers public first, then 127.0.0.1: the connection goes
    to the checked public address (there is no second lookup to answer), and
    the next connection, which asks again, is refused."""
    dns = FakeDNS({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    h = Harness(dns)
    result = h.fetch("http://rebind.example/a")
    assert (result.status, result.text) == (200, PAGE.decode())
    assert h.backend.connects == [(PUBLIC, 80)]
    assert dns.asked == ["rebind.example"]

    reason = h.refused("http://rebind.example/a")
    assert "rebind.example resolves to 127.0.0.1, a loopback address" in reason
    assert h.backend.connects == [(PUBLIC, 80)]


def test_an_unknown_name_is_a_retried_fetch_error_not_a_refusal() -> None:
    class NoSuchName(FakeDNS):
        async def __call__(self, host: str, port: int) -> Sequence[str]:
            self.asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    h = Harness(NoSuchName())
    with pytest.raises(FetchError) as info:
        h.fetch("http://nowhere.example/")
    assert not isinstance(info.value, RefusedAddressError)
    assert "cannot resolve nowhere.example" in info.value.reason
    assert len(h.dns.asked) == 3 and len(h.sleep.delays) == 2  # retries=2


# -- redirects: every hop is checked --------------------------------------------------
@pytest.mark.parametrize(
    ("location", "detail"),
    [
        ("http://10.0.0.1/secret", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://2130706434/", "2130706434 resolves to 127.0.0.2, a loopback address"),
        (
            "http://[::ffff:a9fe:a9fe]/",
            "::ffff:a9fe:a9fe (169.254.169.254) is a link-local address",
        ),
        ("http://internal.example/", "internal.example resolves to 10.1.2.3, a private address"),
    ],
)
def test_a_redirect_to_a_refused_address_is_refused(
    server: LocalServer, location: str, detail: str
) -> None:
    server.redirect("/go", location, status=302)
    h = Harness(FakeDNS({"internal.example": ["10.1.2.3"]}))
    url = server.url("/go")
    reason = h.refused(url, settings("127.0.0.1"))
    assert reason == f"refused (after a redirect): {detail}; see WATCHER_ALLOW_HOSTS"
    assert server.received("/go") == 1
    assert h.backend.outside_loopback() == []


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://ftp.example/x", "gopher://127.0.0.1:70/", "javascript:alert(1)"],
)
def test_a_redirect_to_another_scheme_is_refused(server: LocalServer, location: str) -> None:
    server.redirect("/go", location)
    h = Harness()
    reason = h.refused(server.url("/go"), settings("127.0.0.1"))
    assert reason == f"refused (after a redirect): {location} is not an http or https URL"
    assert h.backend.outside_loopback() == []


def test_allowed_redirect_hops_are_still_followed_and_recorded(server: LocalServer) -> None:
    port = server.server_address[1]
    server.redirect("/a", f"http://news.example:{port}/b")
    server.page("/b", b"<p>b</p>")
    h = Harness(FakeDNS({"news.example": ["127.0.0.1"]}))
    result = h.fetch(server.url("/a"), settings("127.0.0.1"))
    assert result.redirects == (server.url("/a"),)
    assert result.final_url == f"http://news.example:{port}/b"


# -- the policy and the setting ------------------------------------------------------
def test_policy_checks_embedded_ipv4_and_allows_by_network() -> None:
    policy = AddressPolicy.allowing(Settings.from_env({}, allow_hosts="127.0.0.1").allow_hosts)
    assert policy.refusal("x", "127.0.0.1") is None
    assert policy.refusal("x", "::ffff:127.0.0.1") is None  # the same address, mapped
    assert policy.refusal("x", PUBLIC) is None
    assert policy.refusal("x", "2606:4700:4700::1111") is None
    assert policy.refusal("x", "64:ff9b::5db8:d822") is None  # NAT64 of a public address
    assert policy.refusal("x", "::1") == "x resolves to ::1, a loopback address"


def test_allow_hosts_setting_is_parsed_and_checked() -> None:
    env = {"WATCHER_ALLOW_HOSTS": " Intranet.Example., 10.20.0.0/16 ,127.0.0.1,[::1],"}
    parsed = Settings.from_env(env).allow_hosts
    assert parsed == ("intranet.example", "10.20.0.0/16", "127.0.0.1/32", "::1/128")
    assert Settings.from_env(env).fetch_settings().allow_hosts == parsed
    assert Settings.from_env({}).allow_hosts == ()
    for bad in ("10.0.0.0/33", "a b", "http://x/", "host:80"):
        with pytest.raises(WatcherError, match="WATCHER_ALLOW_HOSTS"):
            Settings.from_env({"WATCHER_ALLOW_HOSTS": bad})


# -- the pipeline and the CLI ------------------------------------------------------------
def test_the_pipeline_records_a_refusal_as_an_error_check_and_goes_on(
    store: Store, db_url: str, tmp_path: Path, server: LocalServer
) -> None:
    server.page("/ok", b"<html><body><article><p>fine</p></article></body></html>")
    port = server.server_address[1]
    config = Settings.from_env({}, home=tmp_path, database_url=db_url, allow_hosts="news.example")
    added = api.add_watches(
        store, ["http://10.0.0.1/news", f"http://news.example:{port}/ok", "http://127.1/x"]
    )
    assert [a.error for a in added] == [None, None, None]
    h = Harness(FakeDNS({"news.example": ["127.0.0.1"]}))

    async def run() -> list[Any]:
        async with h.fetcher(replace(config.fetch_settings(), retries=2)) as fetcher:
            pipeline = Pipeline(store, fetcher, config)
            return [await pipeline.check(store.get_watch(a.url)) for a in added]  # type: ignore[arg-type]

    private, fine, loopback = asyncio.run(run())
    assert (private.outcome, private.error) == (
        CheckOutcome.ERROR,
        "refused: 10.0.0.1 is a private address; see WATCHER_ALLOW_HOSTS",
    )
    assert fine.outcome is CheckOutcome.NEW_VERSION
    assert loopback.outcome is CheckOutcome.ERROR
    assert loopback.error == (
        "refused: 127.1 resolves to 127.0.0.1, a loopback address; see WATCHER_ALLOW_HOSTS"
    )
    watch = store.get_watch(added[0].url)
    assert watch is not None and watch.failure_count == 1
    [check] = store.recent_checks(watch.id, limit=10)
    assert check.error == private.error
    assert h.sleep.delays == [] and h.backend.outside_loopback() == []


def test_cli_check_shows_the_refusal(tmp_path: Path, server: LocalServer) -> None:
    """``watcher check`` with the settings ``watcher run`` would use (the local
    server is loopback, so this is safe with the real resolver and sockets)."""
    server.page("/page", b"<html><body><article><p>local</p></article></body></html>")
    home = tmp_path / "home"
    url = server.url("/page")
    env: dict[str, str | None] = {
        "WATCHER_HOME": None,
        "WATCHER_DATABASE_URL": None,
        "WATCHER_ALLOW_HOSTS": None,
        "WATCHER_LOG_LEVEL": "WARNING",
    }

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, ["--home", str(home), *args], env=env)

    added = cli("add", url, "http://[::ffff:a00:1]/news", "http://news.example/")
    assert added.exit_code == 0  # a warning only: the decision is made at fetch time
    assert added.stderr.splitlines() == [
        f"warning: {url}: checks will be refused: 127.0.0.1 is a loopback address;"
        " see WATCHER_ALLOW_HOSTS",
        "warning: http://[::ffff:a00:1]/news: checks will be refused:"
        " ::ffff:a00:1 (10.0.0.1) is a private address; see WATCHER_ALLOW_HOSTS",
    ]
    result = cli("check", url)
    assert result.exit_code == 1
    assert (
        f"{url}: error: refused: 127.0.0.1 is a loopback address; see WATCHER_ALLOW_HOSTS"
        in result.stdout
    )
    assert server.received() == 0

    env["WATCHER_ALLOW_HOSTS"] = "127.0.0.1"
    assert cli("add", url).stderr == ""
    result = cli("check", url)
    assert result.exit_code == 0, result.output
    assert server.received("/page") == 1
