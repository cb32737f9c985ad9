"""``watcher run``: resources up, scheduler on, wait for a signal, tear down in reverse.

A signal only flips state (stop claiming); in-flight checks get ``grace``
seconds to finish; then the fetcher, the store and the lock close in reverse
order of opening and the process exits 0, as systemd expects on SIGTERM.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import uuid
from contextlib import suppress
from pathlib import Path
from typing import IO

from watcher.errors import DaemonAlreadyRunningError
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher, build_scheduler
from watcher.settings import Settings
from watcher.store import Store, now_ms, safe_url

log = logging.getLogger(__name__)
LOCK_NAME = "daemon.lock"
HEARTBEAT_NAME = "daemon.json"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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


def read_heartbeat(home: Path) -> dict[str, object] | None:
    try:
        return json.loads((home / HEARTBEAT_NAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def run(settings: Settings) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status."""
    lock = DaemonLock(settings.home)
    lock.acquire()
    try:
        store = Store.open(settings.database_url, check_retention=settings.check_retention)
        try:
            if settings.is_sqlite:
                store.drop_claims()  # we hold the lock: any lease is a crashed run's
            asyncio.run(_serve(settings, store))
        finally:
            store.close()
    finally:
        lock.release()
    log.info("watcher daemon stopped")
    return 0


async def _serve(settings: Settings, store: Store) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = worker_id()
    started = now_ms()
    log.info(
        "watcher daemon %s started: database %s, data folder %s",
        worker, safe_url(settings.database_url), settings.home,
    )  # fmt: skip
    async with Fetcher(settings.fetch_settings()) as fetcher:
        dispatcher = Dispatcher(store, Pipeline(store, fetcher, settings), settings, worker)
        scheduler = build_scheduler(dispatcher, settings)
        scheduler.add_job(
            write_heartbeat, "interval", args=(settings.home, worker, started),
            seconds=max(settings.poll, 5), id="heartbeat",
        )  # fmt: skip
        write_heartbeat(settings.home, worker, started)
        scheduler.start()
        try:
            await stop.wait()
            log.info("stopping: no new checks will be claimed")
        finally:
            scheduler.shutdown(wait=False)
            await dispatcher.drain(settings.grace)
            await dispatcher.flush_site()
            with suppress(OSError):
                (settings.home / HEARTBEAT_NAME).unlink()
