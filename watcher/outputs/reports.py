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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from watcher import archive
from watcher.config import REPORTS_CHANNEL
from watcher.errors import WatcherError
from watcher.models import Change, ChangeKind, change_from_dict
from watcher.outputs import site
from watcher.report import render_html, render_markdown
from watcher.settings import Settings
from watcher.store import ChangeRecord, DeliveryRecord, Repository, Store, now_ms

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
    delivery then stays pending, to be repeated)."""
    md, html = report_paths(url, seq, removed=ChangeKind.GONE in change.kinds)
    root = settings.reports_dir
    return [
        # Reports can be written again (the delivery stays pending until they
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


#: How long a writer holds a report delivery; a process killed while writing
#: leaves it to be written again when the lease runs out.
REPORT_LEASE_MS = 60_000


class ReportDeliveries:
    """The built-in ``reports`` channel of the outbox: every stored change owes
    its report files, written right after the change commits by the process
    that stored it, or later by any daemon (after a crash or a failed write)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        site_updates: SiteUpdates,
        worker: str,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.settings = settings
        self.site_updates = site_updates
        self.worker = worker
        self.clock = clock

    def deliver(self, *, change_ids: Iterable[int] | None = None, limit: int = 200) -> int:
        """Write the due report deliveries (of ``change_ids`` only, if given);
        returns how many were written. Failures are logged and retried later."""
        now = self.clock()
        rows = self.store.claim_deliveries(
            self.worker,
            now,
            limit,
            REPORT_LEASE_MS,
            channels=(REPORTS_CHANNEL,),
            change_ids=change_ids,
        )
        done = 0
        found = self.store.changes_with_seq({r.change_id for r in rows}) if rows else {}
        for row in rows:
            try:
                self._write(row, found)
            except Exception as exc:  # the change is stored; only its report is late
                log.error("cannot write reports for %s (will retry): %s", row.url, exc)
                attempts = row.attempts + 1
                retry = (
                    None
                    if attempts >= self.settings.delivery_attempts
                    else now + round(self.settings.delivery_backoff * 1000 * 2 ** min(attempts, 7))
                )
                self.store.mark_failed(self.worker, [row.id], error=str(exc), retry_at=retry)
                continue
            self.store.mark_sent(self.worker, [row.id], self.clock())
            done += 1
        return done

    def _write(self, row: DeliveryRecord, found: Mapping[int, tuple[ChangeRecord, int]]) -> None:
        if row.change_id not in found:
            raise WatcherError(f"change {row.change_id} no longer exists")
        record, seq = found[row.change_id]
        change = change_from_dict(record.record)
        write_change_reports(self.settings, record.url, seq, change)
        self.site_updates.mark(record.watch_id, change.significant)
