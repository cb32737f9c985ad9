"""The cost of the evidence: WARC bytes and CPU per check, and ``watcher verify``'s time.

One daemon (the real Dispatcher + Pipeline + Fetcher, one WARC log, as
``watcher run`` has) checks N pages of bench/_pages.py's site (corpus bodies
in 30-80 KB pages, served uncompressed, as the peer race's site is):

  first      every page's first capture: a response record with the body
  unchanged  the same bytes again: a revisit record (headers only)
  noise      the relative times ticked: a new payload, so a full record

WARC bytes per check = growth of warc/ (records + CDXJ index) over the pass,
divided by the checks; CPU = thread time inside WarcLog.write. Then
``watcher verify``'s walk over every version (the chain, each stored text,
archive file and WARC record), per version and per 10,000 versions.

Run: .venv/bin/python bench/bench_warc.py [--n 200] [--ticks 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import corpus_or_exit
from _pages import start_site
from bench_storage import MINUTE_MS, START_MS, Clock, tree_bytes
from sqlalchemy import update

from watcher import api
from watcher import verify as verifying
from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store.tables import Watch
from watcher.warc import WarcLog


class Timed:
    """WarcLog.write, with the thread CPU time it takes added up."""

    def __init__(self, log: WarcLog) -> None:
        self.cpu = 0.0
        self.calls = 0
        inner = log.write

        def write(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - started
                self.calls += 1

        log.write = write  # type: ignore[method-assign]


async def run(site: str, n: int, ticks: int, home: Path) -> None:
    clock = Clock(START_MS)
    settings = Settings.from_env(
        {}, home=home, retries=0, per_host=20, max_connections=20, retire_after=0.0,
        allow_hosts="127.0.0.1",
    )  # fmt: skip
    store = api.open_store(settings)
    urls = [f"{site}/news/{i:05d}" for i in range(n)]
    api.add_watches(store, urls, now=START_MS)
    control(site, start=START_MS, now=START_MS, tick=0, conditional=0)
    print(f"{'pass':<10} {'checks':>6} {'WARC B/check':>13} {'WARC CPU ms/check':>18}")
    async with Fetcher(settings.fetch_settings()) as fetcher:
        pipeline = Pipeline(store, fetcher, settings, clock=clock)
        assert pipeline.warc is not None
        timed = Timed(pipeline.warc)
        dispatcher = Dispatcher(store, pipeline, settings, worker_id(), clock)

        async def one(name: str, minutes: int, **change: object) -> None:
            clock.now += minutes * MINUTE_MS
            with store.engine.begin() as conn:
                conn.execute(update(Watch).values(next_check_at=0))
            if change:
                control(site, **change)
            before, cpu, calls = tree_bytes(settings.warc_dir), timed.cpu, timed.calls
            await dispatcher.run_until_idle()
            checks = timed.calls - calls
            grew = tree_bytes(settings.warc_dir) - before
            print(f"{name:<10} {checks:>6} {grew / checks:>13.0f}"
                  f" {(timed.cpu - cpu) * 1000 / checks:>18.2f}", flush=True)  # fmt: skip

        await one("first", 0)
        await one("unchanged", 1)
        for k in range(ticks):
            await one("noise", 60, now=clock.now + 60 * MINUTE_MS, tick=k + 1)
        pipeline.close()
    watches = store.watches()
    started = time.perf_counter()
    cpu = time.process_time()
    report = verifying.verify(store, settings, watches)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    assert report.ok, report.problems[:3]
    per = wall / report.versions
    print(f"\nverify: {report.versions} versions ({report.warc_records} WARC records) in"
          f" {wall:.2f} s wall, {cpu:.2f} s CPU: {per * 1000:.2f} ms per version,"
          f" {per * 10_000:.0f} s per 10,000 versions")  # fmt: skip


def control(site: str, **params: object) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    with urllib.request.urlopen(f"{site}/_control?{query}", timeout=600) as response:
        json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="pages (default 200)")
    parser.add_argument("--ticks", type=int, default=3, help="noise passes (default 3)")
    args = parser.parse_args()
    corpus = corpus_or_exit()
    process, site, articles = start_site(corpus, args.n)
    try:
        with tempfile.TemporaryDirectory(prefix="watcher-bench-warc-") as tmp:
            print(f"site: {args.n} pages from {articles} corpus articles", flush=True)
            asyncio.run(run(site, args.n, args.ticks, Path(tmp) / "home"))
    finally:
        process.terminate()
        process.join(10)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
