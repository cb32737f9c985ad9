"""Check one watch: the only module that knows the order of the stages.

fetch -> (raw body unchanged? stop) -> extract -> snapshot -> (content
unchanged? stop) -> parse + diff against the previous version -> store the
version, its change, the messages it owes (the outbox) and the check in one
transaction -> write the reports (the outbox's ``reports`` channel) ->
reschedule. Notifications are sent by the daemon's delivery worker.

Every outcome, good or bad, is one check row and one log line. A failure in
one watch never escapes: it becomes an ``error`` check and a back-off.

What the daemon does most, a check that finds nothing new, costs little
more than its GET: the raw body's hash is compared before the body is even
decoded, the check stays on the event loop, and its row and release go to
the dispatcher, which writes many in one transaction (scheduler.py). A new
version is diffed against the latest one kept parsed from its own check
(watcher/parsed.py) rather than read back and parsed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from watcher import __version__, archive, feedmeta, schedule, siterules
from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.boilerplate import THRESHOLD, Boilerplate, fingerprints, host_of, story
from watcher.config import REPORTS_CHANNEL, SiteRules
from watcher.diff import Redirect, Revert, classify, rebaseline, removal, soft_removal
from watcher.errors import HTTPStatusError, NotAnArticleError, WatcherError
from watcher.evidence import Evidence
from watcher.extract import extract, refresh_target
from watcher.fetch import Fetcher
from watcher.models import Article, Change, FetchResult, Snapshot, TimeBasis
from watcher.notify import routing
from watcher.outputs.reports import ReportDeliveries, SiteUpdates
from watcher.parsed import ParsedVersions
from watcher.settings import Settings
from watcher.store import (
    CheckOutcome,
    OutboxEntry,
    QuietCheck,
    Repository,
    Store,
    VersionRecord,
    WatchRecord,
    WatchState,
    now_ms,
)
from watcher.warc import Prior, WarcLog, WarcRef, prior_at

log = logging.getLogger(__name__)
FAILING_AFTER = 3  # consecutive errors before a watch shows as "failing"
BOILERPLATE_TTL_S = 300.0
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types a server sends when it does not know (and XML, which XHTML is sent
# as): the body decides, as a browser's sniffing does.
SNIFFED_TYPES = frozenset(
    {"", "application/octet-stream", "unknown/unknown", "text/xml", "application/xml"}
)
# WHATWG MIME sniffing's HTML signatures (and <main>, <article>, <?xml ... <html).
_HTML_START = re.compile(
    r"\s*(?:<\?xml[^>]*>\s*)?<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table"
    r"|a|style|title|b|body|br|p|main|article|meta|!--)[\s/>]",
    re.IGNORECASE,
)


class Abandoned(Exception):
    """Raised in a worker thread whose check the daemon gave up on at shutdown."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check did; the CLI and the log line are made from this."""

    url: str
    outcome: CheckOutcome
    status: int | None = None
    duration_ms: float = 0.0
    version_seq: int | None = None
    change: Change | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Capture:
    """A fetched page turned into a snapshot, with what identifies its content."""

    watch: WatchRecord
    fetched: FetchResult
    now: int
    snap: Snapshot
    content: str
    sha: str
    metadata: dict[str, Any]
    warc: WarcRef | None


def _evidence(ref: WarcRef | None) -> Evidence | None:
    if ref is None:
        return None
    return Evidence(
        warc_file=ref.file,
        warc_offset=ref.offset,
        warc_length=ref.length,
        warc_record_id=ref.record_id,
        warc_sha256=ref.sha256,
    )


def policy_for(settings: Settings) -> schedule.Policy:
    return schedule.Policy(settings.min_interval, settings.max_interval, settings.retire_after)


class Pipeline:
    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        settings: Settings,
        *,
        clock: Callable[[], int] = now_ms,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.settings = settings
        self.policy = policy_for(settings)
        self.clock = clock
        self.site_updates = SiteUpdates(settings)
        self.worker = worker or f"pipeline:{uuid.uuid4().hex[:12]}"
        #: Called (from a worker thread) after a change is stored: wakes the
        #: daemon's delivery worker, so a message goes out within moments.
        self.on_change: Callable[[], None] | None = None
        #: Set by the dispatcher: takes a quiet check (unchanged or 304, with
        #: nothing else to write) from the event loop and writes it later,
        #: many in one transaction, releasing the watch then (see
        #: scheduler.Dispatcher). None: every check writes its own.
        self.quiet_sink: Callable[[QuietCheck], None] | None = None
        self.reports = ReportDeliveries(
            store, settings, self.site_updates, self.worker, clock=clock
        )
        self._stopping = threading.Event()
        self._learned: dict[str, tuple[float, Boilerplate]] = {}
        self.parsed = ParsedVersions()  # the latest versions, parsed for the next diff
        self.journal = archive.Journal(settings.archive_dir, settings.home / archive.PENDING_DIR)
        weakref.finalize(self, self.journal.close)
        #: Every fetch as received (watcher/warc.py), unless WATCHER_WARC=off.
        self.warc: WarcLog | None = None
        if settings.warc:
            self.warc = WarcLog(
                settings.warc_dir, max_bytes=settings.warc_size, software=f"watcher/{__version__}"
            )
            weakref.finalize(self, self.warc.close)

    def close(self) -> None:
        """Close the current WARC file (its index is sorted then)."""
        if self.warc is not None:
            self.warc.close()

    def flush_site(self) -> None:
        """Bring the report site up to date with the changes recorded so far."""
        self.site_updates.flush(self.store)

    async def check(self, watch: WatchRecord) -> CheckResult:
        """Check one claimed watch and release it; never raises a WatcherError."""
        started = time.perf_counter()
        now = self.clock()
        # A gone article's validators describe a page we no longer have: a 304
        # to them would hide its return, so ask unconditionally.
        conditional = watch.state != WatchState.GONE
        try:
            fetched = await self._fetch(watch, conditional)
            if (
                fetched.not_modified
                and self.settings.config.sites  # no rules: nothing to look up
                and await asyncio.to_thread(self._rules_changed, watch)
            ):
                # a 304 cannot be extracted with the site's new rules: ask again for the page
                fetched = await self._fetch(watch, conditional=False)
        except WatcherError as exc:  # a 429/5xx after its retries keeps its status on the row
            status = exc.status if isinstance(exc, HTTPStatusError) else None
            return await self._failed(watch, now, exc.reason, started, status=status)
        except Exception as exc:  # a bug below the fetch: an error check, and the lease released
            log.exception("unexpected error while fetching %s", watch.url)
            return await self._failed(watch, now, f"internal error: {exc!r}", started)
        try:
            quiet = _quiet_outcome(fetched)
            if (
                quiet is not None
                and self.quiet_sink is not None
                and not feedmeta.pending(watch.source_meta)
            ):
                # nothing to process or look up: no worker thread, and the
                # dispatcher writes the check together with others. Only the
                # first check of a watch after a start looks up the WARC record
                # its revisit refers to, in the database: in a worker thread.
                if self.warc is not None and not self.warc.remembers(fetched.exchanges):
                    await asyncio.to_thread(
                        self.warc.recall, fetched.exchanges, lambda: self._prior_record(watch)
                    )
                result = self._defer(watch, fetched, now, quiet, self.quiet_sink)
            else:
                # Extraction, parsing and diffing are CPU work: a worker thread keeps
                # the event loop (other fetches, their timeouts, signals) responsive.
                result = await asyncio.to_thread(self._handle, watch, fetched, now)
        except Abandoned:
            raise asyncio.CancelledError from None  # nothing was written; no check row
        except WatcherError as exc:
            return await self._failed(watch, now, exc.reason, started, fetched)
        except Exception as exc:  # a page that trips a parser bug: log it, back off, go on
            log.exception("unexpected error while processing %s", watch.url)
            return await self._failed(watch, now, f"internal error: {exc!r}", started, fetched)
        _log(result)
        return result

    async def fail(self, watch: WatchRecord, reason: str) -> CheckResult:
        """Record an error check and release ``watch`` with a back-off: for a
        check that died of something :meth:`check` did not expect."""
        return await self._failed(watch, self.clock(), reason, time.perf_counter())

    async def _fetch(self, watch: WatchRecord, conditional: bool) -> FetchResult:
        """The page, after at most one meta refresh (a redirect written in HTML,
        followed as a browser would), so a moved article is found where it went.

        A body byte-identical to the last one processed is not decoded nor
        looked at for a refresh (``known_body``, see :meth:`_known`): the
        last check did that work on these very bytes."""
        known = self._known(watch)
        fetched = await self.fetcher.fetch(
            watch.url,
            etag=watch.etag if conditional else None,
            last_modified=watch.last_modified if conditional else None,
            known=known,
        )
        if fetched.status != 200 or not fetched.text:
            return fetched
        target = refresh_target(fetched.text, fetched.final_url)
        if target is None:
            return fetched
        moved = await self.fetcher.fetch(target, known=known)
        return replace(
            moved,
            url=fetched.url,
            redirects=(*fetched.redirects, fetched.final_url, *moved.redirects),
            duration_ms=fetched.duration_ms + moved.duration_ms,
            exchanges=(*fetched.exchanges, *moved.exchanges),
        )

    def _known(self, watch: WatchRecord) -> Callable[[FetchResult], bool] | None:
        """The raw-body shortcut of :meth:`_handle`, asked by the fetcher
        before it decodes a body: an HTML page byte-identical to the last one
        processed (same site rules) is unchanged. A gone article's return is
        always processed."""
        last = watch.last_body_sha256
        if not last or watch.state == WatchState.GONE:
            return None
        rules = self._rules(watch)

        def known(fetched: FetchResult) -> bool:
            return (
                fetched.status < 400
                and _mime(fetched) in HTML_TYPES
                and siterules.body_digest(fetched.body_sha256, rules) == last
            )

        return known

    # -- outcomes ---------------------------------------------------------------
    def _recorded(self, watch: WatchRecord, fetched: FetchResult) -> WarcRef | None:
        """Write the fetch's exchanges to the WARC log; where its response lies."""
        if self.warc is None:
            return None
        return self.warc.write(
            fetched.exchanges, watch=watch.url, lookup=lambda: self._prior_record(watch)
        )

    def _prior_record(self, watch: WatchRecord) -> Prior | None:
        """The response record the watch's latest version names (read once per
        watch and process: later fetches are remembered by the WARC log)."""
        latest = self.store.latest_version(watch.id)
        proof = latest.evidence if latest is not None else None
        if proof is None or proof.warc_file is None:
            return None
        return prior_at(
            self.settings.warc_dir, proof.warc_file, proof.warc_offset or 0, proof.warc_length or 0
        )

    def _handle(self, watch: WatchRecord, fetched: FetchResult, now: int) -> CheckResult:
        warc = self._recorded(watch, fetched)
        quiet = _quiet_outcome(fetched)
        if quiet is not None:
            return self._unchanged(watch, fetched, now, quiet)
        if fetched.gone:
            return self._gone(watch, fetched, now)
        if fetched.status >= 400 or fetched.text is None:
            raise HTTPStatusError(watch.url, fetched.status)
        _require_html(watch.url, fetched)
        # The raw-body hash is only stored once a version exists: byte-identical
        # to the last fetch means unchanged, before any parsing or query. It
        # includes the site rules' fingerprint: new rules reprocess the page.
        rules = self._rules(watch)
        digest = siterules.body_digest(fetched.body_sha256, rules)
        if (
            digest is not None
            and watch.state != WatchState.GONE
            and digest == watch.last_body_sha256
        ):
            return self._unchanged(watch, fetched, now, CheckOutcome.UNCHANGED)
        latest = self.store.latest_version(watch.id)
        page = extract(fetched.text, fetched.final_url, rules)
        if not page.body_html:
            raise NotAnArticleError(
                watch.url, f"not an article: no article text in {_described(fetched)}"
            )
        snap = Snapshot(
            url=page.url, title=page.title or watch.url, body=page.body_html, captured_at=now
        )
        content = snapshot_mod.content_text(snap)
        sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
        metadata = page.metadata.as_dict()
        if (
            latest is not None
            and latest.content_sha256 == sha
            and watch.state != WatchState.GONE
            and not _rebaselines(latest, metadata)
        ):
            return self._unchanged(watch, fetched, now, CheckOutcome.UNCHANGED)
        capture = _Capture(watch, fetched, now, snap, content, sha, metadata, warc)
        return self._new_version(capture, latest)

    def _new_version(self, capture: _Capture, latest: VersionRecord | None) -> CheckResult:
        watch, fetched, now, snap = capture.watch, capture.fetched, capture.now, capture.snap
        article = parse_article(snap)
        old_snap, old, recorded = self._previous(latest)
        if old is not None and latest is not None and not _rebaselines(latest, capture.metadata):
            # A 200 that is no longer the article (a "soft 404", a front page)
            # is its removal, not an edit; the next check looks again.
            lost = soft_removal(
                old,
                article,
                page_url=fetched.final_url,
                old_metadata=latest.page_metadata,
                new_metadata=capture.metadata,
            )
            if lost is not None:
                return self._gone(watch, fetched, now, reason=lost)
        change, reverted = self._change(capture, article, latest, old_snap, old)
        # one folder per watch, like reports; a noise-only version has no file
        relative = (
            archive.version_path(watch.url, now)
            if archive.has_file(change.verdict.value if change is not None else None)
            else None
        )
        outcome = (
            CheckOutcome.REAPPEARED if watch.state == WatchState.GONE else CheckOutcome.NEW_VERSION
        )
        planned = self._plan(change, watch, now) if change is not None else []
        self._guard()
        if capture.warc is not None and self.warc is not None:
            self.warc.sync()  # the version will name its record
        with self._archived(watch, relative, snap), self.store.transaction() as tx:
            version = tx.add_version(
                watch.id,
                captured_at=now,
                content_sha256=capture.sha,
                content_text=capture.content,
                http_status=fetched.status,
                final_url=fetched.final_url,
                title=snap.title,
                archive_path=relative.as_posix() if relative is not None else None,
                page_metadata=capture.metadata,
                base_text=snapshot_mod.content_text(old_snap) if old_snap is not None else None,
                warc=_evidence(capture.warc),
                url=watch.url,
            )
            change_id = None
            if change is not None and latest is not None:
                change_id = tx.add_change(
                    change,
                    watch_id=watch.id,
                    old_version_id=latest.id,
                    new_version_id=version.id,
                    reverted_to_version_id=reverted.id if reverted else None,
                    created_at=now,
                    deliveries=planned,
                )
            # what this version shows of its site teaches the next diffs its
            # boilerplate (what the latest version showed is recorded already)
            shown = frozenset(fingerprints(article))
            tx.record_sightings(host_of(watch.url), watch.id, shown - recorded, story(article))
            # if its feed re-dated it, note what this check found
            found = change.verdict.value if change is not None else "first version"
            tx.settle_redating(watch, now, found=found, change_id=change_id)
            self._record(tx, watch, fetched, now, outcome, version_id=version.id)
            significant = change is None or change.significant
            self._release(tx, watch, now, fetched, changed=significant, state=WatchState.ACTIVE)
        self.parsed.put(
            watch.id,
            content=capture.content,
            content_sha256=capture.sha,
            snap=snap,
            article=article,
            fingerprints=shown,
        )
        if change_id is not None:
            self._report(change_id, watch.id, any(e.channel == REPORTS_CHANNEL for e in planned))
        return CheckResult(
            watch.url, outcome, fetched.status, fetched.duration_ms, version.seq, change
        )

    @contextmanager
    def _archived(
        self, watch: WatchRecord, relative: Path | None, snap: Snapshot
    ) -> Iterator[None]:
        """Write the version's file (none when ``relative`` is None: a
        noise-only version), then run the block that records it.

        The file comes first, so a version row never lacks its file. Its path
        is journaled before it is written: if this process dies before the
        block commits, the next start removes the file (archive.recover). If
        the block fails, the file is removed now, unless the database says the
        version was recorded after all (a commit whose answer was lost) or
        cannot say (then the journal keeps it for recovery).
        """
        if relative is None:
            yield
            return
        root = self.settings.archive_dir
        self.journal.intend(watch.id, relative)
        try:
            archive.write_atomic(root, relative, snapshot_mod.render(snap))
            self._guard()
            yield
        except BaseException:
            self._forget_unrecorded(watch, relative)
            raise
        self.journal.settle(relative)

    def _forget_unrecorded(self, watch: WatchRecord, relative: Path) -> None:
        try:
            if not self.store.has_archive_path(watch.id, relative.as_posix()):
                (self.settings.archive_dir / relative).unlink(missing_ok=True)
        except (WatcherError, OSError) as exc:
            log.warning("%s left for recovery at the next start: %s", relative, exc)
            return
        self.journal.settle(relative)

    def _change(
        self,
        capture: _Capture,
        article: Article,
        latest: VersionRecord | None,
        old_snap: Snapshot | None,
        old: Article | None,
    ) -> tuple[Change | None, VersionRecord | None]:
        """The change from the latest version, and the older version this one
        reverts to, if any (looked up before the write transaction opens)."""
        if latest is None or old_snap is None:
            return None, None
        watch, fetched = capture.watch, capture.fetched
        if _rebaselines(latest, capture.metadata):
            return self._rebaseline(capture, latest, old_snap), None
        reverted = self._reverted_to(watch, capture.sha, latest)
        revert = None
        if reverted is not None:
            news = self.store.significant_change_since(watch.id, reverted.id)
            revert = Revert(reverted.seq, undoes_news=news)
        change = classify(
            old_snap,
            capture.snap,
            old_article=old,
            new_article=article,
            old_metadata=latest.page_metadata,
            new_metadata=capture.metadata,
            reappeared_at=fetched.final_url if watch.state == WatchState.GONE else None,
            revert=revert,
            redirect=Redirect(latest.final_url, fetched.final_url) if fetched.redirects else None,
            basis=(latest.time_basis, TimeBasis.CAPTURED),
            boilerplate=self._boilerplate(host_of(watch.url)),
        )
        return change, reverted

    def _previous(
        self, latest: VersionRecord | None
    ) -> tuple[Snapshot | None, Article | None, frozenset[str]]:
        """The latest version as the diff needs it (snapshot, article) and the
        boilerplate fingerprints already recorded for it: kept from its own
        check when the cache still holds it, else read back and parsed."""
        if latest is None:
            return None, None, frozenset()
        kept = self.parsed.get(latest.watch_id, latest.content_sha256, latest.captured_at)
        if kept is not None:
            return kept.snapshot, kept.article, kept.fingerprints
        old_snap = self.store.version_snapshot(latest)
        return old_snap, parse_article(old_snap), frozenset()

    def _rules(self, watch: WatchRecord) -> SiteRules | None:
        """The extraction rules of the watch's site (``[sites."host"]``)."""
        return self.settings.config.rules_for(host_of(watch.url))

    def _rebaseline(self, capture: _Capture, latest: VersionRecord, old_snap: Snapshot) -> Change:
        """A version extracted with other rules than the latest one: a new
        baseline (one ``rules`` noise item), since a diff would show the rules."""
        watch = capture.watch
        return rebaseline(
            old_snap,
            capture.snap,
            rules_before=siterules.describe_recorded(siterules.recorded(latest.page_metadata)),
            rules_after=siterules.describe(self._rules(watch)),
            reappeared_at=capture.fetched.final_url if watch.state == WatchState.GONE else None,
        )

    def _rules_changed(self, watch: WatchRecord) -> bool:
        """The site's rules are not those its latest version was extracted with.
        Without any site rules configured, a 304 costs no query: rules removed
        from the file entirely re-baseline on the site's next 200 instead."""
        if not self.settings.config.sites:
            return False
        latest = self.store.latest_version(watch.id)
        return latest is not None and siterules.recorded(latest.page_metadata) != (
            siterules.fingerprint(self._rules(watch))
        )

    def _boilerplate(self, host: str) -> Boilerplate:
        """The host's learned boilerplate, re-read at most every BOILERPLATE_TTL_S
        (it grows slowly; a query per new version would cost more than it tells)."""
        cached = self._learned.get(host)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        learned = Boilerplate.of(self.store.boilerplate_fingerprints(host, THRESHOLD))
        self._learned[host] = (time.monotonic() + BOILERPLATE_TTL_S, learned)
        return learned

    def _reverted_to(
        self, watch: WatchRecord, sha: str, latest: VersionRecord
    ) -> VersionRecord | None:
        """An older version (not the latest) with exactly this content."""
        found = self.store.version_with_content(watch.id, sha)  # an id: the common "none" is cheap
        if found is None or found == latest.id:
            return None
        return self.store.find_version_by_content(watch.id, sha)

    def _gone(
        self, watch: WatchRecord, fetched: FetchResult, now: int, reason: str | None = None
    ) -> CheckResult:
        """404/410 (or a 200 that ``reason`` says is not the article any more):
        one "gone" change the first time, then quiet re-checks.

        The change, the check and the release commit together: a crash between
        them cannot leave the watch un-gone with its change stored (which would
        record the removal again on the next check).
        """
        change: Change | None = None
        latest = self.store.latest_version(watch.id)
        if watch.state != WatchState.GONE and latest is not None:
            change = removal(
                watch.url,
                last=parse_article(self.store.version_snapshot(latest)),
                last_seq=latest.seq,
                last_url=latest.final_url,
                captured_after=now,
                status=fetched.status,
                reason=reason,
            )
        self._guard()
        with self.store.transaction() as tx:
            change_id = None
            if change is not None and latest is not None:
                change_id = tx.add_change(
                    change,
                    watch_id=watch.id,
                    old_version_id=latest.id,
                    new_version_id=None,
                    created_at=now,
                    deliveries=self._plan(change, watch, now),
                )
            self._record(tx, watch, fetched, now, CheckOutcome.GONE, reason=reason)
            # Re-checked on a back-off from the watch's own interval, so a
            # quick return is seen quickly and a long absence costs little.
            gone_checks = 1 if change is not None else watch.unchanged_count + 1
            tx.release(
                watch.id,
                next_check_at=schedule.next_check_at(
                    now, schedule.backoff_s(self.policy, gone_checks, watch.interval_s)
                ),
                failure_count=0,
                unchanged_count=gone_checks,
                last_checked_at=now,
                state=WatchState.GONE,
                last_change_at=now if change is not None else None,
                last_body_sha256="",  # a reappearance must be parsed, even with the old bytes
                last_error=None,  # the site answered: an article gone is not a failing watch
            )
        if change_id is not None:
            self._report(change_id, watch.id, reports=True)  # a removal is always news
        return CheckResult(
            watch.url, CheckOutcome.GONE, fetched.status, fetched.duration_ms, change=change
        )

    def _unchanged(
        self, watch: WatchRecord, fetched: FetchResult, now: int, outcome: CheckOutcome
    ) -> CheckResult:
        quiet = self._quiet(watch, fetched, now, outcome)
        self._guard()
        with self.store.transaction() as tx:  # one commit for the check and the schedule
            tx.record_quiet_checks([quiet])
            tx.settle_redating(watch, now, found="unchanged")  # re-dated without visible change?
        return CheckResult(watch.url, outcome, fetched.status, fetched.duration_ms)

    def _defer(
        self,
        watch: WatchRecord,
        fetched: FetchResult,
        now: int,
        outcome: CheckOutcome,
        sink: Callable[[QuietCheck], None],
    ) -> CheckResult:
        """An unchanged check handed to ``sink`` (on the event loop), which
        writes it and releases the watch later; lost in a crash, it is simply
        checked again once its lease runs out."""
        self._recorded(watch, fetched)
        quiet = self._quiet(watch, fetched, now, outcome)
        self._guard()
        sink(quiet)
        return CheckResult(watch.url, outcome, fetched.status, fetched.duration_ms)

    def _quiet(
        self, watch: WatchRecord, fetched: FetchResult, now: int, outcome: CheckOutcome
    ) -> QuietCheck:
        """The check row and the release of a check that found nothing new."""
        next_check_at, state = self._next(watch, now, changed=False, state=WatchState.ACTIVE)
        return QuietCheck(
            watch_id=watch.id,
            checked_at=now,
            outcome=outcome,
            duration_ms=round(fetched.duration_ms),
            http_status=fetched.status,
            final_url=fetched.final_url,
            redirects=fetched.redirects,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            body_sha256=fetched.body_sha256,
            next_check_at=next_check_at,
            unchanged_count=watch.unchanged_count + 1,
            state=state,
            last_body_sha256=siterules.body_digest(fetched.body_sha256, self._rules(watch)),
        )

    async def _failed(
        self,
        watch: WatchRecord,
        now: int,
        reason: str,
        started: float,
        fetched: FetchResult | None = None,
        *,
        status: int | None = None,
    ) -> CheckResult:
        """An error check and a back-off, written off the event loop like every
        other outcome; ``status`` is the HTTP status of a fetch that failed."""
        duration = fetched.duration_ms if fetched else (time.perf_counter() - started) * 1000
        result = CheckResult(
            watch.url,
            CheckOutcome.ERROR,
            fetched.status if fetched else status,
            duration,
            error=reason,
        )
        try:
            await asyncio.to_thread(self._record_failure, watch, now, result, fetched)
        except Abandoned:
            raise asyncio.CancelledError from None
        except WatcherError as exc:  # the database itself is failing: log, keep running
            log.error("cannot record failed check of %s: %s", watch.url, exc)
        _log(result)
        return result

    def _record_failure(
        self, watch: WatchRecord, now: int, result: CheckResult, fetched: FetchResult | None
    ) -> None:
        failures = watch.failure_count + 1
        backoff = schedule.backoff_s(self.policy, failures, watch.interval_s)
        self._guard()
        with self.store.transaction() as tx:  # the check and its back-off commit together
            tx.record_check(
                watch.id,
                checked_at=now,
                outcome=CheckOutcome.ERROR,
                duration_ms=round(result.duration_ms),
                http_status=result.status,
                final_url=fetched.final_url if fetched else None,
                redirects=fetched.redirects if fetched else (),
                body_sha256=fetched.body_sha256 if fetched else None,  # the evidence
                error=result.error,
            )
            tx.release(
                watch.id,
                next_check_at=schedule.next_check_at(now, backoff),
                failure_count=failures,
                unchanged_count=watch.unchanged_count,
                last_checked_at=now,
                # A gone article stays gone: its errors must not turn it into
                # "failing" (a later 404 would then be reported as news again).
                state=(
                    WatchState.FAILING
                    if failures >= FAILING_AFTER and watch.state != WatchState.GONE
                    else None
                ),
                last_error=result.error,  # what `watcher list` and `status` show
            )

    # -- helpers ----------------------------------------------------------------
    def _record(
        self,
        repo: Repository,
        watch: WatchRecord,
        fetched: FetchResult,
        now: int,
        outcome: CheckOutcome,
        *,
        version_id: int | None = None,
        reason: str | None = None,
    ) -> None:
        repo.record_check(
            watch.id,
            checked_at=now,
            outcome=outcome,
            duration_ms=round(fetched.duration_ms),
            http_status=fetched.status,
            final_url=fetched.final_url,
            redirects=fetched.redirects,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            body_sha256=fetched.body_sha256,
            version_id=version_id,
            error=reason,
        )

    def _release(
        self,
        repo: Repository,
        watch: WatchRecord,
        now: int,
        fetched: FetchResult,
        *,
        changed: bool,
        state: WatchState,
    ) -> None:
        next_check_at, state = self._next(watch, now, changed=changed, state=state)
        repo.release(
            watch.id,
            next_check_at=next_check_at,
            failure_count=0,
            unchanged_count=0 if changed else watch.unchanged_count + 1,
            last_checked_at=now,
            state=state,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            last_body_sha256=siterules.body_digest(fetched.body_sha256, self._rules(watch)),
            last_change_at=now if changed else None,
            last_error=None,  # a check that succeeded ends the failure it recorded
        )

    def _next(
        self, watch: WatchRecord, now: int, *, changed: bool, state: WatchState
    ) -> tuple[int, WatchState]:
        """When a successful check makes the watch due next, and its state
        (``state``, or retired after a long quiet)."""
        pinned = watch.interval_s
        last_change = now if changed else watch.last_change_at
        if schedule.should_retire(
            self.policy,
            pinned_s=pinned,
            now_ms=now,
            created_at=watch.created_at,
            quiet_checks=0 if changed else watch.unchanged_count + 1,
        ):
            state = WatchState.RETIRED
        seconds = schedule.interval_s(
            self.policy,
            pinned_s=pinned,
            now_ms=now,
            created_at=watch.created_at,
            last_change_at=last_change,
        )
        return schedule.next_check_at(now, seconds), state

    def _plan(self, change: Change, watch: WatchRecord, now: int) -> list[OutboxEntry]:
        """The messages a change owes: its reports, and what the routes send."""
        return routing.plan(
            self.settings.config,
            verdict=change.verdict.value,
            kinds=change.kinds,
            tags=watch.tags,
            now_ms=now,
            tz=self.settings.timezone,
        )

    def _report(self, change_id: int, watch_id: int, reports: bool) -> None:
        """Write a just-stored change's reports (its ``reports`` delivery). A
        failure only delays them: the delivery stays pending. Never affects the check.

        A change that owes no report files (noise: see routing.plan) still
        shows on its article's site page, which is brought up to date with
        the next batch."""
        if self.on_change is not None:
            self.on_change()
        if not reports:
            self.site_updates.mark(watch_id, significant=False)
            return
        try:
            self.reports.deliver(change_ids=(change_id,))
        except WatcherError as exc:
            log.error("cannot write reports of change %s (will retry): %s", change_id, exc)

    def report_pending(self, limit: int = 200) -> int:
        """Write the reports still owed (a crash or a failure between storing
        and reporting); returns how many were written."""
        return self.reports.deliver(limit=limit)

    def stop(self) -> None:
        """Abandon in-flight processing: nothing more is written (see _guard)."""
        self._stopping.set()

    def _guard(self) -> None:
        """Called before each write transaction; a worker thread still running
        after shutdown gave up on it must not commit half a pass."""
        if self._stopping.is_set():
            raise Abandoned(f"{self.settings.home}: stopping")


def _rebaselines(latest: VersionRecord, metadata: dict[str, Any]) -> bool:
    """The new version was extracted with other site rules than ``latest``."""
    return siterules.recorded(latest.page_metadata) != siterules.recorded(metadata)


def _quiet_outcome(fetched: FetchResult) -> CheckOutcome | None:
    """The outcome of a fetch that needs no processing: a 304, or a body the
    fetcher found byte-identical to the last one (see Pipeline._known)."""
    if fetched.not_modified:
        return CheckOutcome.NOT_MODIFIED
    if fetched.known_body:
        return CheckOutcome.UNCHANGED
    return None


def _mime(fetched: FetchResult) -> str:
    """``text/html`` from ``Text/HTML; charset=utf-8``; "" when none was sent."""
    return (fetched.content_type or "").split(";", 1)[0].strip().lower()


def _require_html(url: str, fetched: FetchResult) -> None:
    """Raise NotAnArticleError unless the body is an HTML page with something in it."""
    mime = _mime(fetched)
    text = (fetched.text or "").lstrip("\ufeff \t\r\n")
    if not text:
        raise NotAnArticleError(url, f"not an article: empty body, {_described(fetched)}")
    if mime in HTML_TYPES:
        return
    if mime in SNIFFED_TYPES and _HTML_START.match(text[:1024]):
        return
    raise NotAnArticleError(url, f"not an article: {_described(fetched)}")


def _described(fetched: FetchResult) -> str:
    """``application/pdf (12 KB)``: what the body was, for the check row."""
    mime = (fetched.content_type or "").split(";", 1)[0].strip().lower() or "no content type"
    size = fetched.body_bytes
    if size is None:
        return mime
    if size < 1024:
        return f"{mime} ({size} bytes)"
    if size < 1024 * 1024:
        return f"{mime} ({round(size / 1024)} KB)"
    return f"{mime} ({size / (1024 * 1024):.1f} MB)"


def _log(result: CheckResult) -> None:
    if not result.error and not log.isEnabledFor(logging.INFO):
        return  # a line per check: its fields are not even gathered when nobody reads it
    extra = {
        "url": result.url,
        "status": result.status,
        "duration_ms": round(result.duration_ms),
        "outcome": result.outcome.value,
    }
    if result.error:
        log.warning(
            "check %s status=%s duration=%dms outcome=error reason=%s",
            result.url, result.status, result.duration_ms, result.error,
            extra={**extra, "error": result.error},
        )  # fmt: skip
        return
    summary = (
        f" verdict={result.change.verdict.value} ({result.change.summary})" if result.change else ""
    )
    log.info(
        "check %s status=%s duration=%dms outcome=%s%s",
        result.url, result.status, result.duration_ms, result.outcome.value, summary,
        extra=extra,
    )  # fmt: skip
