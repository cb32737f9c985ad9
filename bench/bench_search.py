"""Search latency over 100,000 versions, and what building the index costs,
for either index: FTS5 (``--backend fts5``, a SQLite database's) or pg_trgm
(``--backend pg``, a PostgreSQL database's ``search_texts`` table).

Two parts:

1. **The index at scale.** 100,000 versions made from the real-article corpus
   (each a corpus article with one paragraph replaced by another article's,
   so versions differ the way edits do; three of them carry a rare phrase)
   are written straight into a fresh index (``add_documents``, 5,000 a
   transaction): build time and size, then the median and p95 of the first
   page (20 hits) of a common three-character Chinese term, a rare phrase, a
   Latin word and phrase, two-character terms (no trigram: a common one, a
   rare one) and a filtered query. On PostgreSQL the versions rows the index
   refers to are made first (copies of one real version, by SQL), the
   table is then vacuumed and analysed (what autovacuum does after such a
   load), and each query's plan is named: GIN (the trigram indexes), time
   (newest first along the capture-time index, filtering) or seq (a scan).
2. **The real path.** A scratch database filled through the store
   (``add_version``), indexed by ``reconcile`` (stored text read back through
   the store, parsed into blocks): versions per second, and the cost of a
   catch-up when nothing is new (what every search pays).

PostgreSQL runs use throwaway databases on the ``--pg-url`` server, created
and dropped here.

    .venv/bin/python bench/bench_search.py [--versions 100000] [--stored 2000]
        [--backend fts5|pg] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--parts 1,2]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import corpus_or_exit, describe
from tests.conftest import PostgresUnavailable, pg_scratch_database
from watcher import snapshot
from watcher.article import parse_article
from watcher.errors import WatcherError
from watcher.search import PgSearchIndex, SearchIndex, open_index, plain_text, terms
from watcher.store import Store, open_engine, upgrade
from watcher.store import searchtexts as texts

RARE = "玄武湖畔的秘密会谈"
RUNS = 30
T0 = 1_700_000_000_000
WATCHES = 5000
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

Index = SearchIndex | PgSearchIndex


def corpus_articles() -> list[tuple[str, str, list[str]]]:
    """(url, title, paragraphs) of every corpus snapshot with some text."""
    out = []
    for path in sorted((corpus_or_exit() / "snapshots").glob("*/*.md")):
        try:
            snap = snapshot.read(path)
        except (WatcherError, OSError):
            continue
        blocks = [b.text for b in parse_article(snap).blocks if b.text]
        if len(blocks) >= 3:
            out.append((snap.url, snap.title, blocks))
    return out


def documents(
    articles: list[tuple[str, str, list[str]]], count: int
) -> Iterator[tuple[int, int, int, int, str, str]]:
    """``count`` versions: article i % n, one paragraph swapped for another's."""
    rng = random.Random(7)
    rare_at = {count // 3, count // 2, count - 5}
    for i in range(count):
        _url, title, paragraphs = articles[i % len(articles)]
        body = list(paragraphs)
        donor = articles[rng.randrange(len(articles))][2]
        body[rng.randrange(len(body))] = donor[rng.randrange(len(donor))]
        if i in rare_at:
            body.insert(1, f"据报道，{RARE}于上周举行。")
        watch_id = i % WATCHES + 1
        yield (i + 1, watch_id, i // WATCHES + 1, T0 + i * 60_000, title, "\n".join(body))


def timed(index: Index, query: str, **kwargs: object) -> tuple[list[float], int]:
    ms = []
    hits = 0
    for _ in range(RUNS):
        start = time.perf_counter()
        page = index.search(query, **kwargs)  # type: ignore[arg-type]
        ms.append((time.perf_counter() - start) * 1000)
        hits = len(page.hits)
    return ms, hits


def common_trigram(articles: list[tuple[str, str, list[str]]]) -> str:
    """The most frequent run of three CJK characters in the corpus."""
    counts: dict[str, int] = {}
    for _, _, paragraphs in articles:
        text = "".join(paragraphs)
        for i in range(len(text) - 2):
            tri = text[i : i + 3]
            if all("\u4e00" <= ch <= "\u9fff" for ch in tri):
                counts[tri] = counts.get(tri, 0) + 1
    return max(counts, key=lambda k: counts[k])


class Backend:
    """Where the index lives, made fresh: ``scale`` (part 1) and ``real`` (part 2)."""

    def __init__(self, name: str, folder: Path, pg_url: str) -> None:
        self.name, self.folder, self.pg_url = name, folder, pg_url

    @contextmanager
    def database(self, label: str) -> Iterator[str]:
        """A fresh, migrated database's URL."""
        if self.name == "fts5":
            (self.folder / label).mkdir()
            url = f"sqlite:///{self.folder / label}/watcher.db"
            upgrade(url)
            yield url
            return
        with pg_scratch_database("watcher_bench", self.pg_url) as url:
            if isinstance(url, PostgresUnavailable):
                sys.exit(url.reason)
            upgrade(url)
            yield url

    def home(self, label: str) -> Path:
        return self.folder / label


def at_scale(articles: list[tuple[str, str, list[str]]], count: int, backend: Backend) -> None:
    with backend.database("scale") as url:
        engine = open_engine(url)
        try:
            store = Store(engine)
            index = open_index(backend.home("scale"), store)
            if isinstance(index, PgSearchIndex):
                version_rows(store, count)
            build(index, articles, count)
            if isinstance(index, PgSearchIndex):
                vacuum(url)
                size = table_size(engine)
            else:
                size = sum(p.stat().st_size for p in backend.home("scale").glob("search.db*"))
            text_mb = sum(len(d[5].encode()) for d in documents(articles, count)) / 1e6
            print(f"  {size / 1e6:,.0f} MB on disk for {text_mb:,.0f} MB of text")
            queries(index, articles)
        finally:
            engine.dispose()


def build(index: Index, articles: list[tuple[str, str, list[str]]], count: int) -> None:
    start = time.perf_counter()
    batch: list[tuple[int, int, int, int, str, str]] = []
    for doc in documents(articles, count):
        batch.append(doc)
        if len(batch) == 5000:
            index.add_documents(batch)
            batch = []
    index.add_documents(batch)
    built = time.perf_counter() - start
    print(f"index of {index.count():,} versions: built in {built:.1f} s "
          f"({count / built:,.0f} versions/s)")  # fmt: skip


def queries(index: Index, articles: list[tuple[str, str, list[str]]]) -> None:
    common = common_trigram(articles)
    cases: list[tuple[str, str, dict[str, object]]] = [
        (f"common 3-char Chinese {common!r}", common, {}),
        (f"rare phrase {RARE!r}", RARE, {}),
        ("Latin word 'police'", "police", {}),
        ("Latin phrase '\"the government\"'", '"the government"', {}),
        ("2-char Chinese '美国' (no trigram)", "美国", {}),
        ("2-char '玄武' (no trigram)", "玄武", {}),
        ("2-char rare '密会' (no trigram: reads every text)", "密会", {}),
        ("2-char rare '秘密' + 3-char", "秘密 玄武湖", {}),
        (f"{common!r} in 50 watches", common, {"watch_ids": range(1, 51)}),
    ]
    for label, query, kwargs in cases:
        ms, hits = timed(index, query, **kwargs)
        print(describe(f"  {label}, first page ({hits} hits){plan_of(index, query, kwargs)}", ms))


# -- PostgreSQL ---------------------------------------------------------------------


def version_rows(store: Store, count: int) -> None:
    """Versions 1..count of watches 1..WATCHES, as :func:`documents` numbers
    them (the index's rows refer to them): one real watch and version through
    the store, copied by SQL (every other column as the original's)."""
    watch, _ = store.add_watch("https://bench.example/0", site="bench.example", now_ms=T0)
    content = "<main><p>bench</p></main>"
    store.add_version(watch.id, captured_at=T0, content_sha256=hashlib.sha256(content.encode()).hexdigest(),
                      content_text=content, http_status=200, final_url=None, title="bench",
                      archive_path=None)  # fmt: skip
    found = inspect(store.engine)
    watch_cols = [c["name"] for c in found.get_columns("watches") if c["name"] != "id"]
    version_cols = [c["name"] for c in found.get_columns("versions")]
    made = {"url": "url || '/' || g", "id": "g", "watch_id": f"(g - 1) % {WATCHES} + 1",
            "seq": f"(g - 1) / {WATCHES} + 1", "captured_at": f"{T0} + (g - 1)::bigint * 60000"}  # fmt: skip
    with store.engine.begin() as conn:
        for table, cols, last in (
            ("watches", watch_cols, WATCHES),
            ("versions", version_cols, count),
        ):
            listed = ", ".join(cols)
            chosen = ", ".join(made.get(c, c) for c in cols)
            conn.execute(text(f"INSERT INTO {table} ({listed}) SELECT {chosen} FROM {table}, "
                              f"generate_series(2, {last}) g WHERE {table}.id = 1"))  # fmt: skip
        conn.execute(text("SELECT setval(pg_get_serial_sequence('versions', 'id'), :n)"),
                     {"n": count})  # fmt: skip


def vacuum(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    start = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE search_texts"))
    engine.dispose()
    print(f"  VACUUM ANALYZE (flushes the GIN pending lists): {time.perf_counter() - start:.1f} s")


def table_size(engine: Engine) -> int:
    sql = (
        "SELECT pg_total_relation_size('search_texts'), pg_table_size('search_texts'),"
        " pg_indexes_size('search_texts'), pg_relation_size('ix_search_texts_body_trgm'),"
        " pg_relation_size('ix_search_texts_title_trgm')"
    )
    with engine.connect() as conn:
        total, table, indexes, body, title = conn.execute(text(sql)).one()
    print(f"  search_texts: {total / 1e6:,.0f} MB (pg_total_relation_size): table with its "
          f"TOAST {table / 1e6:,.0f} MB, indexes {indexes / 1e6:,.0f} MB (GIN body "
          f"{body / 1e6:,.0f} MB, GIN title {title / 1e6:,.0f} MB)")  # fmt: skip
    return int(total)


def plan_of(index: Index, query: str, kwargs: dict[str, object]) -> str:
    """' [GIN]', ' [time]' or ' [seq]': how PostgreSQL chose to find the page."""
    if not isinstance(index, PgSearchIndex):
        return ""
    plan = texts.explain(index.engine, index.schema, index.table_query(terms(query), **kwargs))  # type: ignore[arg-type]
    if "ix_search_texts_body_trgm" in plan:
        return " [GIN]"
    return " [time]" if "ix_search_texts_time" in plan else " [seq]"


# -- the real path ------------------------------------------------------------------


def real_path(articles: list[tuple[str, str, list[str]]], count: int, backend: Backend) -> None:
    with backend.database("real") as url:
        engine = open_engine(url)
        try:
            store = Store(engine)
            store_versions(store, articles, count)
            index = open_index(backend.home("real"), store)
            start = time.perf_counter()
            index.reconcile(store)
            built = time.perf_counter() - start
            print(f"through the store: {count:,} versions indexed in {built:.1f} s "
                  f"({count / built:,.0f} versions/s: read, decode, parse, write)")  # fmt: skip
            ms = []
            for _ in range(RUNS):
                start = time.perf_counter()
                index.catch_up(store)
                ms.append((time.perf_counter() - start) * 1000)
            print(describe("  catch-up with nothing new (before every search)", ms))
            assert plain_text(()) == ""
        finally:
            engine.dispose()


def store_versions(store: Store, articles: list[tuple[str, str, list[str]]], count: int) -> None:
    watches = [store.add_watch(f"https://bench.example/{i}", site="bench.example",
                               now_ms=T0)[0] for i in range(count // 10)]  # fmt: skip
    for i in range(count):
        src_url, title, paragraphs = articles[i % len(articles)]
        body = "<main>" + "".join(f"<p>{p}</p>" for p in paragraphs) + f"<p>{i}</p></main>"
        snap = snapshot.Snapshot(url=src_url, title=title, body=body, captured_at=T0 + i)
        content = snapshot.content_text(snap)
        store.add_version(
            watches[i % len(watches)].id, captured_at=T0 + i,
            content_sha256=hashlib.sha256(content.encode()).hexdigest(), content_text=content,
            http_status=200, final_url=src_url, title=title, archive_path=None,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--stored", type=int, default=2_000)
    parser.add_argument("--backend", choices=["fts5", "pg"], default="fts5")
    parser.add_argument("--pg-url", default=PG_URL, help="the PostgreSQL server (--backend pg)")
    parser.add_argument("--parts", default="1,2", help="which parts to run: 1, 2 or 1,2")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    articles = corpus_articles()
    print(f"corpus: {len(articles)} articles; backend: {args.backend}")
    with tempfile.TemporaryDirectory() as tmp:
        backend = Backend(args.backend, Path(tmp), args.pg_url)
        if "1" in parts:
            at_scale(articles, args.versions, backend)
        if "2" in parts:
            real_path(articles, args.stored, backend)


if __name__ == "__main__":
    main()
