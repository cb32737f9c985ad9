"""The fault matrix, transport half: every way a site can fail below the content.

Each fault in ``tests/support/hostile.py`` takes over a URL that served the
article a moment before. Then ``watcher check`` (``api.check_now``) and a
daemon pass (the real Dispatcher) must each record one error check with a
one-line reason (and the HTTP status, when there was one), leave the stored
version as it was, and still check a healthy watch in the same pass. The
settings are short (1 s timeout, one retry, tiny back-off), so the slowest
fault costs a few seconds. Times and memory are measured by
``bench/bench_faults_fetch.py``, not asserted here, except the memory of the
bombs, which is deterministic.

The matrix runs on SQLite only: it tests the fetch stage; the check rows it
writes are the same on PostgreSQL (tests/test_pipeline.py runs on both).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import re
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import brotli
import pytest
from click.testing import CliRunner

from tests.support.hostile import FAULTS, Fault, Sent, bomb, brotli_bomb, gzip_bomb, status
from tests.support.http_server import LocalServer
from tests.support.newsroom import SEED as SEED_PATH
from tests.support.newsroom import Newsroom
from tests.support.passes import daemon_pass
from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.errors import BodyTooLargeError, FetchError, HTTPStatusError
from watcher.fetch import Fetcher, _parse_retry_after
from watcher.models import FetchResult
from watcher.settings import FetchSettings, Settings
from watcher.store import CheckOutcome, Store, now_ms

ARTICLE = "/news/article-1"
OTHER = "/news/other"
DAY_MS = 86_400_000
#: What every test environment sets (the SSRF guard refuses loopback otherwise).
ENV = {"WATCHER_ALLOW_HOSTS": "127.0.0.1"}
MAX_BODY = 2 * 1024 * 1024
SEED = snapshot_mod.read(SEED_PATH)


def short_settings(home: Path) -> Settings:
    return Settings.from_env(
        ENV,
        home=home,
        database_url=f"sqlite:///{home}/watcher.db",
        timeout=1.0,
        retries=1,
        retry_backoff=0.01,
        retry_backoff_max=0.05,
        max_body=MAX_BODY,
    )


@pytest.fixture
def article_site() -> Iterator[LocalServer]:
    with LocalServer() as site:
        room = Newsroom(title=SEED.title, main=SEED.body, url=site.url(ARTICLE))
        site.route(ARTICLE, room.respond)
        yield site


@pytest.fixture
def other_site() -> Iterator[LocalServer]:
    with LocalServer() as site:
        site.page(
            OTHER, "<html><head><title>短讯</title></head><body><p>一切正常。</p></body></html>"
        )
        yield site


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Settings, Store]]:
    settings = short_settings(tmp_path)
    store = api.open_store(settings)
    yield settings, store
    store.close()


def check_now(settings: Settings, store: Store) -> dict[str, api.CheckResult]:
    """``watcher check --all``, as the CLI runs it."""
    run = api.check_now(settings, store, api.watches_to_check(store, None))
    return {r.url: r for r in run.results}


def in_three_days() -> int:
    return now_ms() + 3 * DAY_MS  # every watch is due again, whatever its back-off


def assert_one_line_reason(error: str | None, fault: Fault) -> None:
    assert error is not None
    assert "\n" not in error and "Traceback" not in error
    assert re.search(fault.reason, error), error


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_is_one_error_check_and_harms_nothing_else(
    fault: Fault,
    article_site: LocalServer,
    other_site: LocalServer,
    stored: tuple[Settings, Store],
) -> None:
    settings, store = stored
    article, other = article_site.url(ARTICLE), other_site.url(OTHER)
    api.add_watches(store, [article, other])
    first = check_now(settings, store)
    assert {r.outcome for r in first.values()} == {CheckOutcome.NEW_VERSION}
    article_id = api.require_watch(store, article).id
    versions = store.versions(article_id)

    with fault.applied(article_site, ARTICLE) as sent:
        by_cli = check_now(settings, store)  # `watcher check --all`
        daemon_pass(settings, store, clock=in_three_days)  # the daemon's pipeline

    assert by_cli[article].outcome is CheckOutcome.ERROR
    assert_one_line_reason(by_cli[article].error, fault)
    assert by_cli[article].status == fault.status
    checks = store.recent_checks(article_id, limit=10)[::-1]
    assert [c.outcome for c in checks] == [CheckOutcome.NEW_VERSION] + [CheckOutcome.ERROR] * 2
    for check in checks[1:]:
        assert_one_line_reason(check.error, fault)
        assert check.http_status == fault.status
    assert store.versions(article_id) == versions
    [version] = versions
    assert version.archive_path and (settings.archive_dir / version.archive_path).is_file()
    assert sent.bytes < 64 * 1024 * 1024  # abandoned early: a 1 GB body is not read to the end

    other_checks = store.recent_checks(api.require_watch(store, other).id, limit=10)[::-1]
    assert [c.outcome for c in other_checks] == [
        CheckOutcome.NEW_VERSION,
        CheckOutcome.UNCHANGED,
        CheckOutcome.UNCHANGED,
    ]


def test_watcher_check_prints_one_line_per_fault(
    tmp_path: Path, article_site: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real CLI: exit 1, a line per URL, the reason on it, no traceback."""
    faults = {f.name: f for f in FAULTS}
    paths = {"429-nan": "/nan", "brotli-bomb": "/br", "redirect-file": "/file", "503": "/down"}
    for name, path in paths.items():
        handler = faults[name].handler
        assert handler is not None
        article_site.route(path, handler(article_site, Sent(), path))
    env = {
        **ENV,
        "WATCHER_HOME": str(tmp_path),
        "WATCHER_TIMEOUT": "1s",
        "WATCHER_RETRIES": "1",
        "WATCHER_RETRY_BACKOFF": "10ms",
        "WATCHER_RETRY_BACKOFF_MAX": "50ms",
        "WATCHER_MAX_BODY": "2MB",
    }
    runner = CliRunner()
    urls = [article_site.url(p) for p in (ARTICLE, *paths.values())]
    added = runner.invoke(main, ["add", *urls], env=env)
    assert added.exit_code == 0, added.output

    result = runner.invoke(main, ["check", "--all"], env=env)

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = {line.split(": ", 1)[0]: line for line in result.stdout.splitlines()}
    assert "new version" in lines[article_site.url(ARTICLE)]
    for name, path in paths.items():
        line = lines[article_site.url(path)]
        _, _, reason = line.partition(": error: ")
        assert reason, line
        assert re.search(faults[name].reason, reason), line


# -- the fetch stage alone -------------------------------------------------------------
class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def fetch_settings(**changes: object) -> FetchSettings:
    base = short_settings(Path("/nonexistent")).fetch_settings()
    return replace(base, **changes)  # type: ignore[arg-type]


def fetch(url: str, settings: FetchSettings, sleep: RecordingSleep | None = None) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(settings, sleep=sleep or RecordingSleep()) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(run())


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_bomb_is_stopped_at_the_limit_within_bounded_memory(
    article_site: LocalServer, coding: str
) -> None:
    """A few KB that inflate to gigabytes: decoded piece by piece, abandoned
    once past max_body; the peak stays a small multiple of max_body."""
    sent = Sent()
    article_site.route("/bomb", bomb(article_site, sent, coding))
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLargeError, match=f"exceeds {MAX_BODY} bytes"):
            fetch(article_site.url("/bomb"), fetch_settings(retries=0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_BODY + 8 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_bombs_are_valid_streams() -> None:
    """The hostile bombs are real compressed data, not garbage that fails early."""
    br = brotli_bomb(32 << 20)
    data = b"".join(br.pieces())
    assert len(data) == br.length < 1024
    assert len(brotli.decompress(data)) == 32 << 20
    gz = gzip_bomb(4 << 20)
    data = b"".join(gz.pieces())
    assert len(data) == gz.length
    assert gzip.decompress(data) == bytes(4 << 20)


def _page(size: int) -> bytes:
    return b"<html><body>" + b"<p>news</p>" * (size // 11) + b"</body></html>"


def _encode(raw: bytes, coding: str) -> bytes:
    encoders = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "br": brotli.compress,
        "deflate": zlib.compress,
        "identity": bytes,
        "zstd": bytes,  # not one we accept: passed through as it is, like httpx does
    }
    if coding == "raw-deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(raw) + packer.flush()
    return encoders[coding](raw)


@pytest.mark.parametrize(
    "coding", ["gzip", "x-gzip", "br", "deflate", "raw-deflate", "identity", "zstd"]
)
def test_every_coding_is_decoded_incrementally(article_site: LocalServer, coding: str) -> None:
    raw = _page(3 * 1024 * 1024 // 2)  # many pieces of output, under the limit
    packed = _encode(raw, coding)
    header = "deflate" if coding == "raw-deflate" else coding
    article_site.page("/z", packed, headers={"Content-Encoding": header})
    result = fetch(article_site.url("/z"), fetch_settings())
    assert result.text == raw.decode()


def test_stacked_codings_are_undone_in_reverse_order(article_site: LocalServer) -> None:
    raw = _page(300_000)
    article_site.page(
        "/z", brotli.compress(gzip.compress(raw)), headers={"Content-Encoding": "gzip, br"}
    )
    assert fetch(article_site.url("/z"), fetch_settings()).text == raw.decode()


def test_the_limit_counts_decoded_bytes_exactly(article_site: LocalServer) -> None:
    raw = b"x" * 10_000
    article_site.page("/z", gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert fetch(article_site.url("/z"), fetch_settings(max_body_bytes=10_000)).text == "x" * 10_000
    with pytest.raises(BodyTooLargeError, match="exceeds 9999 bytes"):
        fetch(article_site.url("/z"), fetch_settings(max_body_bytes=9_999))


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
def test_a_corrupt_compressed_body_is_a_clear_error(article_site: LocalServer, coding: str) -> None:
    article_site.page("/z", b"this is not compressed at all", headers={"Content-Encoding": coding})
    with pytest.raises(FetchError, match=f"^.*: cannot decode the {coding} body") as info:
        fetch(article_site.url("/z"), fetch_settings())
    assert "\n" not in str(info.value)


def test_a_truncated_compressed_body_is_a_clear_error(article_site: LocalServer) -> None:
    packed = brotli.compress(_page(100_000))
    article_site.page("/z", packed[: len(packed) // 2], headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="br body is truncated"):
        fetch(article_site.url("/z"), fetch_settings())


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "1e999", "-5", "soon", "", "Mon, 99 Foo 20x"]
)
def test_unusable_retry_after_is_no_retry_after(value: str) -> None:
    assert _parse_retry_after(value) is None


def test_retry_after_nan_falls_back_to_backoff(article_site: LocalServer) -> None:
    article_site.route("/busy", status(429, "nan"))
    sleep = RecordingSleep()
    settings = fetch_settings(retries=3, backoff_base_s=0.01, backoff_max_s=0.05)
    with pytest.raises(HTTPStatusError) as info:
        fetch(article_site.url("/busy"), settings, sleep)
    assert info.value.status == 429
    assert len(sleep.delays) == 3
    assert all(math.isfinite(d) and 0 <= d <= 0.05 for d in sleep.delays), sleep.delays


def test_a_huge_retry_after_is_capped(article_site: LocalServer) -> None:
    article_site.route("/busy", status(429, "999999999999"))
    sleep = RecordingSleep()
    with pytest.raises(HTTPStatusError):
        fetch(article_site.url("/busy"), fetch_settings(retries=1, backoff_max_s=0.05), sleep)
    assert sleep.delays == [0.05]
