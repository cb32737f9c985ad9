"""Parse every corpus snapshot: files per second, median ms per file, peak memory.

Run: .venv/bin/python bench/bench_parse.py   (single process, one core)
Target (issue 2): median under 5 ms per article.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from _common import corpus_or_exit, describe, peak_rss_mb

from watcher import snapshot
from watcher.article import parse_article
from watcher.errors import SnapshotFormatError


def main() -> None:
    corpus = corpus_or_exit()
    files = sorted((corpus / "snapshots").glob("*/*.md"))
    texts = [(p, p.read_bytes()) for p in files]
    # Measured warm, as a long-running daemon parses; the cold pass is printed apart.
    cold_started = time.perf_counter()
    for path, data in texts:
        with contextlib.suppress(SnapshotFormatError):
            parse_article(snapshot.parse(snapshot.decode(data, str(path)), source=str(path)))
    cold = time.perf_counter() - cold_started
    read_ms: list[float] = []
    parse_ms: list[float] = []
    rejected: list[str] = []
    started = time.perf_counter()
    for path, data in texts:
        t0 = time.perf_counter()
        try:
            snap = snapshot.parse(snapshot.decode(data, str(path)), source=str(path))
        except SnapshotFormatError as exc:
            rejected.append(str(exc))
            continue
        t1 = time.perf_counter()
        parse_article(snap)
        t2 = time.perf_counter()
        read_ms.append((t1 - t0) * 1000)
        parse_ms.append((t2 - t0) * 1000)
    total = time.perf_counter() - started
    print(
        f"files: {len(files)} (rejected {len(rejected)}); cold first pass {cold * 1000 / len(files):.2f} ms/file"
    )
    print(describe("read snapshot", read_ms))
    print(describe("read + parse article", parse_ms))
    print(f"throughput: {len(parse_ms) / total:.0f} files/s on one core")
    print(f"median: {statistics.median(parse_ms):.2f} ms per file (target < 5 ms)")
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")
    for reason in rejected:
        print(f"rejected: {reason}")


if __name__ == "__main__":
    main()
