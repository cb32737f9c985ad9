"""Transport faults through the real Fetcher + Pipeline: time, memory, what is recorded.

For each fault of tests/support/hostile.py (connection refused, silence,
slow headers, a trickled body, 1 GB bodies, gzip and brotli bombs, broken
framing, 5xx, 429 with every kind of Retry-After, redirect loops and
redirects to other schemes):

1. this process serves a healthy article and a second healthy page on
   127.0.0.1 (the hostile servers live here, so their memory is not counted);
2. a fresh child process (spawned, so its peak RSS is its own) makes a temp
   SQLite data folder, adds both watches and stores a first version of each
   with one daemon pass (the real Dispatcher, Pipeline and Fetcher);
3. the article's URL is taken over by the fault, and the child runs a second
   daemon pass with timers pending as in ``watcher run`` (APScheduler's next
   poll and report-site jobs); the pass is measured: wall seconds, peak RSS;
4. the child checks what was recorded.

Peak MB is the child's peak RSS during the faulty pass (the high-water mark
is reset just before it, through /proc/self/clear_refs; Linux only).

A case *held* when the pass finished in time: a fault that leaves the client
waiting within the fetch's worst case (every attempt timing out, every
back-off at its cap) plus 2 s, any other within the back-offs plus 1.5 s;
peak RSS grew by at most 4 x max_body + 64 MB; the article got one error check with a one-line
reason of the expected kind (and its HTTP status, when there was one), its
version is unchanged, and the healthy page got its check in the same pass.

Everything is bounded: each pass runs under a time limit, each child under an
address-space cap (so a bomb that escapes is a MemoryError, not the machine's
memory) and is killed if it overruns; the hostile handlers stop when their
case ends.

Run: .venv/bin/python bench/bench_faults_fetch.py [--case brotli-bomb ...]
     [--timeout 2] [--retries 1] [--max-body-mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import re
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _common import ROOT

sys.path.insert(0, str(ROOT))  # tests.support, for the hostile servers

from tests.support.hostile import FAULTS, Fault
from tests.support.http_server import LocalServer
from tests.support.newsroom import SEED, Newsroom
from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import CheckOutcome, Store, now_ms

ARTICLE = "/news/article-1"
OTHER = "/news/other"
DAY_MS = 86_400_000
#: Timers pending during a pass, as the daemon's scheduler keeps them: the next
#: poll (WATCHER_POLL's default) and the report-site flush. A wait scheduled
#: wrongly (a nan) sleeps until one of them.
SCHEDULER_TIMERS_S = (5.0, 60.0)
SETUP_LIMIT_S = 60.0  # child start, migrations and the healthy pass
SLACK_S = 2.0  # over the worst case, for faults that leave the client waiting
QUICK_SLACK_S = 1.5  # over the back-offs, for faults that answer at once
BACKOFF_S = (0.1, 0.5)  # base, cap
MEMORY_SLACK_MB = 64.0


@dataclass(frozen=True)
class Options:
    timeout: float
    retries: int
    max_body: int
    memory_cap_mb: int


@dataclass(frozen=True)
class Outcome:
    case: str
    held: bool
    seconds: float
    peak_mb: float
    grew_mb: float
    reason: str
    problems: tuple[str, ...] = ()


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> float:
    """Start measuring the peak afresh; returns the RSS now. (ru_maxrss cannot
    be reset, and a spawned child starts with its parent's.)"""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The peak RSS since the last :func:`reset_peak_rss` (or since the process started)."""
    return _status_mb("VmHWM")


def settings_for(home: Path, opts: Options) -> Settings:
    return Settings.from_env(
        {"WATCHER_ALLOW_HOSTS": "127.0.0.1"},
        home=home,
        database_url=f"sqlite:///{home}/watcher.db",
        timeout=opts.timeout,
        retries=opts.retries,
        retry_backoff=BACKOFF_S[0],
        retry_backoff_max=BACKOFF_S[1],
        max_body=opts.max_body,
    )


async def daemon_pass(settings: Settings, store: Store, later_ms: int, limit_s: float) -> None:
    """One pass of the daemon's dispatcher, all watches due, under a time limit."""

    def clock() -> int:
        return now_ms() + later_ms

    loop = asyncio.get_running_loop()
    timers = [loop.call_later(delay, lambda: None) for delay in SCHEDULER_TIMERS_S]
    try:
        async with asyncio.timeout(limit_s):
            async with Fetcher(settings.fetch_settings()) as fetcher:
                pipeline = Pipeline(store, fetcher, settings, clock=clock)
                dispatcher = Dispatcher(store, pipeline, settings, worker_id(), clock=clock)
                await dispatcher.run_until_idle()
    finally:
        for timer in timers:
            timer.cancel()


def run_case(conn: Connection, name: str, urls: tuple[str, str], opts: Options) -> None:
    """The child: healthy pass, wait for the fault, faulty pass, report."""
    cap = opts.memory_cap_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    logging.getLogger("watcher").setLevel(logging.ERROR)  # the table says it all
    try:
        with tempfile.TemporaryDirectory(prefix="watcher-bench-faults-") as tmp:
            conn.send(asdict(measure(conn, name, urls, opts, Path(tmp))))
    except BaseException as exc:  # report anything, even a MemoryError, as a failed case
        failed = Outcome(name, False, 0.0, peak_rss_mb(), 0.0, "", (f"child: {exc!r}",))
        conn.send(asdict(failed))


def measure(
    conn: Connection, name: str, urls: tuple[str, str], opts: Options, home: Path
) -> Outcome:
    fault = next(f for f in FAULTS if f.name == name)
    settings = settings_for(home, opts)
    store = api.open_store(settings)
    article, other = urls
    api.add_watches(store, [article, other])
    asyncio.run(daemon_pass(settings, store, 0, SETUP_LIMIT_S))
    article_id = api.require_watch(store, article).id
    other_id = api.require_watch(store, other).id
    versions = store.versions(article_id)
    conn.send("ready")
    conn.recv()  # the fault is in place

    base = reset_peak_rss()
    bound_s = bound_for(fault, opts)
    started = time.perf_counter()
    problems: list[str] = []
    try:
        asyncio.run(daemon_pass(settings, store, 3 * DAY_MS, bound_s + 10))
    except TimeoutError:
        problems.append("pass did not finish")
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()

    checks = store.recent_checks(article_id, limit=10)[::-1]
    reason = (checks[-1].error or "") if len(checks) == 2 else ""
    problems += verdict(fault, checks, reason)
    if store.versions(article_id) != versions or len(versions) != 1:
        problems.append("versions changed")
    other_checks = store.recent_checks(other_id, limit=10)
    if len(other_checks) != 2 or other_checks[0].outcome is CheckOutcome.ERROR:
        problems.append("healthy watch not checked")
    if seconds > bound_s:
        problems.append(f"slower than {bound_s:g}s")
    if peak - base > 4 * opts.max_body / 2**20 + MEMORY_SLACK_MB:
        problems.append(f"memory grew {peak - base:.0f} MB")
    store.close()
    return Outcome(name, not problems, seconds, peak, peak - base, reason, tuple(problems))


def bound_for(fault: Fault, opts: Options) -> float:
    """The most seconds the faulty pass may take."""
    backoffs = BACKOFF_S[1] * opts.retries
    if fault.waits:
        return opts.timeout * (opts.retries + 1) + backoffs + SLACK_S
    return backoffs + QUICK_SLACK_S


def verdict(fault: Fault, checks: list[Any], reason: str) -> list[str]:
    if len(checks) != 2:
        return [f"{len(checks) - 1} check rows for the fault, not 1"]
    check = checks[-1]
    out = []
    if check.outcome is not CheckOutcome.ERROR:
        out.append(f"outcome {check.outcome.value}")
    if "\n" in reason or not re.search(fault.reason, reason):
        out.append("unexpected reason")
    if check.http_status != fault.status:
        out.append(f"http_status {check.http_status}, expected {fault.status}")
    return out


def run(fault: Fault, opts: Options) -> Outcome:
    """Serve the case, run its child, return what the child measured."""
    seed = snapshot_mod.read(SEED)
    with LocalServer() as article_site, LocalServer() as other_site:
        room = Newsroom(title=seed.title, main=seed.body, url=article_site.url(ARTICLE))
        article_site.route(ARTICLE, room.respond)
        other_site.page(
            OTHER, "<html><head><title>短讯</title></head><body><p>正常。</p></body></html>"
        )
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        urls = (article_site.url(ARTICLE), other_site.url(OTHER))
        child = ctx.Process(target=run_case, args=(theirs, fault.name, urls, opts), daemon=True)
        child.start()
        try:
            return _drive(ours, fault, article_site, opts)
        finally:
            child.join(5)
            if child.is_alive():
                child.kill()  # our own child, overran its limits
                child.join(5)


def _drive(conn: Connection, fault: Fault, site: LocalServer, opts: Options) -> Outcome:
    def failed(why: str) -> Outcome:
        return Outcome(fault.name, False, 0.0, 0.0, 0.0, "", (why,))

    if not conn.poll(SETUP_LIMIT_S):
        return failed("child did not get ready")
    ready = conn.recv()
    if isinstance(ready, dict):
        return Outcome(**ready)
    with fault.applied(site, ARTICLE):
        conn.send("go")
        if not conn.poll(bound_for(fault, opts) + 30):
            return failed("child overran; killed")
        return Outcome(**conn.recv())


def table(outcomes: list[Outcome]) -> str:
    rows = [("case", "held", "seconds", "peak MB", "reason recorded")]
    for o in outcomes:
        reason = o.reason if len(o.reason) <= 70 else o.reason[:69] + "…"
        if o.problems:
            reason = f"{reason or '-'}  [{'; '.join(o.problems)}]"
        rows.append(
            (o.case, "yes" if o.held else "NO", f"{o.seconds:.2f}", f"{o.peak_mb:.0f}", reason)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in [*widths, 15]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [f.name for f in FAULTS]
    parser.add_argument("--case", action="append", choices=names, help="only these (repeat)")
    parser.add_argument("--timeout", type=float, default=2.0, help="fetch timeout, seconds")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--max-body-mb", type=int, default=10)
    parser.add_argument("--memory-cap-mb", type=int, default=3072, help="child address space")
    args = parser.parse_args()
    opts = Options(args.timeout, args.retries, args.max_body_mb * 2**20, args.memory_cap_mb)
    chosen = [f for f in FAULTS if not args.case or f.name in args.case]
    print(
        f"timeout {opts.timeout:g}s, retries {opts.retries}, back-off {BACKOFF_S[0]:g}-{BACKOFF_S[1]:g}s, "
        f"max_body {args.max_body_mb} MB; one child process per case"
    )
    outcomes = []
    for fault in chosen:
        outcome = run(fault, opts)
        outcomes.append(outcome)
        print(f"  {fault.name}: {'held' if outcome.held else 'FAILED'} ({outcome.seconds:.2f}s)")
    print()
    print(table(outcomes))
    held = sum(o.held for o in outcomes)
    print(f"\n{held} held, {len(outcomes) - held} failed")
    return 0 if held == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
