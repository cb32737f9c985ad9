"""The Python API behind the CLI: watch lists, immediate checks, history, export.

Each function takes Settings and/or a Store and returns values; printing is
the CLI's business. Anything a user can do from the shell can be scripted here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from watcher import archive
from watcher import snapshot as snapshot_mod
from watcher.daemon import fetch_settings, is_locked, read_heartbeat, worker_id
from watcher.diff import diff_snapshots
from watcher.errors import InvalidURLError, WatcherError
from watcher.fetch import Fetcher
from watcher.importer import join_capture_time
from watcher.models import Change, Snapshot
from watcher.pipeline import CheckResult, Pipeline
from watcher.report import change_from_dict
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import (
    CheckOutcome,
    Store,
    VersionRecord,
    WatchRecord,
    WatchState,
    current_revision,
    now_ms,
    upgrade,
)
from watcher.urlnorm import normalise_url

HOUR_MS = 3_600_000


def open_store(settings: Settings, *, create: bool = True) -> Store:
    """Open the database; an empty one is created when ``create`` (CLI use),
    an out-of-date one is refused with the command that fixes it."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if create and current_revision(settings.database_url) is None:
        upgrade(settings.database_url)
    return Store.open(settings.database_url, check_retention=settings.check_retention)


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
    """Validate and add each URL; a bad one is reported, not fatal."""
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


def urls_from_file(path: Path) -> list[str]:
    """One URL per line; blank lines and ``#`` comments are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def require_watch(store: Store, url: str) -> WatchRecord:
    watch = store.get_watch(_normalise(url))
    if watch is None:
        raise WatcherError(f"{url} is not watched (see `watcher list`)")
    return watch


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
    on_done: Callable[[CheckResult], None] | None = None,
) -> CheckRun:
    """One immediate pass over ``watches``, concurrently, whatever their schedule.

    Each watch is leased first, like the daemon's dispatcher does, so a daemon
    running at the same time never checks the same watch twice at once.
    """
    worker = worker_id()
    claimed = store.claim(worker, [w.id for w in watches], now_ms(), CHECK_LEASE_MS)
    claimed_ids = {w.id for w in claimed}
    busy = [w.url for w in watches if w.id not in claimed_ids]

    async def run() -> list[CheckResult]:
        async with Fetcher(fetch_settings(settings)) as fetcher:
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


def run_due_once(settings: Settings, store: Store) -> None:
    """Claim and check every due watch once, like one daemon pass (demo, tests)."""

    async def run() -> None:
        async with Fetcher(fetch_settings(settings)) as fetcher:
            dispatcher = Dispatcher(
                store, Pipeline(store, fetcher, settings), settings, worker_id()
            )
            await dispatcher.run_until_idle()

    asyncio.run(run())


def version_snapshot(store: Store, version: VersionRecord) -> Snapshot:
    """Rebuild a stored version's snapshot from the database alone."""
    text = store.version_text(version.id)
    snap = snapshot_mod.parse(text, source=f"version {version.seq}")
    return replace(snap, captured_at=version.captured_at)


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
        version_snapshot(store, old),
        version_snapshot(store, new),
        old_metadata=old.page_metadata,
        new_metadata=new.page_metadata,
    )


@dataclass(frozen=True, slots=True)
class Status:
    daemon_running: bool
    heartbeat: dict[str, object] | None
    watches: int
    by_state: dict[str, int]
    due_now: int
    errors_last_hour: int
    database: str


def status(settings: Settings, store: Store) -> Status:
    summaries = store.list_watches()
    by_state: dict[str, int] = {}
    for w in summaries:
        by_state[str(w.state)] = by_state.get(str(w.state), 0) + 1
    now = now_ms()
    return Status(
        daemon_running=is_locked(settings.home),
        heartbeat=read_heartbeat(settings.home),
        watches=len(summaries),
        by_state=by_state,
        due_now=store.due_count(now),
        errors_last_hour=store.errors_since(now - HOUR_MS),
        database=settings.database_url,
    )


def export_archive(
    store: Store, target: Path, url: str | None = None, since_ms: int | None = None
) -> int:
    """Write every stored version as a seed-format file in the archive layout.

    Each file is the stored content with its capture time put back
    (``importer.join_capture_time``): what the daemon captured, or the
    imported file byte for byte (after LF line endings), front matter included.
    """
    watches = (
        [require_watch(store, url)]
        if url
        else [store.get_watch_by_id(s.id) for s in store.list_watches()]
    )
    written = 0
    for watch in watches:
        if watch is None:
            continue
        for version in store.versions(watch.id):
            if since_ms is not None and version.captured_at < since_ms:
                continue
            relative = (
                Path(version.archive_path)
                if version.archive_path
                else archive.version_path(watch.url, version.captured_at)
            )
            text = join_capture_time(store.version_text(version.id), version.captured_at)
            path = archive.write_atomic(target, relative, text)
            # The file's mtime is its capture time, so a re-import of a file
            # that states no time of its own still dates it correctly.
            os.utime(path, ns=(version.captured_at * 1_000_000,) * 2)
            written += 1
    return written


def set_paused(store: Store, url: str, paused: bool) -> None:
    """Pause, or resume (also a retired or gone watch): resuming checks it soon
    and restarts its quiet-check count, so it is not retired again at once."""
    watch = require_watch(store, url)
    store.set_state(watch.url, WatchState.PAUSED if paused else WatchState.ACTIVE)
    if not paused:
        store.release(
            watch.id,
            next_check_at=now_ms(),
            failure_count=0,
            unchanged_count=0,
            last_checked_at=watch.last_checked_at or 0,
        )


OUTCOME_LABELS = {
    CheckOutcome.NEW_VERSION: "new version",
    CheckOutcome.UNCHANGED: "unchanged",
    CheckOutcome.NOT_MODIFIED: "not modified (304)",
    CheckOutcome.ERROR: "error",
    CheckOutcome.GONE: "gone",
    CheckOutcome.REAPPEARED: "reappeared",
}
