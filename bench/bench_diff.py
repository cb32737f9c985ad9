"""Diff every real corpus pair: ms per pair, pairs per second, kind distribution.

Run: .venv/bin/python bench/bench_diff.py
Targets (issue 3): median under 10 ms per pair including parsing, under 3 ms
for the diff alone. Also prints the kinds and verdicts found, and how they
compare with the corpus's script labels (a guide, not an oracle).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter

from _common import ROOT, corpus_or_exit, describe, peak_rss_mb

from watcher import snapshot
from watcher.article import parse_article
from watcher.diff import diff_articles, diff_snapshots

GOLDEN = ROOT / "tests" / "golden"


def main() -> None:
    corpus = corpus_or_exit()
    labels = json.loads((corpus / "pairs" / "labels.json").read_text(encoding="utf-8"))["pairs"]
    pairs = sorted(p for p in (corpus / "pairs").iterdir() if p.is_dir())
    loaded = [(p.name, snapshot.read(p / "v1.md"), snapshot.read(p / "v2.md")) for p in pairs]
    # A daemon runs for months: measure it warm. The first pass over the pairs
    # (dateparser loading its locale data, regex compilation) is printed apart.
    cold_started = time.perf_counter()
    for _, old, new in loaded:
        diff_snapshots(old, new)
    cold = time.perf_counter() - cold_started
    total_ms: list[float] = []
    diff_ms: list[float] = []
    kinds: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    agree = 0
    differ: list[str] = []
    started = time.perf_counter()
    for pid, old, new in loaded:
        t0 = time.perf_counter()
        a, b = parse_article(old), parse_article(new)
        t1 = time.perf_counter()
        diff_articles(a, b, old_body=old.body, new_body=new.body)
        t2 = time.perf_counter()
        change = diff_snapshots(old, new)
        total_ms.append((t2 - t0) * 1000)
        diff_ms.append((t2 - t1) * 1000)
        kinds.update(set(change.kinds))
        verdicts[change.verdict.value] += 1
        agree += change.significant == labels[pid]["significant"]
        if change.significant != labels[pid]["significant"]:
            differ.append(pid)
    elapsed = time.perf_counter() - started
    print(f"pairs: {len(loaded)}; cold first pass {cold * 1000 / len(loaded):.2f} ms/pair")
    print(describe("parse both + diff", total_ms))
    print(describe("diff alone", diff_ms))
    print(f"throughput: {len(loaded) / elapsed:.0f} pairs/s (each pair diffed twice in this loop)")
    print(
        f"medians: {statistics.median(total_ms):.2f} ms total (target < 10), "
        f"{statistics.median(diff_ms):.2f} ms diff alone (target < 3)"
    )
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")
    print("verdicts:", dict(verdicts.most_common()))
    print(f"verdict agrees with labels.json: {agree}/{len(loaded)}")
    disputed = json.loads((GOLDEN / "disputed_labels.json").read_text(encoding="utf-8"))
    for pid in differ:
        why = disputed.get(pid, "NOT EXPLAINED: add it to tests/golden/disputed_labels.json")
        print(f"  {pid}: label says significant={labels[pid]['significant']}; {why}")
    print("pairs per change kind:")
    for kind, n in kinds.most_common():
        print(f"  {kind:22s} {n}")


if __name__ == "__main__":
    main()
