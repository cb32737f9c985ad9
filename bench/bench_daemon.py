"""Daemon passes against a local news site: wall, CPU, memory and bytes stored.

A site on 127.0.0.1 (bench/_pages.py, its own process) serves N article pages
of 30-80 KB built from the corpus snapshots. The real Dispatcher + Pipeline +
Fetcher (one of each for all the passes, as in `watcher run`) check every
watch once per pass, on SQLite in a temporary data folder; a simulated
clock moves 7 minutes between passes and every watch is made due by
resetting ``next_check_at``. Scenarios, in this order:

  floor        bare httpx.AsyncClient GET loop over the same N URLs, same concurrency,
               in its own process (its RSS column is its own peak)
  new          first pass: every page is new
  unchanged    same bytes, no 304s (raw-body hash), repeated --passes times
  unchanged304 same bytes, server answers If-None-Match with 304
  noise        every page's bytes changed, only noise did (relative time ticked,
               ad slot id changed)
  edit10       10% of pages had a paragraph edited, 90% same bytes
  floor        again, at the end; ratios use the faster of the two floors
  floorparse   the floor loop again, each page also parsed (lxml) and the text of
               its <main> hashed: the least any change detection costs

Each N runs in a fresh process, so peak RSS (ru_maxrss) is that N's own.

Run: .venv/bin/python bench/bench_daemon.py [--n 1000] [--n 10000] [--passes 3]
     .venv/bin/python bench/bench_daemon.py --profile [--n 500]   (cProfile of
     the new, unchanged and noise passes: the event loop and the worker threads)

Targets (issue 12, CPU): unchanged pass within 1.5x the floor; a 304 pass
cheaper than an unchanged 200 pass; the noise pass within the floorparse
reference; per-page cost flat from 1,000 to 10,000 watches; peak memory under
150 MB at 10,000 watches, flat over passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import multiprocessing
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
import lxml.html
from _common import corpus_or_exit, peak_rss_mb
from _pages import start_site
from sqlalchemy import func, select, text, update

from watcher import api
from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import Store
from watcher.store.tables import ChangeRow, Check, Watch

MINUTE_MS = 60_000
START_MS = 1_637_030_584_000  # 2021-11-16T02:43:04Z, the seed capture's time


class Clock:
    """The daemon's simulated clock: fixed during a pass, moved between passes."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Pass:
    name: str
    pages: int
    wall: float
    cpu: float
    server_cpu: float
    rss_mb: float
    stored: int = 0
    outcomes: str = ""


def rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Bench:
    def __init__(self, site: str, n: int, home: Path) -> None:
        self.site = site
        self.n = n
        self.urls = [f"{site}/news/{i:05d}" for i in range(n)]
        self.clock = Clock(START_MS)
        self.settings = Settings.from_env(
            {}, home=home, retries=0, per_host=20, max_connections=20, retire_after=0.0,
            allow_hosts="127.0.0.1",  # the benchmark's local site
        )  # fmt: skip
        self.store: Store = api.open_store(self.settings)
        self.claims = 0
        claim_due = self.store.claim_due

        def counted(*args: Any, **kwargs: Any) -> list[Any]:
            self.claims += 1
            return claim_due(*args, **kwargs)

        self.store.claim_due = counted  # type: ignore[method-assign]
        self.results: list[Pass] = []
        self.dispatcher: Dispatcher | None = None

    # -- the site -----------------------------------------------------------
    def control(self, **params: object) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        path = "/_control?" + query if query else "/_stats"
        with urllib.request.urlopen(self.site + path, timeout=600) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    # -- storage ------------------------------------------------------------
    def stored_bytes(self) -> int:
        with self.store.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        # the database (+ WAL), archive/, reports/ and site/: the whole data folder
        return tree_bytes(self.settings.home)

    def outcomes(self, since_change: int) -> str:
        with self.store.engine.connect() as conn:
            checks = conn.execute(
                select(Check.outcome, func.count())
                .where(Check.checked_at == self.clock.now)
                .group_by(Check.outcome)
            ).all()
            changes = conn.execute(
                select(ChangeRow.verdict, func.count())
                .where(ChangeRow.id > since_change)
                .group_by(ChangeRow.verdict)
            ).all()
        text_ = " ".join(f"{o}={c}" for o, c in sorted(checks))
        if changes:
            text_ += " | changes " + " ".join(f"{v}={c}" for v, c in sorted(changes))
        return text_

    def last_change_id(self) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(ChangeRow.id), 0))).scalar_one()

    def make_all_due(self) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(Watch).values(next_check_at=0))

    # -- passes -------------------------------------------------------------
    async def measure(
        self, name: str, work: Callable[[], Coroutine[Any, Any, None]], *, daemon: bool = True
    ) -> Pass:
        before_change = self.last_change_id() if daemon else 0
        before_bytes = self.stored_bytes() if daemon else 0
        server0 = self.control()["cpu"]
        claims0 = self.claims
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await work()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        server_cpu = self.control()["cpu"] - server0
        result = Pass(name, self.n, wall, cpu, server_cpu, rss_now_mb())
        if daemon:
            result.stored = self.stored_bytes() - before_bytes
            result.outcomes = self.outcomes(before_change)
            result.outcomes += f" | claim_due calls {self.claims - claims0}"
        self.results.append(result)
        print(
            f"  {name:<13} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
            f"load {os.getloadavg()[0]:.1f}  RSS {result.rss_mb:.0f} MB "
            f"(peak {peak_rss_mb():.0f})  {result.outcomes}",
            flush=True,
        )
        return result

    async def floor(self, parse: bool = False) -> Pass:
        """The bare httpx loop, run in a fresh process so that its memory and
        CPU are not mixed into the daemon's; its RSS column is its own peak.
        ``parse``: each page is also parsed (lxml) and its main text hashed,
        the least any change detection does (the "floorparse" reference)."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        args = (self.urls, self.settings.max_connections, self.settings.user_agent, child, parse)
        process = ctx.Process(target=floor_loop, args=args)
        server0 = self.control()["cpu"]
        process.start()
        wall, cpu, rss = parent.recv()
        process.join()
        name = "floorparse" if parse else "floor"
        result = Pass(name, self.n, wall, cpu, self.control()["cpu"] - server0, rss)
        self.results.append(result)
        print(
            f"  {name:<13} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
            f"load {os.getloadavg()[0]:.1f}  (own process, peak RSS {rss:.0f} MB)",
            flush=True,
        )
        return result

    async def daemon_pass(
        self, name: str, fetcher: Fetcher, profile: bool = False, **site: object
    ) -> Pass:
        """One pass with every watch due; ``site`` changes the pages first. A
        page's "N 分钟前" is computed from ``now``, which only moves when a
        pass asks for it (``now=True``), so unchanged passes serve the same bytes."""
        self.clock.now += 7 * MINUTE_MS
        self.make_all_due()
        if self.dispatcher is None:  # one for every pass, as `watcher run` has
            pipeline = Pipeline(self.store, fetcher, self.settings, clock=self.clock)
            self.dispatcher = Dispatcher(
                self.store, pipeline, self.settings, worker_id(), self.clock
            )
        dispatcher = self.dispatcher
        if site.pop("now", False):
            site["now"] = self.clock.now
        if site:
            self.control(**site)
        # CPU time (each thread's own): waits for the site, for SQLite's lock
        # and for the GIL are not what the CPU targets measure
        profiler = cProfile.Profile(time.thread_time) if profile else None
        threads = ThreadProfiles() if profile else None

        async def work() -> None:
            if profiler and threads:
                profiler.enable()
                with threads.patched():
                    await dispatcher.run_until_idle()
                profiler.disable()
            else:
                await dispatcher.run_until_idle()

        result = await self.measure(name, work)
        if profiler and threads:
            print_profile(f"{name} (event loop)", [profiler])
            print_profile(f"{name} (worker threads)", threads.profiles)
        return result

    async def run(self, passes: int, profile: bool) -> None:
        self.control(start=START_MS, now=START_MS, tick=0, conditional=0)
        t0 = time.perf_counter()
        api.add_watches(self.store, self.urls, now=START_MS)
        print(f"  added {self.n} watches in {time.perf_counter() - t0:.1f} s", flush=True)
        async with Fetcher(self.settings.fetch_settings()) as fetcher:
            if not profile:
                await self.floor()
            await self.daemon_pass("new", fetcher, profile, now=True)
            for k in range(1 if profile else passes):
                await self.daemon_pass(f"unchanged#{k + 1}", fetcher, profile)
            if not profile:
                await self.daemon_pass("unchanged304", fetcher, conditional=1)
            # relative time ticks 7 minutes, the ad slot changes: new bytes, same article
            await self.daemon_pass("noise", fetcher, profile, conditional=0, tick=1, now=True)
            if not profile:
                await self.daemon_pass("edit10", fetcher, edit=1)
                await self.floor()
                await self.floor(parse=True)

    def table(self) -> None:
        floors = [r for r in self.results if r.name == "floor"]
        floor = min(floors, key=lambda r: r.wall)
        floor_cpu = min(r.cpu for r in floors)
        print(f"\nN = {self.n} watches, max_connections = {self.settings.max_connections}")
        print(
            f"{'scenario':<13} {'wall s':>8} {'CPU s':>8} {'ms/page':>8} {'CPU ms/pg':>9} "
            f"{'wall/floor':>10} {'CPU/floor':>9} {'site CPU s':>10} {'RSS MB':>7} "
            f"{'stored B/page':>13}"
        )
        for r in self.results:
            own = r.name.startswith("floor")
            stored = f"{r.stored / r.pages:13.0f}" if not own else f"{'-':>13}"
            print(
                f"{r.name:<13} {r.wall:8.2f} {r.cpu:8.2f} {r.wall / r.pages * 1000:8.2f} "
                f"{r.cpu / r.pages * 1000:9.2f} {r.wall / floor.wall:10.2f} "
                f"{r.cpu / floor_cpu:9.2f} {r.server_cpu:10.2f} {r.rss_mb:7.0f} {stored}"
            )
        by_name = {r.name: r for r in self.results}
        print(f"peak RSS (ru_maxrss): {peak_rss_mb():.0f} MB")
        unchanged = [r for r in self.results if r.name.startswith("unchanged#")]
        if unchanged:
            print("RSS after unchanged passes: " + ", ".join(f"{r.rss_mb:.0f}" for r in unchanged))
            best = min(r.wall for r in unchanged)
            print(f"unchanged pass / floor (wall): {best / floor.wall:.2f}x (target <= 1.5x)")
            cpu = min(r.cpu for r in unchanged)
            print(f"unchanged pass / floor (CPU): {cpu / floor_cpu:.2f}x (target <= 1.5x)")
            if "unchanged304" in by_name:
                ratio = by_name["unchanged304"].cpu / cpu
                print(f"304 pass / unchanged 200 pass (CPU): {ratio:.2f}x (target < 1)")
            per_check = sum(r.stored for r in unchanged) / (len(unchanged) * self.n)
            print(f"bytes stored per unchanged re-check: {per_check:.0f}")
        if "new" in by_name:
            print(f"bytes stored per new version (first): {by_name['new'].stored / self.n:.0f}")
        if "noise" in by_name:
            noise = by_name["noise"]
            print(
                f"noise pass: {noise.cpu / self.n * 1000:.2f} ms CPU per page (target ~8 ms); "
                f"bytes stored per noise version: {noise.stored / self.n:.0f}"
            )
            if "floorparse" in by_name:
                ratio = noise.cpu / by_name["floorparse"].cpu
                print(f"noise pass / floorparse (CPU): {ratio:.2f}x (target <= 1)")
        if "edit10" in by_name:
            edit = by_name["edit10"]
            print(f"edit10 pass: bytes stored per edited page: {edit.stored / (self.n / 10):.0f}")


def floor_loop(
    urls: list[str], conc: int, user_agent: str, conn: Connection, parse: bool = False
) -> None:
    """Child process: GET every URL with ``conc`` workers on one AsyncClient;
    with ``parse``, parse each page and hash the text of its <main>."""
    limits = httpx.Limits(max_connections=conc)

    async def work() -> None:
        async with httpx.AsyncClient(
            limits=limits, headers={"User-Agent": user_agent}, timeout=60
        ) as client:
            pending = iter(urls)

            async def worker() -> None:
                for url in pending:
                    response = await client.get(url)
                    response.raise_for_status()
                    if parse:
                        root = lxml.html.document_fromstring(response.text)
                        main = cast(lxml.html.HtmlElement, next(root.iter("main"), root))
                        hashlib.sha256(main.text_content().encode()).hexdigest()

            await asyncio.gather(*(worker() for _ in range(conc)))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    asyncio.run(work())
    conn.send((time.perf_counter() - wall0, time.process_time() - cpu0, peak_rss_mb()))


class ThreadProfiles:
    """cProfile of the work handed to worker threads (``asyncio.to_thread``):
    a profiler only sees the thread that enabled it, and the pipeline's
    extract, parse, diff and storage all run in worker threads."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def _profiler(self) -> cProfile.Profile:
        profiler: cProfile.Profile | None = getattr(self._local, "profiler", None)
        if profiler is None:
            profiler = self._local.profiler = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(profiler)
        return profiler

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        original = asyncio.to_thread

        async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            return await original(lambda: self._profiler().runcall(func, *args, **kwargs))

        asyncio.to_thread = to_thread
        try:
            yield
        finally:
            asyncio.to_thread = original


def print_profile(name: str, profilers: list[cProfile.Profile]) -> None:
    if not profilers:
        return
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profilers[0], stream=out)
        for more in profilers[1:]:
            stats.add(more)
        stats.strip_dirs().sort_stats(order).print_stats(25)
        lines = out.getvalue().splitlines()
        start = next((k for k, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        print(f"\n--- cProfile, {name} pass, top 25 by {order} ---")
        print("\n".join(lines[start - 2 if start >= 2 else 0 :]))


def run_one(n: int, passes: int, profile: bool) -> None:
    corpus = corpus_or_exit()
    process, site, articles = start_site(corpus, n)
    try:
        with tempfile.TemporaryDirectory(prefix="watcher-bench-") as home:
            bench = Bench(site, n, Path(home))
            info = bench.control()
            print(
                f"site: {n} pages from {articles} corpus articles, "
                f"{info['min_bytes'] / 1000:.0f}-{info['max_bytes'] / 1000:.0f} KB "
                f"(mean {info['mean_bytes'] / 1000:.0f} KB); home {home}",
                flush=True,
            )
            print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)", flush=True)
            rss0 = rss_now_mb()
            asyncio.run(bench.run(passes, profile))
            print(f"RSS before the first pass: {rss0:.0f} MB")
            if not profile:
                bench.table()
            bench.store.close()
    finally:
        process.terminate()
        process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="watches (repeatable)")
    parser.add_argument("--passes", type=int, default=3, help="unchanged passes (default 3)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the new, unchanged and noise passes"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.n or ([500] if args.profile else [1000, 10000])
    corpus_or_exit()
    if args.one or len(sizes) == 1:
        run_one(sizes[0], args.passes, args.profile)
        return
    for n in sizes:  # a fresh process per N, so each peak RSS is its own
        command = [sys.executable, __file__, "--one", "--n", str(n), "--passes", str(args.passes)]
        if args.profile:
            command.append("--profile")
        subprocess.run(command, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        print(flush=True)


if __name__ == "__main__":
    main()
