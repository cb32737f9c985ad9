"""Content faults through the real Fetcher + Pipeline: time, memory, what is recorded.

For each case of tests/support/content_faults.py (PDFs, images, plain text,
empty and cut bodies, pages without <main>, 20,000-deep nesting, NUL bytes,
invalid UTF-8, lone surrogates, GBK / Big5 / Shift_JIS declared well, not at
all or wrongly, codecs that are no charset, a 1 MB title, meta refreshes,
soft 404s, front pages, a foreign canonical, 429/503):

1. this process serves the article and a second page on 127.0.0.1 (a fresh
   LocalServer per case; its memory is not counted);
2. a fresh child process (spawned, so its peak RSS is its own) makes a temp
   SQLite data folder, watches the article and stores its first version with
   one daemon pass (the real Dispatcher, Pipeline and Fetcher);
3. the article's address is taken over by the case, a second watch is added,
   and the child runs a second daemon pass, measured: wall seconds, peak RSS
   (the high-water mark is reset first through /proc/self/clear_refs);
4. the child checks what was recorded.

A case *held* when the article's check has the expected outcome, reason and
HTTP status, its lease is released, version 1 is intact, a version was added
only where the case expects one (with a bounded title, no NUL or lone
surrogate in its text, stored under its own site's address), and the second
watch got its version in the same pass.

Bounded: each child runs under an address-space cap and a time limit, and is
killed if it overruns.

Run: .venv/bin/python bench/bench_faults_content.py [--case pdf ...] [--limit 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import ROOT

sys.path.insert(0, str(ROOT))  # tests.support, for the cases and the local server

from tests.support.content_faults import FAULTS, SEED, ContentFault, seed_page
from tests.support.http_server import LocalServer
from tests.support.newsroom import Newsroom
from watcher import api
from watcher.daemon import worker_id
from watcher.extract import TITLE_MAX
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import CheckOutcome, Store, now_ms

ARTICLE = "/zhongwen/simp/world-59301487"
OTHER = "/zhongwen/simp/other-article"
DAY_MS = 86_400_000
ADDRESS_SPACE = 4 * 1024**3  # a child that needs more has lost its bounds
LIMIT_S = 60.0  # per case: setup, both passes and the checks


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    held: bool
    seconds: float | None
    peak_mb: float | None
    reason: str


# -- the child ---------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


def _pass(settings: Settings, store: Store, clock: _Clock) -> None:
    async def run() -> None:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings, clock=clock)
            await Dispatcher(store, pipeline, settings, worker_id(), clock=clock).run_until_idle()

    asyncio.run(run())


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # not Linux: the peak since the child started
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(conn: Connection, base: str, name: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    logging.disable(logging.CRITICAL)  # the table is the output
    fault = next(f for f in FAULTS if f.name == name)
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env(
            {}, home=home, database_url=f"sqlite:///{home}/watcher.db",
            retries=0, timeout=5.0, allow_hosts="127.0.0.1",
        )  # fmt: skip
        store = api.open_store(settings)
        clock = _Clock()
        article, other = base + ARTICLE, base + OTHER
        api.add_watches(store, [article], now=clock())
        _pass(settings, store, clock)
        conn.send("ready")
        conn.recv()  # the case is installed
        clock.now += DAY_MS
        api.add_watches(store, [other], now=clock())
        _reset_peak()
        started = time.perf_counter()
        _pass(settings, store, clock)
        seconds = time.perf_counter() - started
        peak = _peak_mb()
        problems, reason = _judge(store, fault, article, other)
        conn.send({"seconds": seconds, "peak_mb": peak, "problems": problems, "reason": reason})
        store.close()


def _judge(store: Store, fault: ContentFault, url: str, other_url: str) -> tuple[list[str], str]:
    """What is wrong with what was recorded (nothing, when the case held)."""
    problems: list[str] = []
    watch, other = store.get_watch(url), store.get_watch(other_url)
    assert watch is not None and other is not None
    checks = store.recent_checks(watch.id, limit=10)[::-1]
    check = checks[-1]
    versions = store.versions(watch.id)
    changes = store.changes(watch.id)
    reason = check.error or (
        f"{check.outcome.value}: {changes[-1].summary}" if changes else check.outcome.value
    )
    if check.outcome is not CheckOutcome(fault.outcome):
        problems.append(f"outcome {check.outcome.value}, expected {fault.outcome}")
    if fault.reason and fault.reason not in (check.error or ""):
        problems.append(f"reason lacks {fault.reason!r}")
    if check.http_status != fault.status:
        problems.append(f"HTTP status {check.http_status}, expected {fault.status}")
    if watch.claimed_by is not None:
        problems.append("lease not released")
    expected_versions = 2 if fault.outcome == "new_version" else 1
    if len(versions) != expected_versions or versions[0].seq != 1 or len(checks) != 2:
        problems.append(f"{len(versions)} versions, {len(checks)} checks")
    expected_changes = 1 if fault.outcome in ("new_version", "gone") else 0
    if len(changes) != expected_changes:
        problems.append(f"{len(changes)} changes, expected {expected_changes}")
    for version in versions[1:]:
        problems += _version_problems(store, version.id, url)
    if [v.seq for v in store.versions(other.id)] != [1]:
        problems.append("the other watch was not checked")
    return problems, reason


def _version_problems(store: Store, version_id: int, url: str) -> list[str]:
    version = store.get_version(version_id)
    assert version is not None
    text = store.version_text(version_id)
    snap = store.version_snapshot(version)
    problems = []
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        problems.append("NUL or lone surrogate stored")
    if len(version.title or "") > TITLE_MAX:
        problems.append(f"title of {len(version.title or '')} characters")
    if urlsplit(snap.url).hostname != urlsplit(url).hostname:
        problems.append(f"stored under {snap.url}")
    return problems


# -- the parent --------------------------------------------------------------------
def run_case(fault: ContentFault, limit: float) -> Row:
    with LocalServer() as site:
        url = site.url(ARTICLE)
        if fault.first is not None:
            fault.first(site, ARTICLE, url)
        else:
            site.route(ARTICLE, Newsroom(title=SEED.title, main=SEED.body, url=url).respond)
        site.page(OTHER, seed_page(site.url(OTHER)))
        parent, child_end = multiprocessing.Pipe()
        child = multiprocessing.get_context("spawn").Process(
            target=_child, args=(child_end, site.url(""), fault.name), daemon=True
        )
        deadline = time.monotonic() + limit
        child.start()
        try:
            if not _wait(parent, deadline):
                return Row(fault.name, False, None, None, "setup did not finish in time")
            parent.recv()
            fault.install(site, ARTICLE, url)
            parent.send("go")
            if not _wait(parent, deadline):
                return Row(fault.name, False, None, None, f"no result within {limit:g}s")
            result: dict[str, Any] = parent.recv()
        except EOFError:
            return Row(fault.name, False, None, None, f"child died (exit {child.exitcode})")
        finally:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
    problems: list[str] = result["problems"]
    reason = result["reason"] + (f"  [{'; '.join(problems)}]" if problems else "")
    return Row(fault.name, not problems, result["seconds"], result["peak_mb"], reason)


def _wait(conn: Connection, deadline: float) -> bool:
    return conn.poll(max(0.0, deadline - time.monotonic()))


def table(rows: list[Row]) -> str:
    width = max(len(r.case) for r in rows)
    lines = [f"{'case':<{width}} | held | seconds | peak MB | reason recorded"]
    lines.append(f"{'-' * width}-|------|---------|---------|{'-' * 40}")
    for r in rows:
        seconds = f"{r.seconds:7.2f}" if r.seconds is not None else "      -"
        peak = f"{r.peak_mb:7.1f}" if r.peak_mb is not None else "      -"
        reason = " ".join(r.reason.split())
        reason = reason if len(reason) <= 100 else reason[:99] + "…"
        lines.append(
            f"{r.case:<{width}} | {'yes' if r.held else 'NO ':4} | {seconds} | {peak} | {reason}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", action="append", help="run only these cases (repeatable)")
    parser.add_argument("--limit", type=float, default=LIMIT_S, help="seconds allowed per case")
    args = parser.parse_args(argv)
    known = {f.name for f in FAULTS}
    unknown = sorted(set(args.case or ()) - known)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    faults = [f for f in FAULTS if not args.case or f.name in args.case]
    rows = []
    for fault in faults:
        rows.append(run_case(fault, args.limit))
    print(table(rows))
    held = sum(r.held for r in rows)
    print(f"{held} held, {len(rows) - held} failed")
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
