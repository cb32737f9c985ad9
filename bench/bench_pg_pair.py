"""Two daemons over one PostgreSQL database: every due check done once, and
the pair's throughput against one daemon's.

A local news site (bench/_pages.py, its own process) serves N article pages.
Each round uses a fresh PostgreSQL database holding N watches, all due now:

  one   a single ``watcher run`` checks them all (first captures)
  two   two ``watcher run`` processes, each with its own data folder, share
        the database and check them all between them

Throughput is N over the time from the round's first check to its last (as
the checks table records them, so the daemons' start-up is left out). Then
per watch: how many checks were made (every due check exactly once means
one each: the next is due minutes later). CPU seconds are the daemons' own
(children of this process, after they exit), start-up included.

Run: .venv/bin/python bench/bench_pg_pair.py [--n 2000]
(the server of WATCHER_TEST_PG_URL, as for the tests; a scratch database per round)
Target (issue 12): the pair's throughput at least one daemon's, every due
check done once. Figures are from one run on this machine; compare ratios.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import corpus_or_exit
from _pages import start_site
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soak import Daemon, wait_until
from tests.conftest import PostgresUnavailable, pg_scratch_database
from watcher import api
from watcher.store import Store, upgrade


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def round_(label: str, daemons: int, n: int, base: str) -> float:
    """One round; returns its throughput in checks per second."""
    with pg_scratch_database("watcher_bench") as db, tempfile.TemporaryDirectory() as tmp:
        if isinstance(db, PostgresUnavailable):
            sys.exit(db.reason)
        upgrade(db)
        store = Store.open(db)
        api.add_watches(store, [f"{base}/article/{i}" for i in range(n)], now=0)
        runners = [Daemon(f"{label}{k}", Path(tmp) / f"home{k}", db) for k in range(daemons)]
        cpu_before = children_cpu()
        for daemon in runners:
            daemon.start()
        try:
            done = wait_until(lambda: checked(store) >= n, 3600, step=0.5)
        finally:
            for daemon in runners:
                daemon.stop()
        cpu = children_cpu() - cpu_before
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT watch_id, checked_at FROM checks")).all()
        store.close()
    assert done, f"{label}: not every watch was checked within an hour"
    per_watch = Counter(r.watch_id for r in rows)
    times = [r.checked_at for r in rows]
    span = max(1, max(times) - min(times)) / 1000
    rate = n / span
    repeated = sum(1 for count in per_watch.values() if count > 1)
    print(
        f"{label:4s} {daemons} daemon(s): {n} watches checked in {span:.1f} s = {rate:.0f}/s;"
        f" checks made {len(rows)}, watches checked more than once {repeated};"
        f" daemons' CPU {cpu:.1f} s ({cpu / n * 1000:.1f} ms/page, start-up included)"
    )
    return rate


def checked(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(DISTINCT watch_id) FROM checks")) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    corpus = corpus_or_exit()
    site, base, _ = start_site(corpus, args.n)
    try:
        one = round_("one", 1, args.n, base)
        two = round_("two", 2, args.n, base)
    finally:
        site.terminate()
    print(f"pair / one daemon (throughput): {two / one:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
