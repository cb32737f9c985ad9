"""The ``watcher`` command: a thin click layer over the modules below it.

Every command turns a WatcherError into one line on stderr and a non-zero
exit status; nothing here prints a stack trace for bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.errors import WatcherError
from watcher.models import Article, BlockKind

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2


def fail_cleanly(func: F) -> F:
    """Report a WatcherError as one line and exit 2, the diff(1) convention."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WatcherError as exc:
            click.echo(f"watcher: error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="watcher")
def main() -> None:
    """Watch news articles, archive every version, and report what changed.

    \b
    Example:
      watcher show seeds/000_f45fe6e83c05ee36.txt
    """


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the parsed article as JSON.")
@fail_cleanly
def show(file: Path, as_json: bool) -> None:
    """Parse a snapshot FILE and print the article it holds.

    \b
    Example:
      watcher show seeds/000_f45fe6e83c05ee36.txt --json
    """
    snap = snapshot_mod.read(file)
    article = parse_article(snap)
    if as_json:
        payload = {
            "snapshot": {
                "url": snap.url,
                "title": snap.title,
                "captured_at": snap.captured_at,
                "captured_at_iso": _iso(snap.captured_at),
                "time_source": snap.time_source.value,
                "front_matter": snap.front_matter,
                "dateline": snap.dateline,
            },
            "article": asdict(article),
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(format_article(article))


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def format_article(article: Article) -> str:
    """Readable plain text: one block per paragraph, images and times labelled."""
    lines = [article.title, article.url, f"captured: {_iso(article.captured_at) or 'unknown'}", ""]
    for block in article.blocks:
        if block.kind is BlockKind.HEADING:
            lines.append("#" * max(block.level, 1) + " " + block.text)
        elif block.kind is BlockKind.IMAGE and block.image:
            img = block.image
            credit = f" (credit: {img.credit})" if img.credit else ""
            lines.append(f"[image] {img.origin_src}{credit}")
            if img.caption or img.alt:
                lines.append(f"        {img.caption or img.alt}")
        elif block.kind is BlockKind.TIME:
            t = block.times[0]
            lines.append(f"[time] {block.text} -> {_range(t.start_ms, t.end_ms)}")
        elif block.kind is BlockKind.LIST_ITEM:
            lines.append(f"  • {block.text}")
        elif block.kind is BlockKind.QUOTE:
            lines.append(f"> {block.text}")
        elif block.kind is BlockKind.LINK_LIST:
            lines.append("[links] " + "; ".join(f"{lk.text} <{lk.href}>" for lk in block.links))
        elif block.kind is BlockKind.MEDIA:
            lines.append(f"[media] {block.media_src} {block.text}".rstrip())
        else:
            lines.append(block.text)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _range(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "unresolved"
    mid = (start + end) // 2
    return f"{_iso(mid)} ± {(end - start) // 2 // 1000}s"
