"""Every corpus snapshot's parsed blocks and every pair's change items match the
goldens in tests/golden/, so a parsing or alignment change is a reviewable diff.

After a deliberate change: ``make goldens`` (``python -m bench.goldens --write``),
then read ``git diff tests/golden`` before committing it.
"""

from __future__ import annotations

from pathlib import Path

from bench.goldens import compare


def test_corpus_outputs_match_the_goldens(corpus: Path) -> None:
    problems = compare(corpus)
    shown = "\n".join(problems[:5])[:20_000]
    assert not problems, f"{len(problems)} goldens differ (make goldens to accept):\n{shown}"
