"""Search latency over 100,000 versions, and what building the index costs.

Two parts:

1. **The index at scale.** 100,000 versions made from the real-article corpus
   (each a corpus article with one paragraph replaced by another article's,
   so versions differ the way edits do; three of them carry a rare phrase)
   are written straight into a fresh FTS5 trigram index
   (``SearchIndex.add_documents``): build time and file size, then the median
   and p95 of the first page (20 hits) of a common three-character Chinese
   term, a rare phrase, a Latin word and phrase, two-character terms (the
   LIKE fallback: a common one, a rare one) and a filtered query.
2. **The real path.** A scratch SQLite database filled through the store
   (``add_version``), indexed by ``SearchIndex.catch_up`` (stored text read
   back through the store, parsed into blocks): versions per second, and the
   cost of a catch-up when nothing is new (what every search pays).

    .venv/bin/python bench/bench_search.py [--versions 100000] [--stored 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import corpus_or_exit, describe
from watcher import snapshot
from watcher.article import parse_article
from watcher.errors import WatcherError
from watcher.search import SearchIndex, plain_text
from watcher.store import Store, open_engine, upgrade

RARE = "玄武湖畔的秘密会谈"
RUNS = 30
T0 = 1_700_000_000_000


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
        watch_id = i % 5000 + 1
        yield (i + 1, watch_id, i // 5000 + 1, T0 + i * 60_000, title, "\n".join(body))


def timed(index: SearchIndex, query: str, **kwargs: object) -> tuple[list[float], int]:
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


def at_scale(articles: list[tuple[str, str, list[str]]], count: int, folder: Path) -> None:
    index = SearchIndex(folder / "search.db")
    start = time.perf_counter()
    batch: list[tuple[int, int, int, int, str, str]] = []
    for doc in documents(articles, count):
        batch.append(doc)
        if len(batch) == 5000:
            index.add_documents(batch)
            batch = []
    index.add_documents(batch)
    built = time.perf_counter() - start
    size = sum(p.stat().st_size for p in folder.glob("search.db*"))
    text_mb = sum(len(d[5].encode()) for d in documents(articles, count)) / 1e6
    print(f"index of {index.count():,} versions ({text_mb:.0f} MB of text): built in "
          f"{built:.1f} s ({count / built:,.0f} versions/s), {size / 1e6:.0f} MB on disk")  # fmt: skip
    common = common_trigram(articles)
    queries = [
        (f"common 3-char Chinese {common!r}", common, {}),
        (f"rare phrase {RARE!r}", RARE, {}),
        ("Latin word 'police'", "police", {}),
        ("Latin phrase '\"the government\"'", '"the government"', {}),
        ("2-char Chinese '美国' (LIKE)", "美国", {}),
        ("2-char '玄武' (LIKE)", "玄武", {}),
        ("2-char rare '密会' (LIKE, reads every text)", "密会", {}),
        ("2-char rare '秘密' + 3-char (LIKE on matches)", "秘密 玄武湖", {}),
        (f"{common!r} in 50 watches", common, {"watch_ids": range(1, 51)}),
    ]
    for label, query, kwargs in queries:
        ms, hits = timed(index, query, **kwargs)
        print(describe(f"  {label}, first page ({hits} hits)", ms))


def real_path(articles: list[tuple[str, str, list[str]]], count: int, folder: Path) -> None:
    url = f"sqlite:///{folder}/watcher.db"
    upgrade(url)
    engine = open_engine(url)
    store = Store(engine)
    try:
        watches = [store.add_watch(f"https://bench.example/{i}", site="bench.example",
                                   now_ms=T0)[0] for i in range(count // 10)]  # fmt: skip
        for i in range(count):
            src_url, title, paragraphs = articles[i % len(articles)]
            body = "<main>" + "".join(f"<p>{p}</p>" for p in paragraphs) + f"<p>{i}</p></main>"
            snap = snapshot.Snapshot(url=src_url, title=title, body=body, captured_at=T0 + i)
            text = snapshot.content_text(snap)
            store.add_version(
                watches[i % len(watches)].id, captured_at=T0 + i,
                content_sha256=hashlib.sha256(text.encode()).hexdigest(), content_text=text,
                http_status=200, final_url=src_url, title=title, archive_path=None,
            )  # fmt: skip
        index = SearchIndex(folder / "search.db")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--stored", type=int, default=2_000)
    args = parser.parse_args()
    articles = corpus_articles()
    print(f"corpus: {len(articles)} articles")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "scale").mkdir()
        (Path(tmp) / "real").mkdir()
        at_scale(articles, args.versions, Path(tmp) / "scale")
        real_path(articles, args.stored, Path(tmp) / "real")


if __name__ == "__main__":
    main()
