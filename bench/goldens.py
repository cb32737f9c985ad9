"""Golden outputs for the real corpus: parsed blocks and change items.

    python -m bench.goldens            # compare; print what differs; exit 1 if anything does
    python -m bench.goldens --write    # regenerate tests/golden/ after a deliberate change

For every snapshot in ``../shared/corpus`` the golden holds the parsed
article (each block's kind, length, a hash and a short excerpt of its text,
its image key and times); for every pair, the verdict, summary and items of
the change. ``tests/test_golden.py`` compares against them, so any parsing or
alignment change shows up as a reviewable diff of ``tests/golden/``. Only
excerpts are kept (never the articles themselves): the corpus stays outside
the project.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from watcher import snapshot
from watcher.article import parse_article
from watcher.diff import diff_snapshots
from watcher.errors import WatcherError
from watcher.imageid import image_key
from watcher.models import Article, Block, ChangeItem, TimeBasis

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
EXCERPT = 32


def excerpt(value: Any) -> Any:
    """A short, recognisable piece of a value, and a hash of the whole."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    if len(text) <= EXCERPT:
        return text
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=5).hexdigest()
    return f"{text[:EXCERPT]}… ({len(text)} chars, {digest})"


def _block(block: Block) -> list[Any]:
    row: list[Any] = [block.kind.value, excerpt(block.text)]
    if block.stable_text != block.text:
        row.append({"stable": excerpt(block.stable_text)})
    if block.image is not None:
        row.append({"image": image_key(block.image.origin_src)})
    if block.times:
        row.append({"times": [[t.text, t.start_ms, t.end_ms] for t in block.times]})
    return row


def article_golden(article: Article) -> dict[str, Any]:
    return {
        "title": excerpt(article.title),
        "captured_at": article.captured_at,
        "dropped_boilerplate": article.dropped_boilerplate,
        "blocks": [_block(b) for b in article.blocks],
    }


def _item(item: ChangeItem) -> list[Any]:
    return [
        item.kind.value,
        item.significant,
        item.location,
        item.detail,
        excerpt(item.before),
        excerpt(item.after),
    ]


def pair_golden(old_path: Path, new_path: Path) -> dict[str, Any]:
    stated = (TimeBasis.STATED, TimeBasis.STATED)
    change = diff_snapshots(snapshot.read(old_path), snapshot.read(new_path), basis=stated)
    return {
        "verdict": change.verdict.value,
        "summary": change.summary,
        "items": [_item(i) for i in change.items],
    }


def goldens(corpus: Path) -> dict[str, str]:
    """Relative golden path -> its JSON text, for every corpus file."""
    out: dict[str, Any] = {}
    for path in sorted((corpus / "snapshots").rglob("*.md")):
        rel = path.relative_to(corpus / "snapshots").with_suffix(".json").as_posix()
        try:
            out[f"snapshots/{rel}"] = article_golden(parse_article(snapshot.read(path)))
        except WatcherError as exc:
            out[f"snapshots/{rel}"] = {"error": str(exc).replace(str(corpus), "")}
    for pair in sorted(p for p in (corpus / "pairs").iterdir() if p.is_dir()):
        out[f"pairs/{pair.name}.json"] = pair_golden(pair / "v1.md", pair / "v2.md")
    return {k: _dump(v) for k, v in out.items()}


def _dump(value: dict[str, Any]) -> str:
    """JSON with one block or item per line, so a review reads a diff per row."""
    lines = ["{"]
    for n, (key, item) in enumerate(value.items()):
        comma = "," if n < len(value) - 1 else ""
        if isinstance(item, list):
            rows = [json.dumps(row, ensure_ascii=False) for row in item]
            body = ",\n  ".join(rows)
            lines.append(f' "{key}": [\n  {body}\n ]{comma}' if rows else f' "{key}": []{comma}')
        else:
            lines.append(f' "{key}": {json.dumps(item, ensure_ascii=False)}{comma}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def compare(corpus: Path) -> list[str]:
    """Unified diffs (golden → now) of every golden that differs or is missing."""
    problems: list[str] = []
    for rel, now in goldens(corpus).items():
        path = GOLDEN / rel
        was = path.read_text(encoding="utf-8") if path.is_file() else ""
        if was != now:
            lines = difflib.unified_diff(
                was.splitlines(keepends=True), now.splitlines(keepends=True), rel, "now"
            )
            problems.append("".join(lines))
    return problems


def write(corpus: Path) -> int:
    current = goldens(corpus)
    for rel, text in current.items():
        path = GOLDEN / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in GOLDEN.rglob("*.json"):
        rel = stale.relative_to(GOLDEN).as_posix()
        if rel.startswith(("snapshots/", "pairs/")) and rel not in current:
            stale.unlink()
    return len(current)


def main(argv: list[str]) -> int:
    from bench._common import corpus_or_exit  # noqa: PLC0415 - exits when absent

    corpus = corpus_or_exit()
    if argv[1:] == ["--write"]:
        print(f"{write(corpus)} goldens written to {GOLDEN}")
        return 0
    problems = compare(corpus)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} goldens differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
