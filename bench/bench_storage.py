"""Bytes on disk per stored version, and what storing and reading them costs.

Phases, on SQLite in a temporary data folder: the real Dispatcher + Pipeline
+ Fetcher check N pages of bench/_pages.py's site (corpus snapshot bodies in
30-80 KB pages whose byline says "N 分钟前" / "N 小时前", computed from the
simulated clock):

  first    every page's first capture
  noise    the clock moves an hour: every page's relative time ticks and its
           ad slot changes, so every page stores a noise-only version
           (repeated --ticks times)
  edit     a paragraph edited on 10% of the pages, ten rounds (each page
           once), the clock otherwise still: every version stored is an edit

Bytes per version = growth of the database (after a WAL checkpoint and
VACUUM) + archive/ + reports/ over the phase, divided by the versions it
stored. "before" is the same history in the layout before issue 12, rebuilt
from the same data folder: every content as plain text, an archive file per
version and two report files per change (each one what watcher export and
the report renderers write for it). site/ is rebuilt output, shown apart.

Then: the CPU cost of storing a 16-version delta chain of a ticking page and
of reading each version back (Repository.version_text), and the corpus
imported (snapshots + pairs) and exported: every source file must come back
byte for byte; the labelled noise pairs' v2 are shown with what they cost.

Run: .venv/bin/python bench/bench_storage.py [--n 40] [--ticks 8]
Target (issue 12): at most 2 KB on disk per noise-only version.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import corpus_or_exit
from _pages import start_site
from sqlalchemy import update

from watcher import api, snapshot
from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.importer import import_paths
from watcher.models import change_from_dict
from watcher.pipeline import Pipeline
from watcher.report import render_html, render_markdown
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import Store, codec, open_engine, upgrade
from watcher.store.tables import Watch

MINUTE_MS = 60_000
START_MS = 1_637_030_584_000  # 2021-11-16T02:43:04Z, the seed capture's time
CHAIN = 16


# -- sizes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Disk:
    """What a data folder holds, in bytes (file sizes; the database vacuumed)."""

    db: int
    archive: int
    reports: int
    site: int
    versions: int
    tables: dict[str, int]

    @property
    def total(self) -> int:
        return self.db + self.archive + self.reports


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def vacuumed(db: Path) -> tuple[int, dict[str, int]]:
    """The database's size once compacted, and each table's and index's share."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        count = conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    finally:
        conn.close()
    return db.stat().st_size, {"_versions": count, **tables}


def measure(settings: Settings) -> Disk:
    size, tables = vacuumed(settings.home / "watcher.db")
    return Disk(
        size,
        tree_bytes(settings.archive_dir),
        tree_bytes(settings.reports_dir),
        tree_bytes(settings.home / "site"),
        tables.pop("_versions"),
        tables,
    )


def before_layout(settings: Settings) -> int:
    """Bytes the same history took before issue 12: contents as plain text
    (and a ``reports`` delivery for every change) in the database, a file per
    version in archive/, two report files per change in reports/."""
    with tempfile.TemporaryDirectory(prefix="watcher-before-") as tmp:
        copy = Path(tmp) / "watcher.db"
        conn = sqlite3.connect(settings.home / "watcher.db")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        shutil.copyfile(settings.home / "watcher.db", copy)
        engine = open_engine(f"sqlite:///{copy}")
        store = Store(engine)
        files = 0
        try:
            with engine.begin() as conn:
                first = dict(
                    conn.exec_driver_sql(
                        "SELECT content_sha256, min(id) FROM versions GROUP BY content_sha256"
                    ).all()
                )
            plain = {sha: store.version_text(vid) for sha, vid in first.items()}
            for watch in store.watches():
                for version in store.versions(watch.id):
                    text = snapshot.join_capture_time(plain[version.content_sha256],
                                                      version.captured_at)  # fmt: skip
                    files += len(text.encode("utf-8"))
                for change in store.changes(watch.id):
                    shown = change_from_dict(change.record)
                    files += len(render_markdown(shown, tz=settings.timezone).encode("utf-8"))
                    files += len(render_html(shown, tz=settings.timezone).encode("utf-8"))
            with engine.begin() as conn:
                for sha, text in plain.items():
                    conn.exec_driver_sql(
                        "UPDATE contents SET text = ?, data = NULL, codec = 'text',"
                        " base_sha256 = NULL, depth = 0 WHERE sha256 = ?",
                        (text, sha),
                    )
                _unpack_json(conn)
                conn.exec_driver_sql(
                    "INSERT INTO deliveries (change_id, channel, state, attempts, due_at,"
                    " created_at, sent_at) SELECT id, 'reports', 'sent', 0, created_at,"
                    " created_at, created_at FROM changes WHERE id NOT IN"
                    " (SELECT change_id FROM deliveries WHERE channel = 'reports')"
                )
        finally:
            engine.dispose()
        return vacuumed(copy)[0] + files


def _unpack_json(conn: Any) -> None:
    """JSON as it was written before issue 12: every version's own page
    metadata (no ``metadata_seq``), non-ASCII characters as ``\\uXXXX``."""
    conn.exec_driver_sql(
        "UPDATE versions SET page_metadata = (SELECT h.page_metadata FROM versions h"
        " WHERE h.watch_id = versions.watch_id AND h.seq = versions.metadata_seq),"
        " metadata_seq = NULL WHERE metadata_seq IS NOT NULL"
    )
    for table, columns in (("versions", ("page_metadata",)), ("changes", ("record", "kinds"))):
        for row in conn.exec_driver_sql(f"SELECT id, {', '.join(columns)} FROM {table}").all():
            escaped = [json.dumps(json.loads(value)) for value in row[1:]]
            sets = ", ".join(f"{c} = ?" for c in columns)
            conn.exec_driver_sql(f"UPDATE {table} SET {sets} WHERE id = ?", (*escaped, row[0]))


# -- the daemon phases ----------------------------------------------------------------
class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Phase:
    name: str
    versions: int
    after: Disk
    grew: dict[str, int]
    before_bytes: int
    cpu_ms: float


class Daemon:
    def __init__(self, site: str, n: int, home: Path) -> None:
        self.site = site
        self.urls = [f"{site}/news/{i:05d}" for i in range(n)]
        self.clock = Clock(START_MS)
        self.settings = Settings.from_env(
            {}, home=home, retries=0, per_host=20, max_connections=20, retire_after=0.0,
            allow_hosts="127.0.0.1",  # the benchmark's local site
        )  # fmt: skip
        self.store = api.open_store(self.settings)
        self.last = measure(self.settings)
        self.last_before = 0
        self.phases: list[Phase] = []

    def control(self, **params: object) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        with urllib.request.urlopen(f"{self.site}/_control?{query}", timeout=600) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    async def one_pass(self, fetcher: Fetcher, minutes: int, **site: object) -> float:
        """Every watch due once; the site changed first. Returns CPU seconds."""
        self.clock.now += minutes * MINUTE_MS
        with self.store.engine.begin() as conn:
            conn.execute(update(Watch).values(next_check_at=0))
        if site:
            self.control(**site)
        pipeline = Pipeline(self.store, fetcher, self.settings, clock=self.clock)
        dispatcher = Dispatcher(self.store, pipeline, self.settings, worker_id(), self.clock)
        cpu = time.process_time()
        await dispatcher.run_until_idle()
        return time.process_time() - cpu

    def record(self, name: str, cpu: float) -> None:
        now, before = measure(self.settings), before_layout(self.settings)
        grew = {
            "database": now.db - self.last.db,
            "archive": now.archive - self.last.archive,
            "reports": now.reports - self.last.reports,
            "site (not counted)": now.site - self.last.site,
        }
        for table, size in now.tables.items():
            grew[f"  {table}"] = size - self.last.tables.get(table, 0)
        versions = now.versions - self.last.versions
        self.phases.append(Phase(name, versions, now, grew, before - self.last_before,
                                 cpu * 1000 / max(1, versions)))  # fmt: skip
        self.last, self.last_before = now, before

    async def run(self, ticks: int) -> None:
        self.control(start=START_MS, now=START_MS, tick=0, conditional=0)
        api.add_watches(self.store, self.urls, now=START_MS)
        self.last_before = before_layout(self.settings)
        async with Fetcher(self.settings.fetch_settings()) as fetcher:
            self.record("first", await self.one_pass(fetcher, 0, now=START_MS))
            cpu = 0.0
            for k in range(ticks):
                now = self.clock.now + 60 * MINUTE_MS
                cpu += await self.one_pass(fetcher, 60, now=now, tick=k + 1)
            self.record("noise", cpu)
            cpu = 0.0
            for _ in range(10):
                cpu += await self.one_pass(fetcher, 1, edit=1)
            self.record("edit", cpu)

    def table(self) -> None:
        print(f"\n{'phase':<7} {'versions':>8} {'after B/version':>16} {'before B/version':>17}"
              f" {'CPU ms/version':>15}")  # fmt: skip
        for p in self.phases:
            after = sum(p.grew[k] for k in ("database", "archive", "reports"))
            print(f"{p.name:<7} {p.versions:>8} {after / p.versions:>16.0f}"
                  f" {p.before_bytes / p.versions:>17.0f} {p.cpu_ms:>15.1f}")  # fmt: skip
        print("long run, once each watch's check log is at its retention (checks are pruned,"
              " versions are not):")  # fmt: skip
        for p in self.phases:
            checks = sum(v for k, v in p.grew.items() if k.strip().split("_")[:2] in
                         (["checks"], ["ix", "checks"]))  # fmt: skip
            after = sum(p.grew[k] for k in ("database", "archive", "reports")) - checks
            print(f"  {p.name:<7} {after / p.versions:>8.0f} B/version")
        for p in self.phases:
            print(f"\n{p.name}: growth per version, by part (after)")
            for part, grew in p.grew.items():
                if grew:
                    print(f"  {part:<40} {grew / p.versions:>9.0f}")


# -- CPU of a delta chain -----------------------------------------------------------------
@contextmanager
def scratch_store(folder: Path) -> Iterator[Store]:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder}/chain.db"
    upgrade(url)
    engine = open_engine(url)
    try:
        yield Store(engine)
    finally:
        engine.dispose()


def chain_costs(page: str, folder: Path, repeats: int = 20) -> None:
    """Store CHAIN versions of a ticking page, read each back; medians in ms."""
    ticks = [page.replace("</time>", f" {k}</time>", 1) for k in range(CHAIN)]
    store_ms: list[float] = []
    read_ms: dict[int, list[float]] = {}
    for r in range(repeats):
        with scratch_store(folder / str(r)) as store:
            watch, _ = store.add_watch("https://example.org/a", site="example.org", now_ms=1)
            versions = []
            for k, text in enumerate(ticks):
                sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
                t = time.perf_counter()
                versions.append(store.add_version(
                    watch.id, captured_at=k, content_sha256=sha, content_text=text,
                    http_status=200, final_url=None, title="t", archive_path=None,
                ))  # fmt: skip
                store_ms.append((time.perf_counter() - t) * 1000)
            store.version_text(versions[-1].id)  # compiled statements, warm pages
            for k, version in enumerate(versions):
                t = time.perf_counter()
                assert store.version_text(version.id) == ticks[k]
                read_ms.setdefault(k, []).append((time.perf_counter() - t) * 1000)
            with store.engine.begin() as conn:  # the layout before: a plain text row
                conn.exec_driver_sql(
                    "UPDATE contents SET text = ?, data = NULL, codec = 'text' WHERE depth = 0",
                    (ticks[0],),
                )
            t = time.perf_counter()
            store.version_text(versions[0].id)
            read_ms.setdefault(-1, []).append((time.perf_counter() - t) * 1000)
    print(f"\ndelta chain of {CHAIN} versions of a {len(page.encode()) / 1000:.0f} KB page"
          f" (SQLite, median of {repeats}):")  # fmt: skip
    print(f"  store (add_version, own transaction): {statistics.median(store_ms):.2f} ms")
    raw = [(ticks[k], codec.Base("x", ticks[k - 1], 0)) for k in range(1, CHAIN)]
    full = _timed(lambda: [codec.encode(text, None) for text, _ in raw]) / len(raw)
    delta = _timed(lambda: [codec.encode(text, base) for text, base in raw]) / len(raw)
    print(f"    of which compressing: {full:.2f} ms for a full copy, {delta:.2f} ms for a"
          " tick's delta")  # fmt: skip
    print(f"  read a plain text row (before): {statistics.median(read_ms[-1]):.2f} ms")
    for k in (0, 1, CHAIN // 2, CHAIN - 1):
        print(f"  read version {k + 1} (depth {k}): {statistics.median(read_ms[k]):.2f} ms")


def _timed(work: Any, repeats: int = 5) -> float:
    """Median milliseconds of ``work()``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


# -- the corpus round trip -----------------------------------------------------------------
def round_trip(corpus: Path, folder: Path) -> None:
    home = folder / "import"
    settings = Settings.from_env({}, home=home)
    store = api.open_store(settings)
    try:
        t = time.perf_counter()
        summary = import_paths(store, settings.archive_dir,
                               [corpus / "snapshots", corpus / "pairs"], workers=2)  # fmt: skip
        took = time.perf_counter() - t
        target = folder / "exported"
        written = api.export_archive(store, target)
        sources = sorted([*corpus.glob("snapshots/*/*.md"), *corpus.glob("pairs/*/v*.md")])
        rejected = {r.source for r in summary.rejected}
        accepted = [p for p in sources if str(p) not in rejected]
        exported = {p.read_bytes() for p in target.rglob("*.md")}
        same = sum(1 for p in accepted if p.read_bytes() in exported)
        versions = [v for w in store.watches() for v in store.versions(w.id)]
        unfiled = sum(1 for v in versions if v.archive_path is None)
        print(f"\ncorpus import: {summary.versions_added} versions ({unfiled} noise-only, no"
              f" archive file) in {took:.1f} s; export wrote {written} files")  # fmt: skip
        print(f"  source files exported byte for byte: {same} of {len(accepted)} imported"
              f" ({len(rejected)} files rejected by the import)")  # fmt: skip
        noise_pairs(corpus, store)
    finally:
        store.close()
    size, _ = vacuumed(home / "watcher.db")
    print(f"  data folder: database {size / 1000:.0f} KB, archive"
          f" {tree_bytes(settings.archive_dir) / 1000:.0f} KB,"
          f" before-layout {before_layout(settings) / 1000:.0f} KB")  # fmt: skip


def noise_pairs(corpus: Path, store: Store) -> None:
    """The labelled noise pairs' second versions: content size and stored size."""
    labels = json.loads((corpus / "pairs" / "labels.json").read_text("utf-8"))["pairs"]
    shown = []
    with store.engine.connect() as conn:
        for pid, label in sorted(labels.items()):
            if label["significant"]:
                continue
            text = snapshot.file_text((corpus / "pairs" / pid / "v2.md").read_bytes(), pid)
            content = snapshot.split_capture_time(text)
            sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
            row = conn.exec_driver_sql(
                "SELECT codec, size, length(data) FROM contents WHERE sha256 = ?", (sha,)
            ).first()
            if row is not None:
                shown.append(f"{pid} {row[0]} {row[1] / 1000:.1f} KB -> {row[2]} B")
    print("  labelled noise pairs, v2 content -> stored: " + "; ".join(shown))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="pages (default 40)")
    parser.add_argument("--ticks", type=int, default=8, help="noise passes (default 8)")
    parser.add_argument("--keep", type=Path, help="keep the daemon's data folder here")
    args = parser.parse_args()
    corpus = corpus_or_exit()
    process, site, articles = start_site(corpus, args.n)
    try:
        with tempfile.TemporaryDirectory(prefix="watcher-bench-storage-") as tmp:
            daemon = Daemon(site, args.n, args.keep or Path(tmp) / "home")
            print(f"site: {args.n} pages from {articles} corpus articles", flush=True)
            asyncio.run(daemon.run(args.ticks))
            daemon.table()
            latest = daemon.store.versions(daemon.store.watches()[0].id)[-1]
            page = daemon.store.version_text(latest.id)
            daemon.store.close()
            chain_costs(page, Path(tmp))
            round_trip(corpus, Path(tmp))
    finally:
        process.terminate()
        process.join(10)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
