"""The Python API behind the CLI: watch lists, immediate checks, history, export.

Each function takes Settings and/or a Store and returns values; printing is
the CLI's business. Anything a user can do from the shell can be scripted here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from watcher import archive
from watcher import snapshot as snapshot_mod
from watcher.daemon import is_locked, read_heartbeat, recover_archive, worker_id
from watcher.diff import diff_snapshots
from watcher.errors import InvalidURLError, WatcherError
from watcher.fetch import Fetcher
from watcher.guard import AddressPolicy, AddressRefused
from watcher.models import Change, change_from_dict
from watcher.pipeline import CheckResult, Pipeline
from watcher.settings import MAX_DURATION_S, Settings, format_duration
from watcher.store import (
    ChangeRecord,
    CheckOutcome,
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
from watcher.urlnorm import normalise_url

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


@dataclass(frozen=True, slots=True)
class Added:
    url: str
    created: bool
    error: str | None = None


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
    """
    if interval_s is not None and not interval_s >= MIN_INTERVAL_S:
        raise WatcherError("--interval must be at least 1m: be kind to news sites")
    if interval_s is not None and not interval_s <= MAX_INTERVAL_S:
        raise WatcherError(f"--interval must be at most {format_duration(MAX_INTERVAL_S)}")
    out: list[Added] = []
    for raw in urls:
        try:
            url = normalise_url(raw.strip())
        except InvalidURLError as exc:
            out.append(Added(raw, False, str(exc)))
            continue
        _, created = store.add_watch(
            url,
            site=urlsplit(url).hostname or "",
            interval_s=round(interval_s) if interval_s else None,
            tags=tuple(tags),
            now_ms=now if now is not None else now_ms(),
        )
        out.append(Added(url, created))
    return out


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
    found = {w.url: w for w in store.watches(urls={norm for _, norm in wanted})}
    out: dict[int, WatchRecord] = {}
    for url, norm in wanted:
        watch = found.get(norm)
        if watch is None:
            raise _not_watched(url)
        out.setdefault(watch.id, watch)
    return list(out.values())


def _not_watched(url: str) -> WatcherError:
    return WatcherError(f"{url} is not watched (see `watcher list`)")


def list_watches(store: Store) -> list[WatchSummary]:
    """Every watch with its version count and latest title, oldest watch first."""
    return store.list_watches()


def remove_watches(store: Store, urls: Iterable[str]) -> list[str]:
    """Stop watching ``urls`` and delete their stored versions; return the URLs
    removed. All are looked up first: if one is not watched, nothing is removed."""
    watches = require_watches(store, urls)
    with store.transaction() as tx:
        return [w.url for w in watches if tx.remove_watch(w.url)]


def watches_to_check(store: Store, urls: Iterable[str] | None) -> list[WatchRecord]:
    """The watches ``watcher check`` runs: those of ``urls``, or (None) every
    watch that is not paused. One query either way."""
    if urls is None:
        return store.watches(states=[st for st in WatchState if st is not WatchState.PAUSED])
    return require_watches(store, urls)


def _normalise(url: str) -> str:
    """The same identity ``add`` and ``import`` give a URL (tracking parameters dropped)."""
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
    watch = require_watch(store, url)
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


def status(settings: Settings, store: Store) -> Status:
    summaries = store.list_watches()
    by_state: dict[str, int] = {}
    for w in summaries:
        by_state[str(w.state)] = by_state.get(str(w.state), 0) + 1
    now = now_ms()
    return Status(
        daemon_running=_daemon_running(settings),
        heartbeat=read_heartbeat(settings.home),
        watches=len(summaries),
        by_state=by_state,
        due_now=store.due_count(now),
        errors_last_hour=store.errors_since(now - HOUR_MS),
        database=safe_url(settings.database_url),
    )


def _daemon_running(settings: Settings) -> bool:
    """Whether a daemon holds the data folder; when its lock file cannot be
    opened (a read-only folder, another user's file), whether its heartbeat
    (written every poll, at least every 5s) is recent."""
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
    """
    watches = [require_watch(store, url)] if url else store.watches()
    written = 0
    for watch in watches:
        for version in store.versions(watch.id):
            if since_ms is not None and version.captured_at < since_ms:
                continue
            relative = (
                Path(version.archive_path)
                if version.archive_path
                else archive.version_path(watch.url, version.captured_at)
            )
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
    watch right now.
    """
    watch = require_watch(store, url)
    if paused:
        store.set_state(watch.url, WatchState.PAUSED)
        return
    # A removal is the newest thing known of an article taken down before it
    # was paused or retired: it stays gone until it is seen again.
    latest = store.latest_change(watch.id)
    gone = latest is not None and latest.new_version_id is None
    store.resume(watch.url, now_ms=now if now is not None else now_ms(), gone=gone)


OUTCOME_LABELS = {
    CheckOutcome.NEW_VERSION: "new version",
    CheckOutcome.UNCHANGED: "unchanged",
    CheckOutcome.NOT_MODIFIED: "not modified (304)",
    CheckOutcome.ERROR: "error",
    CheckOutcome.GONE: "gone",
    CheckOutcome.REAPPEARED: "reappeared",
}
