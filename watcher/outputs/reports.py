"""Write a change's reports where people read them: the data folder's reports area
and the report site.

Layout (relative to ``$WATCHER_HOME/reports``), mirroring the archive::

    <host>/<article-slug>-<hash8>/v<seq>.md  and  v<seq>.html

``seq`` is the number of the new version; the removal of an article after
version ``seq`` is ``v<seq>-removed.md`` and ``.html``.
The site in ``$WATCHER_HOME/site`` is brought up to date too
(:func:`watcher.outputs.site.update_site`: the changed articles' pages, the
index, and after a significant change the recent page and the feed), so
opening the folder shows the latest state without running a command.

The daemon writes each change's reports at once but batches the site:
:class:`SiteUpdates` collects the changed watches and rewrites the shared
pages once per flush, because the index lists every watch and rewriting it
per change would make a busy pass quadratic in the number of watches.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from watcher import archive
from watcher.models import Change, ChangeKind
from watcher.outputs import site
from watcher.report import render_html, render_markdown
from watcher.settings import Settings
from watcher.store import Repository, now_ms

log = logging.getLogger(__name__)


def report_paths(url: str, seq: int, *, removed: bool = False) -> tuple[Path, Path]:
    """The change into version ``seq`` (``v3.md``), or the removal of an
    article whose last version is ``seq`` (``v3-removed.md``): one file per
    change, so a takedown never overwrites the report of the edit before it."""
    folder = archive.article_dir(url)
    name = f"v{seq}-removed" if removed else f"v{seq}"
    return folder / f"{name}.md", folder / f"{name}.html"


def write_change_reports(settings: Settings, url: str, seq: int, change: Change) -> list[Path]:
    """Write the change's Markdown and HTML reports; a failing write raises (the
    change then stays unreported, to be repeated)."""
    md, html = report_paths(url, seq, removed=ChangeKind.GONE in change.kinds)
    root = settings.reports_dir
    return [
        # Reports can be written again (a change stays unreported until they
        # are), so they are atomic but not fsynced.
        archive.write_atomic(
            root, md, render_markdown(change, tz=settings.timezone), durable=False
        ),
        archive.write_atomic(root, html, render_html(change, tz=settings.timezone), durable=False),
    ]


class SiteUpdates:
    """Watches whose site pages are out of date, flushed in one batch.

    Thread-safe: checks run their processing in worker threads.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._watch_ids: set[int] = set()
        self._significant = False

    def mark(self, watch_id: int, significant: bool) -> None:
        with self._lock:
            self._watch_ids.add(watch_id)
            self._significant = self._significant or significant

    def flush(self, store: Repository) -> list[Path]:
        """Rewrite the pending pages; [] (and a log line) on failure."""
        with self._lock:
            ids, significant = self._watch_ids, self._significant
            self._watch_ids, self._significant = set(), False
        if not ids:
            return []
        try:
            return site.update_site(
                store,
                site.site_dir(self.settings),
                ids,
                significant=significant,
                tz=self.settings.timezone,
                now_ms=now_ms(),
            )
        except Exception as exc:  # keep the pages pending for the next flush
            log.error("cannot update the report site (will retry): %s", exc)
            for watch_id in ids:
                self.mark(watch_id, significant)
            return []
