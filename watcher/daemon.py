"""``watcher run``: resources up, scheduler on, wait for a signal, tear down in reverse.

A signal only flips state (stop claiming); in-flight checks get ``grace``
seconds to finish; then the fetcher, the store and the lock close in reverse
order of opening and the process exits 0, as systemd expects on SIGTERM.
With ``--http`` the web UI's port is bound before anything else starts, the
server runs in the same event loop, and it is the first thing stopped.

Starting after a crash (kill -9, power loss): with the data folder locked,
the daemon first removes the archive files a killed check wrote but never
recorded (archive.recover), then drops the leases its previous run left. Its
worker id is the data folder's own (:func:`daemon_identity`: host plus an id
kept in the folder), the same across restarts, so on PostgreSQL, where other
daemons hold leases too, it drops exactly its own and checks those watches at
once instead of waiting for the leases to run out.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import uuid
from contextlib import suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING

from watcher import archive
from watcher.config import REPORTS_CHANNEL
from watcher.errors import DaemonAlreadyRunningError, WatcherError
from watcher.settings import Settings
from watcher.store import Store, current_revision, now_ms, safe_url, upgrade

if TYPE_CHECKING:
    from watcher.notify import deliver
    from watcher.web.server import EmbeddedServer

log = logging.getLogger(__name__)
LOCK_NAME = "daemon.lock"
HEARTBEAT_NAME = "daemon.json"
IDENTITY_NAME = "daemon.id"


def worker_id() -> str:
    """A one-off claimer's id (``watcher check``, tests): unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def daemon_identity(home: Path) -> str:
    """The worker id of this data folder's daemon, the same across restarts.

    Host name, then a digest of the folder's path and a random id kept in
    ``daemon.id``: a copy of the folder elsewhere, or the same path on another
    machine or container sharing the database, gets an id of its own. Only
    the daemon holding the folder's lock may act on leases under this id.
    """
    path = home / IDENTITY_NAME
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = uuid.uuid4().hex
        tmp = home / f".{IDENTITY_NAME}.tmp"
        tmp.write_text(token + "\n", encoding="utf-8")
        tmp.replace(path)
    digest = hashlib.sha256(f"{home.resolve()}\0{token}".encode()).hexdigest()[:12]
    return f"{socket.gethostname()}:{digest}"


class DaemonLock:
    """An flock on the data folder: one daemon per data folder (its heartbeat,
    archive and reports), whatever the database. Daemons sharing a PostgreSQL
    database each run with their own data folder."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_NAME
        self.handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown pid"
            handle.close()
            raise DaemonAlreadyRunningError(
                f"another watcher daemon ({holder}) is already running on {self.path.parent}; "
                "stop it first, or share a PostgreSQL database (WATCHER_DATABASE_URL) "
                "to run several daemons"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def is_locked(home: Path) -> bool:
    """Is a daemon holding this data folder right now? (for ``watcher status``)"""
    path = home / LOCK_NAME
    if not path.exists():
        return False
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def write_heartbeat(home: Path, worker: str, started: int) -> None:
    data = {"worker": worker, "pid": os.getpid(), "started": started, "heartbeat": now_ms()}
    tmp = home / f".{HEARTBEAT_NAME}.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(home / HEARTBEAT_NAME)


def _beat(home: Path, worker: str, started: int) -> None:
    """The heartbeat job: a full or read-only data folder is logged, not raised
    (the daemon keeps checking; the heartbeat resumes with the space)."""
    try:
        write_heartbeat(home, worker, started)
    except OSError as exc:
        log.error("%s", archive.write_error(home / HEARTBEAT_NAME, exc))


def recover_archive(settings: Settings, store: Store) -> int:
    """Remove what checks killed before their commit left in the archive (see
    archive.Journal); returns how many files. Safe beside running processes."""
    try:
        found = archive.recover(
            settings.archive_dir, settings.home / archive.PENDING_DIR, store.has_archive_path
        )
    except (OSError, WatcherError) as exc:  # the next start tries again
        log.error("cannot clean up after an interrupted check: %s", exc)
        return 0
    for path in found.deleted:
        log.warning("removed %s: its check was killed before recording it", path)
    if found.temporary:
        log.info("removed %d temporary files of interrupted writes", len(found.temporary))
    return len(found.deleted) + len(found.temporary)


def take_back_leases(settings: Settings, store: Store, worker: str) -> int:
    """Drop the leases a crashed run of this daemon left, so their watches are
    checked now rather than when the leases run out. We hold the folder lock:
    no live process has our id. On SQLite no other daemon can hold a lease
    either, so every lease goes (also those of ids before daemon_identity)."""
    dropped = store.drop_claims(None if settings.is_sqlite else worker)
    # Messages a killed run was sending go again now: at most those repeat.
    dropped += store.release_deliveries(worker)
    if dropped:
        log.info("took back %d leases a previous run left", dropped)
    return dropped


async def _finish_sending(
    sending: asyncio.Task[None], deliverer: deliver.Deliverer, store: Store, grace_s: float
) -> None:
    """Let the delivery pass under way finish (within ``grace_s``), then hand
    back whatever this daemon still holds, for the next sender to take at once."""
    try:
        await asyncio.wait_for(asyncio.shield(sending), timeout=grace_s)
    except TimeoutError:
        log.warning("stopped delivering mid-pass: grace period over")
    deliverer.close()
    # Rows being sent keep their lease: their sends finish before the process
    # exits, and record their outcome; the rest go back for anyone to send.
    with suppress(WatcherError):
        store.release_deliveries(deliverer.worker, keep=deliverer.in_flight())


def _warn_unsent(store: Store, deliverer: deliver.Deliverer) -> None:
    """Say so when messages wait for channels this daemon does not have (a
    channel removed from the config, or one only another daemon has)."""
    try:
        pending = store.pending_by_channel()
    except WatcherError:
        return
    orphans = {
        c: n for c, n in pending.items() if c != REPORTS_CHANNEL and c not in deliverer.names
    }
    if orphans:
        log.warning(
            "%d messages wait for channels not in this daemon's config: %s "
            "(another daemon may send them; see watcher deliveries --state pending)",
            sum(orphans.values()), ", ".join(sorted(orphans)),
        )  # fmt: skip


def read_heartbeat(home: Path) -> dict[str, object] | None:
    try:
        return json.loads((home / HEARTBEAT_NAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def run(settings: Settings) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status."""
    lock = DaemonLock(settings.home)
    lock.acquire()
    sock = None
    try:
        # The web UI's port, when asked for, before anything starts: a port taken
        # is a refusal to start, not a daemon running without the UI it was told to serve.
        sock = _listen(settings.http) if settings.http else None
        if settings.database_url == settings.default_database_url and not (
            current_revision(settings.database_url)
        ):
            # the data folder's own database, new: create it, as every command does
            # (a database named by URL is migrated on purpose: watcher db upgrade)
            upgrade(settings.database_url)
        store = Store.open(settings.database_url, check_retention=settings.check_retention)
        try:
            worker = daemon_identity(settings.home)
            recover_archive(settings, store)
            take_back_leases(settings, store, worker)
            asyncio.run(_serve(settings, store, worker, sock))
        finally:
            store.close()
    finally:
        if sock is not None:
            sock.close()
        lock.release()
    log.info("watcher daemon stopped")
    return 0


def _listen(bind: str) -> socket.socket:
    from watcher.web.server import listen  # noqa: PLC0415 (uvicorn only when serving)

    return listen(bind)


async def _start_http(settings: Settings, store: Store, sock: socket.socket) -> EmbeddedServer:
    from watcher.search import open_index  # noqa: PLC0415
    from watcher.web.app import create_app  # noqa: PLC0415
    from watcher.web.server import EmbeddedServer  # noqa: PLC0415

    app = create_app(store, open_index(settings.home, store), token=settings.serve_token)
    server = EmbeddedServer(app, sock, log_level=settings.log_level, grace_s=settings.grace)
    await server.start()
    mode = "writes allowed with the token" if settings.serve_token else "read-only"
    log.info("web UI and API at http://%s/ (%s)", settings.http, mode)
    return server


async def _serve(settings: Settings, store: Store, worker: str, sock: socket.socket | None) -> None:
    # The stages are imported here, not at the top: `watcher status` and
    # `watcher check` use this module's lock, heartbeat and worker id, and
    # should not load the fetcher, the parsers, APScheduler and Apprise.
    from watcher.discovery import SourcePoller  # noqa: PLC0415
    from watcher.fetch import Fetcher  # noqa: PLC0415
    from watcher.notify import deliver  # noqa: PLC0415
    from watcher.pipeline import Pipeline  # noqa: PLC0415
    from watcher.scheduler import Dispatcher, build_scheduler  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deliverer = deliver.Deliverer(store, settings, worker)  # refuses an unusable channel
    started = now_ms()
    log.info(
        "watcher daemon %s started: database %s, data folder %s, channels: %s",
        worker, safe_url(settings.database_url), settings.home,
        ", ".join(deliverer.names) or "none",
    )  # fmt: skip
    _warn_unsent(store, deliverer)
    wake = asyncio.Event()
    async with Fetcher(settings.fetch_settings()) as fetcher:
        pipeline = Pipeline(store, fetcher, settings, worker=worker)

        def wake_sender() -> None:  # called from worker threads
            loop.call_soon_threadsafe(wake.set)

        pipeline.on_change = wake_sender
        dispatcher = Dispatcher(store, pipeline, settings, worker)
        scheduler = build_scheduler(dispatcher, settings)
        scheduler.add_job(
            _beat, "interval", args=(settings.home, worker, started),
            seconds=max(settings.poll, 5), id="heartbeat",
        )  # fmt: skip
        poller = SourcePoller(store, fetcher, settings, worker)  # feeds and section pages
        await poller.start()  # syncs the config file's sources
        scheduler.add_job(
            poller.job, "interval", seconds=settings.poll, id="sources",
            max_instances=1, coalesce=True,
        )  # fmt: skip
        write_heartbeat(settings.home, worker, started)
        scheduler.start()
        sending = asyncio.create_task(deliver.serve(deliverer, stop, wake, settings.poll))
        http = await _start_http(settings, store, sock) if sock is not None else None
        try:
            await stop.wait()
            log.info("stopping: no new checks will be claimed")
        finally:
            if http is not None:  # first: no page is served from a store closing
                await http.stop()
            scheduler.shutdown(wait=False)
            await dispatcher.drain(settings.grace)
            await poller.stop()  # after the grace period a poll under way had too
            await _finish_sending(sending, deliverer, store, settings.grace)
            await dispatcher.flush_site()
            pipeline.close()  # the WARC file: its index is sorted on closing
            with suppress(OSError):
                (settings.home / HEARTBEAT_NAME).unlink()
