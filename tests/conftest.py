"""Shared fixtures: the seed file and the real-article corpus (read in place)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_f45fe6e83c05ee36.txt"
CORPUS = Path(__import__("os").environ.get("WATCHER_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture
def seed_path() -> Path:
    return SEED


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "snapshots").is_dir():
        pytest.skip(f"real-article corpus not found at {CORPUS}")
    return CORPUS


def corpus_files(pattern: str) -> list[Path]:
    """Corpus files for parametrising; empty when the corpus is absent."""
    return sorted(CORPUS.glob(pattern)) if CORPUS.is_dir() else []
