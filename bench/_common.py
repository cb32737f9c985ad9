"""Shared helpers for the benchmark scripts: corpus location and figures."""

from __future__ import annotations

import os
import resource
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("WATCHER_CORPUS", ROOT.parent / "shared" / "corpus"))


def corpus_or_exit() -> Path:
    if not (CORPUS / "snapshots").is_dir():
        print(f"corpus not found at {CORPUS}; set WATCHER_CORPUS", file=sys.stderr)
        sys.exit(0)
    return CORPUS


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def describe(label: str, ms: list[float]) -> str:
    return (
        f"{label}: n={len(ms)} median={statistics.median(ms):.2f} ms "
        f"p95={percentile(ms, 95):.2f} ms max={max(ms):.2f} ms"
    )
