"""The Python API behind the CLI: watch lists, immediate checks, history, export.

Each function takes Settings and/or a Store and returns values; printing is
the CLI's business. Anything a user can do from the shell can be scripted here.

Importing this module loads the store (SQLAlchemy) and little else: the
functions that fetch, parse or diff (:func:`check_now`, :func:`poll_sources`,
:func:`diff_versions`, ...) import those stages when they are called, so
``watcher list``, ``status`` and ``add`` start without httpx, lxml,
dateparser, APScheduler or Apprise (issue 12).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from watcher.config import REPORTS_CHANNEL
from watcher.errors import InvalidURLError, WatcherError
from watcher.models import Change, change_from_dict
from watcher.settings import MAX_DURATION_S, Settings, format_duration, parse_duration
from watcher.store import (
    CHECKED_STATES,
    KEEP,
    ChangeRecord,
    CheckOutcome,
    DeliveryRecord,
    DeliveryState,
    Keep,
    Repository,
    SourceRecord,
    Store,
    VersionRecord,
    WatchRecord,
    WatchState,
    WatchSummary,
    check_schema,
    current_revision,
    now_ms,
    open_engine,
    safe_url,
    upgrade,
)
from watcher.store.engine import sqlite_file

if TYPE_CHECKING:
    from watcher import feedmeta
    from watcher.discovery import PollResult
    from watcher.pipeline import CheckResult

HOUR_MS = 3_600_000
MIN_INTERVAL_S = 60  # a pinned interval shorter than this is refused
MAX_INTERVAL_S = MAX_DURATION_S  # and one longer than this (365d)


def open_store(settings: Settings, *, create: bool = True, readonly: bool = False) -> Store:
    """Open the database; an out-of-date one is refused with the command that fixes it.

    For commands that write, the data folder and (``create``) an empty
    database are created. ``readonly``, for commands that only read, creates
    and writes nothing, so they work on a read-only data folder: SQLite is
    opened read-only, and a missing database is a StoreError.
    """
    if readonly:
        engine = open_engine(settings.database_url, readonly=True)
        try:
            check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return Store(engine, check_retention=settings.check_retention)
    settings.home.mkdir(parents=True, exist_ok=True)
    if create and current_revision(settings.database_url) is None:
        upgrade(settings.database_url)
    return Store.open(settings.database_url, check_retention=settings.check_retention)


def database_exists(settings: Settings) -> bool:
    """False only for a SQLite database whose file is not there yet."""
    path = sqlite_file(settings.database_url)
    return path is None or path.exists()


ADAPTIVE = "adaptive"  # an unpinned interval, as the command line and the output write it


def parse_interval(text: str) -> float | None:
    """``--interval``: a duration such as ``10m`` (seconds, checked as
    :func:`add_watches` checks it), or ``adaptive`` (None: the scheduler decides)."""
    if text.strip().lower() == ADAPTIVE:
        return None
    try:
        seconds = parse_duration(text)
    except WatcherError as exc:
        raise WatcherError(f"--interval {exc}") from exc
    _check_interval(seconds)
    return seconds


def format_interval(interval_s: int | None) -> str:
    return format_duration(interval_s) if interval_s else ADAPTIVE


def _check_interval(interval_s: float | None) -> None:
    """A pinned interval under :data:`MIN_INTERVAL_S` or over :data:`MAX_INTERVAL_S`
    is refused (WatcherError); None (adaptive) is always fine."""
    if interval_s is not None and not interval_s >= MIN_INTERVAL_S:
        raise WatcherError("--interval must be at least 1m: be kind to news sites")
    if interval_s is not None and not interval_s <= MAX_INTERVAL_S:
        raise WatcherError(f"--interval must be at most {format_duration(MAX_INTERVAL_S)}")


@dataclass(frozen=True, slots=True)
class Added:
    """What ``add`` did to one URL. Besides a new watch: a removed one brought
    back (``reactivated``, same id, history kept), or an existing one that got
    ``tags_added`` but kept its own ``interval_s`` (``interval_kept``: the add
    asked for another; changing it is ``watcher set``'s job, so that a repeated
    ``add`` never silently reschedules a watch)."""

    url: str
    created: bool
    error: str | None = None
    reactivated: bool = False
    tags_added: tuple[str, ...] = ()
    interval_kept: bool = False
    interval_s: int | None = None  # the watch's interval after the add


def add_watches(
    store: Store,
    urls: Iterable[str],
    *,
    interval_s: float | None = None,
    tags: Iterable[str] = (),
    now: int | None = None,
) -> list[Added]:
    """Validate and add each URL; a bad one is reported, not fatal.

    A pinned ``interval_s`` under :data:`MIN_INTERVAL_S` or over
    :data:`MAX_INTERVAL_S` is refused (WatcherError) before any URL is added.
    Every URL is normalised first, then all are added in one transaction (a
    few statements per 500 URLs: 10,000 take about a second), which also
    reads the URLs already watched, so the result can say what the add did to
    them (see :class:`Added`). A URL given twice is "already watched" the
    second time, as the first left it.
    """
    _check_interval(interval_s)
    pinned = _pinned(interval_s)
    tag_list = tuple(dict.fromkeys(tags))
    when = now if now is not None else now_ms()
    wanted = _normalised(urls)  # (URL normalised, or as given with its error)
    sites = {url: urlsplit(url).hostname or "" for url, error in wanted if error is None}
    out: list[Added] = []
    first: dict[str, Added] = {}  # what the add did to each URL, the first time it came
    with store.transaction() as tx:
        created, existing = tx.add_watches(sites, interval_s=pinned, tags=tag_list, now_ms=when)
        for url, error in wanted:
            if error is not None:
                out.append(Added(url, False, error))
            elif url in first:
                out.append(_again(url, first[url], pinned))
            else:
                if url in created:
                    first[url] = Added(url, True, interval_s=pinned)
                else:
                    first[url] = _readd(tx, *existing[url], pinned, when)
                out.append(first[url])
    return out


def _again(url: str, first: Added, pinned: int | None) -> Added:
    """A URL repeated in one add: already watched, as its first mention left it."""
    kept = pinned is not None and pinned != first.interval_s
    return Added(url, False, interval_kept=kept, interval_s=first.interval_s)


def _normalised(urls: Iterable[str]) -> list[tuple[str, str | None]]:
    """Each URL normalised, or (a bad one) as given with the reason it is refused."""
    # urlnorm checks URLs with the fetcher's validate_url: httpx is imported
    # by the commands that take URLs, not by `watcher list` (issue 12)
    from watcher.urlnorm import normalise_url  # noqa: PLC0415

    wanted: list[tuple[str, str | None]] = []
    for raw in urls:
        try:
            wanted.append((normalise_url(raw.strip()), None))
        except InvalidURLError as exc:
            wanted.append((raw, str(exc)))
    return wanted


def _readd(
    store: Repository, before: WatchRecord, watch: WatchRecord, pinned: int | None, when: int
) -> Added:
    """``add`` of a URL already there: bring a removed watch back (with the
    interval asked for, if any), else only say what the add merged."""
    tags_added = tuple(t for t in watch.tags if t not in before.tags)
    if before.state is WatchState.REMOVED:
        _wake(store, watch, when)
        interval = watch.interval_s if pinned is None else pinned
        if interval != watch.interval_s:
            store.update_watch(watch.url, interval_s=interval, tags=watch.tags, next_check_at=when)
        return Added(watch.url, False, reactivated=True, tags_added=tags_added, interval_s=interval)
    kept = pinned is not None and pinned != watch.interval_s
    return Added(
        watch.url, False, tags_added=tags_added, interval_kept=kept, interval_s=watch.interval_s
    )


def _pinned(interval_s: float | None) -> int | None:
    return round(interval_s) if interval_s else None


def address_warning(settings: Settings, url: str) -> str | None:
    """Why every check of ``url`` will be refused, when its host is a
    non-public address written out (http://10.0.0.1/); None otherwise.

    Only a warning: the decision is made at fetch time, on the resolved
    address, and a name is not judged here because DNS answers change.
    """
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    # only for an address written out (rare): guard brings httpcore
    from watcher.guard import AddressPolicy, AddressRefused  # noqa: PLC0415

    policy = AddressPolicy.allowing(settings.allow_hosts)
    detail = None if policy.allows_host(host) else policy.refusal(host, host)
    return None if detail is None else AddressRefused(host, detail).reason()


def urls_from_file(path: Path) -> list[str]:
    """One URL per line; blank lines and ``#`` comments are skipped.

    WatcherError for a file that cannot be read or is not UTF-8 text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WatcherError(
            f"{path}: not a text file of URLs (not UTF-8 at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise WatcherError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def require_watch(store: Store, url: str) -> WatchRecord:
    watch = store.get_watch(_normalise(url))
    if watch is None:
        raise _not_watched(url)
    return watch


def require_watches(store: Store, urls: Iterable[str]) -> list[WatchRecord]:
    """The watches of ``urls`` in the order given (each once), from one query;
    WatcherError names the first URL that is not watched."""
    wanted = [(url, _normalise(url)) for url in urls]
    return _in_order(wanted, {w.url: w for w in store.watches(urls={n for _, n in wanted})})


def require_summaries(store: Store, urls: Iterable[str]) -> list[WatchSummary]:
    """As :func:`require_watches`, with each watch's version count (what
    ``remove --purge`` asks about before deleting)."""
    wanted = [(url, _normalise(url)) for url in urls]
    return _in_order(wanted, {w.url: w for w in store.list_watches(urls={n for _, n in wanted})})


_W = TypeVar("_W", WatchRecord, WatchSummary)


def _in_order(wanted: list[tuple[str, str]], found: Mapping[str, _W]) -> list[_W]:
    out: dict[int, _W] = {}
    for url, norm in wanted:
        watch = found.get(norm)
        if watch is None:
            raise _not_watched(url)
        out.setdefault(watch.id, watch)
    return list(out.values())


def _not_watched(url: str) -> WatcherError:
    return WatcherError(f"{url} is not watched (see `watcher list`)")


def _refuse_removed(watches: Iterable[WatchRecord]) -> None:
    """WatcherError naming the first removed watch: set, check, pause and resume
    would otherwise act on an article the user stopped watching, silently."""
    for watch in watches:
        if watch.state is WatchState.REMOVED:
            raise WatcherError(
                f"{watch.url} was removed (its history is kept): `watcher add` watches it again"
            )


def list_watches(store: Store, *, include_removed: bool = False) -> list[WatchSummary]:
    """Every watch with its version count and latest title, oldest watch first;
    removed watches (their history kept) only with ``include_removed``."""
    watches = store.list_watches()
    return [w for w in watches if include_removed or w.state is not WatchState.REMOVED]


@dataclass(frozen=True, slots=True)
class Removed:
    """One URL ``remove`` acted on: its ``versions`` were kept, or (``purged``)
    deleted. ``already``: it had been removed before, so (unless purged)
    nothing changed."""

    url: str
    versions: int
    purged: bool
    already: bool = False


def remove_watches(store: Store, urls: Iterable[str], *, purge: bool = False) -> list[Removed]:
    """Stop watching ``urls``. Their history (versions, changes, reports) is
    kept, so a mistaken remove loses nothing and ``watcher add`` brings a watch
    back with it; ``purge`` deletes the watches and their history instead (the
    archive files stay on disk).

    All are looked up first: if one is not watched, nothing is changed.
    """
    watches = require_summaries(store, urls)
    with store.transaction() as tx:
        for w in watches:
            if purge:
                tx.remove_watch(w.url)
            elif w.state is not WatchState.REMOVED:
                tx.set_state(w.url, WatchState.REMOVED)
    return [Removed(w.url, w.version_count, purge, w.state is WatchState.REMOVED) for w in watches]


def watches_to_check(store: Store, urls: Iterable[str] | None) -> list[WatchRecord]:
    """The watches ``watcher check`` runs: those of ``urls``, or (None) every
    watch that is neither paused nor removed. One query either way; naming a
    removed watch is an error (checking it would add to a history the user
    stopped)."""
    if urls is None:
        skipped = (WatchState.PAUSED, WatchState.REMOVED)
        return store.watches(states=[st for st in WatchState if st not in skipped])
    watches = require_watches(store, urls)
    _refuse_removed(watches)
    return watches


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """What ``set`` did to one watch: its interval and tags before and after."""

    url: str
    interval_before: int | None
    interval_after: int | None
    tags_before: tuple[str, ...]
    tags_after: tuple[str, ...]

    @property
    def tags_added(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags_after if t not in self.tags_before)

    @property
    def tags_removed(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags_before if t not in self.tags_after)

    @property
    def changed(self) -> bool:
        return self.interval_before != self.interval_after or self.tags_before != self.tags_after

    def describe(self) -> str:
        """``interval 10m → adaptive, tags +elections -draft``, or ``unchanged``."""
        parts = []
        if self.interval_before != self.interval_after:
            before, after = (format_interval(self.interval_before),
                             format_interval(self.interval_after))  # fmt: skip
            parts.append(f"interval {before} → {after}")
        tags = [f"+{t}" for t in self.tags_added] + [f"-{t}" for t in self.tags_removed]
        if tags:
            parts.append("tags " + " ".join(tags))
        return ", ".join(parts) or "unchanged"


def set_watches(
    store: Store,
    urls: Iterable[str],
    *,
    interval_s: float | Keep | None = KEEP,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
    now: int | None = None,
) -> list[WatchUpdate]:
    """Change the interval (None: adaptive; :data:`KEEP`: leave it) and the
    tags of watched URLs. All or nothing, like :func:`remove_watches`: an
    unknown or removed URL, or a bad interval, is a WatcherError before
    anything is written.

    A shorter pinned interval takes effect now (the next check is moved
    earlier, never later), not after the check the old interval scheduled.
    """
    if not isinstance(interval_s, Keep):
        _check_interval(interval_s)
    adding, dropping = tuple(dict.fromkeys(add_tags)), tuple(dict.fromkeys(remove_tags))
    if both := [t for t in adding if t in dropping]:
        raise WatcherError(f"--tag and --untag both name {both[0]!r}")
    watches = require_watches(store, urls)
    _refuse_removed(watches)
    when = now if now is not None else now_ms()
    updates: list[WatchUpdate] = []
    with store.transaction() as tx:
        for w in watches:
            interval = w.interval_s if isinstance(interval_s, Keep) else _pinned(interval_s)
            tags = tuple(t for t in dict.fromkeys([*w.tags, *adding]) if t not in dropping)
            update = WatchUpdate(w.url, w.interval_s, interval, w.tags, tags)
            if update.changed:
                due = w.next_check_at
                if interval and interval != w.interval_s:
                    due = min(due, when + interval * 1000)
                tx.update_watch(w.url, interval_s=interval, tags=tags, next_check_at=due)
            updates.append(update)
    return updates


def _normalise(url: str) -> str:
    """The same identity ``add`` and ``import`` give a URL (tracking parameters dropped)."""
    from watcher.urlnorm import normalise_url  # noqa: PLC0415 - see _normalised

    try:
        return normalise_url(url)
    except InvalidURLError:
        return url


@dataclass(frozen=True, slots=True)
class CheckRun:
    results: list[CheckResult]
    busy: list[str]  # URLs a running daemon was checking at that moment


CHECK_LEASE_MS = 15 * 60_000


def check_now(
    settings: Settings,
    store: Store,
    watches: list[WatchRecord],
    on_done: Callable[[CheckResult], object] | None = None,
) -> CheckRun:
    """One immediate pass over ``watches``, concurrently, whatever their schedule.

    Each watch is leased first, like the daemon's dispatcher does, so a daemon
    running at the same time never checks the same watch twice at once.
    Archive files a killed check left behind are removed first (safe beside
    a running daemon: see archive.recover).
    """
    from watcher.daemon import recover_archive, worker_id  # noqa: PLC0415
    from watcher.fetch import Fetcher  # noqa: PLC0415
    from watcher.pipeline import Pipeline  # noqa: PLC0415

    recover_archive(settings, store)
    worker = worker_id()
    claimed = store.claim(worker, [w.id for w in watches], now_ms(), CHECK_LEASE_MS)
    claimed_ids = {w.id for w in claimed}
    busy = [w.url for w in watches if w.id not in claimed_ids]

    async def run() -> list[CheckResult]:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings)
            limit = asyncio.Semaphore(max(1, settings.max_connections))

            async def one(watch: WatchRecord) -> CheckResult:
                async with limit:
                    result = await pipeline.check(watch)
                if on_done:
                    on_done(result)
                return result

            try:
                results = list(await asyncio.gather(*(one(w) for w in claimed)))
            finally:
                store.drop_claims(worker)  # checks release their own; this is for errors
                pipeline.close()
            pipeline.flush_site()
            return results

    return CheckRun(asyncio.run(run()), busy)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of an article's record: a stored version with the change that
    led to it (None: the first capture), or a removal (``version`` None)."""

    version: VersionRecord | None
    change: ChangeRecord | None
    at: int  # capture time of the version, or when the removal was seen


@dataclass(frozen=True, slots=True)
class ArticleHistory:
    """What ``watcher history`` shows: every version and removal, in the order
    they happened (a removal right after the version it removed)."""

    watch: WatchRecord
    entries: list[HistoryEntry]

    @property
    def latest_change(self) -> ChangeRecord | None:
        """The newest change recorded, a removal included."""
        changes = [e.change for e in self.entries if e.change]
        return max(changes, key=lambda c: c.id, default=None)


def history(store: Store, url: str) -> ArticleHistory:
    """The history of a watched URL, from three queries whatever its length
    (the watch, its versions, its changes)."""
    return watch_history(store, require_watch(store, url))


def watch_history(store: Store, watch: WatchRecord) -> ArticleHistory:
    """:func:`history` of a watch already found (the web UI finds it by id)."""
    versions = store.versions(watch.id)
    changes = store.changes(watch.id)
    incoming = {c.new_version_id: c for c in changes if c.new_version_id is not None}
    removals: dict[int, list[ChangeRecord]] = {}
    for c in changes:
        if c.new_version_id is None:
            removals.setdefault(c.old_version_id, []).append(c)
    entries: list[HistoryEntry] = []
    for v in versions:
        entries.append(HistoryEntry(v, incoming.get(v.id), v.captured_at))
        entries += [HistoryEntry(None, c, removal_time(c)) for c in removals.get(v.id, [])]
    return ArticleHistory(watch=watch, entries=entries)


def removal_time(change: ChangeRecord) -> int:
    """When a removal was seen: the check that found the 404 (its record's
    "after" time), else when it was stored."""
    after = change.record.get("captured_after")
    return after if isinstance(after, int) else change.created_at


def diff_versions(store: Store, url: str, from_seq: int | None, to_seq: int | None) -> Change:
    """The change between two stored versions (default: the last two)."""
    watch = require_watch(store, url)
    versions = {v.seq: v for v in store.versions(watch.id)}
    if len(versions) < 1:
        raise WatcherError(f"{url} has no stored versions yet")
    last = max(versions)
    to_seq = to_seq or last
    from_seq = from_seq or max(1, to_seq - 1)
    for seq in (from_seq, to_seq):
        if seq not in versions:
            raise WatcherError(f"{url} has no version {seq} (versions 1..{last})")
    old, new = versions[from_seq], versions[to_seq]
    stored = next(
        (
            c
            for c in store.changes(watch.id)
            if (c.old_version_id, c.new_version_id) == (old.id, new.id)
        ),
        None,
    )
    if stored is not None:
        return change_from_dict(stored.record)
    from watcher.diff import diff_snapshots  # noqa: PLC0415 - lxml and dateparser

    return diff_snapshots(
        store.version_snapshot(old),
        store.version_snapshot(new),
        old_metadata=old.page_metadata,
        new_metadata=new.page_metadata,
        basis=(old.time_basis, new.time_basis),
    )


@dataclass(frozen=True, slots=True)
class Status:
    daemon_running: bool
    heartbeat: dict[str, object] | None
    watches: int
    by_state: dict[str, int]
    due_now: int
    errors_last_hour: int
    database: str  # the database URL, password masked
    #: Checked watches whose last check failed, longest failing first, each
    #: with its ``last_error``: a count alone does not say what to fix.
    failing: list[WatchSummary] = field(default_factory=list)
    #: Outbox rows by state (pending, sent, dead).
    deliveries: dict[str, int] = field(default_factory=dict)


def status(settings: Settings, store: Store) -> Status:
    from watcher.daemon import read_heartbeat  # noqa: PLC0415

    summaries = store.list_watches()
    by_state: dict[str, int] = {}
    for w in summaries:
        by_state[str(w.state)] = by_state.get(str(w.state), 0) + 1
    failing = [w for w in summaries if w.last_error is not None and w.state in CHECKED_STATES]
    failing.sort(key=lambda w: (-w.failure_count, w.id))
    now = now_ms()
    return Status(
        daemon_running=_daemon_running(settings),
        heartbeat=read_heartbeat(settings.home),
        watches=len(summaries),
        by_state=by_state,
        due_now=store.due_count(now),
        errors_last_hour=store.errors_since(now - HOUR_MS),
        database=safe_url(settings.database_url),
        failing=failing,
        deliveries=store.delivery_counts(exclude=(REPORTS_CHANNEL,)),
    )


def _daemon_running(settings: Settings) -> bool:
    """Whether a daemon holds the data folder; when its lock file cannot be
    opened (a read-only folder, another user's file), whether its heartbeat
    (written every poll, at least every 5s) is recent."""
    from watcher.daemon import is_locked, read_heartbeat  # noqa: PLC0415

    try:
        return is_locked(settings.home)
    except OSError:
        last = (read_heartbeat(settings.home) or {}).get("heartbeat")
        fresh_ms = max(120_000, 3_000 * settings.poll)
        return isinstance(last, int) and now_ms() - last < fresh_ms


def export_archive(
    store: Store, target: Path, url: str | None = None, since_ms: int | None = None
) -> int:
    """Write every stored version as a seed-format file in the archive layout.

    Each file is the stored content with its capture time put back
    (``snapshot.join_capture_time``): what the daemon captured, or the
    imported file byte for byte (after LF line endings), front matter included.
    Versions without an archive file (noise-only ones) are written too, where
    :func:`archive.export_paths` puts them.
    """
    from watcher import archive  # noqa: PLC0415
    from watcher import snapshot as snapshot_mod  # noqa: PLC0415

    watches = [require_watch(store, url)] if url else store.watches()
    written = 0
    for watch in watches:
        versions = store.versions(watch.id)
        paths = archive.export_paths(watch.url, [(v.captured_at, v.archive_path) for v in versions])
        for version, relative in zip(versions, paths, strict=True):
            if since_ms is not None and version.captured_at < since_ms:
                continue
            text = snapshot_mod.join_capture_time(
                store.version_text(version.id), version.captured_at
            )
            path = archive.write_atomic(target, relative, text)
            # The file's mtime is its capture time, so a re-import of a file
            # that states no time of its own still dates it correctly.
            os.utime(path, ns=(version.captured_at * 1_000_000,) * 2)
            written += 1
    return written


def set_paused(store: Store, url: str, paused: bool, *, now: int | None = None) -> None:
    """Pause, or resume (also a retired or gone watch): resuming checks it soon
    and restarts its quiet-check count, so it is not retired again at once; a
    removed article stays gone, so its return is news ("reappeared").

    Neither touches the last check time nor the lease of a daemon checking the
    watch right now. A removed watch is refused: ``watcher add`` brings it back.
    """
    watch = require_watch(store, url)
    _refuse_removed([watch])
    if paused:
        store.set_state(watch.url, WatchState.PAUSED)
        return
    _wake(store, watch, now if now is not None else now_ms())


def _wake(store: Repository, watch: WatchRecord, now: int) -> None:
    """Make a watch checked again, due ``now`` (resume, or ``add`` of a removed one)."""
    # A removal is the newest thing known of an article taken down before it
    # was paused or retired: it stays gone until it is seen again.
    latest = store.latest_change(watch.id)
    gone = latest is not None and latest.new_version_id is None
    store.resume(watch.url, now_ms=now, gone=gone)


def deliveries(
    store: Store, *, state: DeliveryState | None, limit: int = 100
) -> list[DeliveryRecord]:
    """Outbox rows, newest first: dead letters by default in the CLI."""
    return store.deliveries(state=state, limit=limit)


def retry_deliveries(store: Store, ids: Iterable[int] | None) -> int:
    """Send dead letters again (all, or those ``ids``); returns how many were
    queued. An id that is not a dead letter is an error, and nothing changes."""
    if ids is not None:
        wanted = sorted(set(ids))
        dead = {d.id for d in store.deliveries(state=DeliveryState.DEAD)}
        missing = [i for i in wanted if i not in dead]
        if missing:
            raise WatcherError(
                "no dead letter "
                + ", ".join(f"#{i}" for i in missing)
                + " (watcher deliveries lists them; --state all shows every delivery)"
            )
        return store.retry_deliveries(now_ms(), wanted)
    return store.retry_deliveries(now_ms())


OUTCOME_LABELS = {
    CheckOutcome.NEW_VERSION: "new version",
    CheckOutcome.UNCHANGED: "unchanged",
    CheckOutcome.NOT_MODIFIED: "not modified (304)",
    CheckOutcome.ERROR: "error",
    CheckOutcome.GONE: "gone",
    CheckOutcome.REAPPEARED: "reappeared",
}


# -- sources -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceAdded:
    url: str
    created: bool


def add_source(
    settings: Settings,
    store: Store,
    url: str,
    *,
    tags: Iterable[str] = (),
    interval_s: float | None = None,
    match: str | None = None,
    now: int | None = None,
) -> SourceAdded:
    """Add a feed or section page (nothing is fetched), or give an existing
    one these settings. WatcherError, in one line, for a bad URL, regex or
    interval, or a source the config file owns."""
    from watcher.discovery import compile_match, source_url  # noqa: PLC0415

    clean = source_url(url)
    compile_match(match)
    every = settings.source_interval if interval_s is None else interval_s
    _check_interval(every)
    held = store.get_source(clean)
    if held is not None and held.origin == "config":
        raise WatcherError(f"{clean} is a source of the config file: change it there")
    _, created = store.add_source(
        clean, tags=tags, interval_s=round(every), match=match or None,
        now_ms=now if now is not None else now_ms(),
    )  # fmt: skip
    return SourceAdded(clean, created)


def list_sources(store: Store) -> list[SourceRecord]:
    """Every source, with how many watches it found, oldest first."""
    return store.list_sources()


def require_sources(store: Store, urls: Iterable[str]) -> list[SourceRecord]:
    """The sources of ``urls``, in order; WatcherError names the first unknown one."""
    from watcher.discovery import source_url  # noqa: PLC0415

    known = {s.url: s for s in store.list_sources()}
    out: list[SourceRecord] = []
    for url in urls:
        try:
            found = known.get(source_url(url))
        except InvalidURLError:
            found = None
        if found is None:
            raise WatcherError(f"{url} is not a source (see `watcher source list`)")
        out.append(found)
    return out


def remove_sources(store: Store, urls: Iterable[str]) -> list[SourceRecord]:
    """Forget sources (their watches stay); all are looked up first, so an
    unknown URL removes nothing. A config-file source comes back at the
    daemon's next start unless the file drops it."""
    sources = require_sources(store, urls)
    with store.transaction() as tx:
        return [s for s in sources if tx.remove_source(s.url)]


def poll_sources(
    settings: Settings, store: Store, sources: Iterable[SourceRecord]
) -> list[PollResult]:
    """Poll these sources once, now (a running daemon's poll of one is skipped)."""
    from watcher.daemon import worker_id  # noqa: PLC0415
    from watcher.discovery import SourcePoller  # noqa: PLC0415
    from watcher.fetch import Fetcher  # noqa: PLC0415

    async def run() -> list[PollResult]:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            poller = SourcePoller(store, fetcher, settings, worker_id())
            return await poller.poll_now(list(sources))

    return asyncio.run(run())


def feed_notes(watch: WatchRecord) -> list[feedmeta.Note]:
    """The re-datings of an article its feed made, each with what its next
    check found ("… without visible change")."""
    from watcher import feedmeta  # noqa: PLC0415

    return feedmeta.notes(watch.source_meta)
