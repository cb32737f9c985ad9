"""Write a change's reports where people read them: the data folder's reports area.

Layout (relative to ``$WATCHER_HOME/reports``), mirroring the archive::

    <host>/<article-slug>-<hash8>/v<seq>.md  and  v<seq>.html

``seq`` is the number of the new version (or, for "gone", the last one).
"""

from __future__ import annotations

from pathlib import Path

from watcher import archive
from watcher.models import Change
from watcher.report import render_html, render_markdown
from watcher.settings import Settings


def report_paths(url: str, seq: int) -> tuple[Path, Path]:
    folder = archive.article_dir(url)
    return folder / f"v{seq}.md", folder / f"v{seq}.html"


def write_reports(settings: Settings, url: str, seq: int, change: Change) -> list[Path]:
    md, html = report_paths(url, seq)
    root = settings.reports_dir
    return [
        archive.write_atomic(root, md, render_markdown(change, tz=settings.timezone)),
        archive.write_atomic(root, html, render_html(change, tz=settings.timezone)),
    ]
