"""Crash recovery (issue 10): archive files a killed check left, the leases a
killed daemon left, and a full or read-only data folder.

The daemon tests kill the real ``watcher run`` at a chosen moment with
``os._exit`` from a patched function (between the archive file and its
commit, between a temporary file and its rename), then restart the real
daemon on the same data folder. The disk tests use a real tmpfs when the
test may mount one (root), and patched system calls otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.clock import Clock
from tests.support.http_server import LocalServer
from tests.test_daemon import STARTUP_S, Daemon, article, wait_for
from watcher import api, archive
from watcher.daemon import daemon_identity, take_back_leases
from watcher.errors import StoreError
from watcher.fetch import Fetcher
from watcher.pipeline import CheckResult, Pipeline
from watcher.scheduler import Dispatcher, build_scheduler, lease_ms
from watcher.settings import Settings
from watcher.store import CheckOutcome, Store, Transaction, WatchRecord, now_ms, upgrade

PATH = "/news/1"


def edited(i: int) -> str:
    return article(i).replace("视频会晤", "视频会晤，会晤持续三个半小时")


def archive_files(settings: Settings) -> set[str]:
    """Every file under the archive, relative, ``.tmp-*`` included."""
    root = settings.archive_dir
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def journals(settings: Settings) -> list[str]:
    folder = settings.home / archive.PENDING_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def version_paths(store: Store, watch_id: int) -> set[str]:
    return {v.archive_path for v in store.versions(watch_id) if v.archive_path}


# -- the journal ---------------------------------------------------------------------
def test_recover_removes_what_dead_writers_left_and_nothing_of_live_ones(tmp_path: Path) -> None:
    root, folder = tmp_path / "archive", tmp_path / archive.PENDING_DIR
    orphan, recorded, never = (archive.version_path(f"https://a.example/{i}", 1) for i in range(3))
    dead = archive.Journal(root, folder)
    for watch_id, relative in ((1, orphan), (2, recorded), (3, never)):
        dead.intend(watch_id, relative)
    for relative in (orphan, recorded):
        archive.write_atomic(root, relative, "x\n")
    leftover = root / orphan.parent / f".tmp-{orphan.stem}-k1ll3d.md"  # killed before rename
    leftover.write_text("x", encoding="utf-8")
    dead.close()  # what death does to the flock; nothing was settled
    live = archive.Journal(root, folder)
    busy = archive.version_path("https://a.example/busy", 1)
    live.intend(4, busy)
    archive.write_atomic(root, busy, "x\n")

    found = archive.recover(root, folder, lambda watch_id, path: watch_id == 2)

    assert (found.journals, found.deleted, found.temporary) == (1, [root / orphan], [leftover])
    assert not (root / orphan).exists() and not leftover.exists()
    assert (root / recorded).exists() and (root / busy).exists()
    assert len(list(folder.glob("*.journal"))) == 1  # the live one, untouched
    live.settle(busy)
    live.close()
    assert list(folder.iterdir()) == []


def test_recover_keeps_the_journal_while_the_database_cannot_answer(tmp_path: Path) -> None:
    root, folder = tmp_path / "archive", tmp_path / archive.PENDING_DIR
    relative = archive.version_path("https://a.example/1", 1)
    dead = archive.Journal(root, folder)
    dead.intend(1, relative)
    archive.write_atomic(root, relative, "x\n")
    dead.close()

    def away(watch_id: int, path: str) -> bool:
        raise StoreError("database error: the connection went away")

    with pytest.raises(StoreError):
        archive.recover(root, folder, away)
    assert (root / relative).exists() and len(list(folder.glob("*.journal"))) == 1
    found = archive.recover(root, folder, lambda watch_id, path: False)
    assert found.deleted == [root / relative] and list(folder.iterdir()) == []


def test_a_full_disk_is_named_in_one_line_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative = archive.version_path("https://a.example/1", 1)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError) as caught:
        archive.write_atomic(tmp_path, relative, "x\n")
    assert str(caught.value) == f"disk full: cannot write {tmp_path / relative}"
    assert str(caught.value) == caught.value.reason
    assert list((tmp_path / relative).parent.iterdir()) == []


# -- a check that fails or dies between its file and its commit ------------------------
@dataclass
class Env:
    store: Store
    settings: Settings
    site: LocalServer
    clock: Clock

    def add(self, path: str = PATH) -> WatchRecord:
        [added] = api.add_watches(self.store, [self.site.url(path)], now=self.clock())
        assert added.error is None
        return self.watch(added.url)

    def watch(self, url: str) -> WatchRecord:
        watch = self.store.get_watch(url)
        assert watch is not None
        return watch

    def check(self, watch: WatchRecord) -> CheckResult:
        async def run() -> CheckResult:
            async with Fetcher(self.settings.fetch_settings()) as fetcher:
                pipeline = Pipeline(self.store, fetcher, self.settings, clock=self.clock)
                return await pipeline.check(self.watch(watch.url))

        return asyncio.run(run())

    def assert_archive_matches_versions(self, watch: WatchRecord) -> None:
        assert archive_files(self.settings) == version_paths(self.store, watch.id)
        assert journals(self.settings) == []


def make_env(store: Store, db_url: str, home: Path, site: LocalServer) -> Env:
    settings = Settings.from_env(
        {}, home=home, database_url=db_url, retries=0, timeout=5.0, allow_hosts="127.0.0.1"
    )
    return Env(store, settings, site, Clock(now_ms()))


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.page(PATH, article(1))
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    return make_env(store, db_url, tmp_path / "home", site)


def test_a_failed_commit_takes_its_file_with_it(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    watch = env.add()

    def crash(*args: object, **kwargs: object) -> None:
        raise StoreError("database error: the connection went away")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "record_sightings", crash)
        failed = env.check(watch)
    assert failed.outcome is CheckOutcome.ERROR
    env.assert_archive_matches_versions(watch)  # no version, no file
    assert env.store.versions(watch.id) == []

    env.clock.advance(60)
    assert env.check(watch).outcome is CheckOutcome.NEW_VERSION
    env.assert_archive_matches_versions(watch)


def test_a_noise_only_version_writes_no_file_so_a_failed_commit_leaves_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version whose change is noise is in the database alone: no file, no
    journal entry, so there is nothing to recover whether its commit fails or not."""
    watch = env.add()
    assert env.check(watch).outcome is CheckOutcome.NEW_VERSION
    env.site.page(PATH, article(1).replace("视频会晤。", "视频会晤."))  # typography only
    env.clock.advance(60)

    def crash(*args: object, **kwargs: object) -> None:
        raise StoreError("database error: the connection went away")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "record_sightings", crash)
        assert env.check(watch).outcome is CheckOutcome.ERROR
    env.assert_archive_matches_versions(watch)
    env.clock.advance(60)
    noise = env.check(watch)

    assert noise.change is not None and noise.change.verdict.value == "noise"
    first, second = env.store.versions(watch.id)
    assert first.archive_path is not None and second.archive_path is None
    env.assert_archive_matches_versions(watch)  # one file: the first version's


def test_watcher_check_also_removes_what_a_killed_check_left(env: Env) -> None:
    watch = env.add()
    settings = env.settings
    orphan = archive.version_path(watch.url, env.clock() - 60_000)
    dead = archive.Journal(settings.archive_dir, settings.home / archive.PENDING_DIR)
    dead.intend(watch.id, orphan)
    archive.write_atomic(settings.archive_dir, orphan, "killed before its commit\n")
    dead.close()

    [result] = api.check_now(settings, env.store, [watch]).results

    assert result.outcome is CheckOutcome.NEW_VERSION
    assert not (settings.archive_dir / orphan).exists()
    env.assert_archive_matches_versions(watch)


@pytest.mark.parametrize(
    ("patched", "err", "reason"),
    [
        ("fsync", errno.ENOSPC, "disk full"),
        ("mkstemp", errno.EROFS, "read-only file system"),
        ("mkstemp", errno.EACCES, "permission denied"),
    ],
)
def test_a_full_or_read_only_archive_is_an_error_check_until_it_is_writable_again(
    env: Env, monkeypatch: pytest.MonkeyPatch, patched: str, err: int, reason: str
) -> None:
    watch = env.add()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    with monkeypatch.context() as patch:
        patch.setattr(os if patched == "fsync" else tempfile, patched, fail)
        failed = env.check(watch)
    assert failed.outcome is CheckOutcome.ERROR and failed.error is not None
    # the archive file, or the journal naming it first (same disk, same fault)
    assert failed.error.startswith(f"{reason}: cannot write {env.settings.home}/archive")
    assert "\n" not in failed.error
    [check] = env.store.recent_checks(watch.id)
    assert (check.outcome, check.error) == (CheckOutcome.ERROR, failed.error)
    after = env.watch(watch.url)
    assert (after.failure_count, after.claimed_by) == (1, None)
    assert env.store.versions(watch.id) == []
    env.assert_archive_matches_versions(watch)

    env.clock.now = after.next_check_at
    assert env.check(after).outcome is CheckOutcome.NEW_VERSION
    env.assert_archive_matches_versions(watch)


# -- a real tiny disk ----------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB tmpfs (needs root); unmounted at the end."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write until the disk is full; returns the file to delete to free it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


def test_a_real_full_then_read_only_disk_and_the_check_after_each(
    store: Store, db_url: str, tiny_disk: Path, site: LocalServer
) -> None:
    env = make_env(store, db_url, tiny_disk / "home", site)
    env.settings.home.mkdir()
    watch = env.add()
    filler = fill(tiny_disk)

    full = env.check(watch)
    assert full.outcome is CheckOutcome.ERROR and full.error is not None
    assert full.error.startswith(f"disk full: cannot write {env.settings.home}"), full.error
    assert env.store.versions(watch.id) == []
    filler.unlink()
    env.assert_archive_matches_versions(watch)

    env.clock.now = env.watch(watch.url).next_check_at
    assert env.check(watch).outcome is CheckOutcome.NEW_VERSION
    env.assert_archive_matches_versions(watch)

    site.page(PATH, edited(1))
    remount(tiny_disk, "ro")
    try:
        env.clock.now = env.watch(watch.url).next_check_at
        read_only = env.check(watch)
    finally:
        remount(tiny_disk, "rw")
    assert read_only.outcome is CheckOutcome.ERROR and read_only.error is not None
    assert read_only.error.startswith("read-only file system: cannot write"), read_only.error
    assert len(env.store.versions(watch.id)) == 1

    env.clock.now = env.watch(watch.url).next_check_at
    assert env.check(watch).outcome is CheckOutcome.NEW_VERSION
    assert len(env.store.versions(watch.id)) == 2
    env.assert_archive_matches_versions(watch)


# -- leases ------------------------------------------------------------------------------
class SlowPipeline:
    """Stands in for the pipeline: a check that runs until told to finish."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.finish = asyncio.Event()

    async def check(self, watch: WatchRecord) -> None:
        await self.finish.wait()
        self.store.release(
            watch.id, next_check_at=watch.next_check_at + 3_600_000, failure_count=0,
            unchanged_count=0, last_checked_at=watch.next_check_at,
        )  # fmt: skip

    def stop(self) -> None:
        pass

    def report_pending(self) -> int:
        return 0

    def flush_site(self) -> None:
        pass


def test_a_long_check_keeps_its_lease_by_renewal_and_no_one_can_take_it(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings.from_env({}, home=tmp_path, database_url="sqlite://")
    lease = lease_ms(settings)
    assert lease == 50_000  # default poll: four 5 s renewals plus 30 s, whatever the timeout
    [added] = api.add_watches(store, ["https://news.example.com/slow"], now=0)
    clock = Clock(10_000)
    slow = SlowPipeline(store)
    dispatcher = Dispatcher(store, slow, settings, "worker-a", clock=clock)  # type: ignore[arg-type]

    async def run() -> None:
        assert await dispatcher.dispatch_once() == 1
        for _ in range(10):  # 10 x 20 s: four times the lease it was claimed with
            clock.now += 20_000
            assert await dispatcher.renew_leases() == 1
            assert store.claim_due("worker-b", clock() + lease - 1, 10, lease) == []
        slow.finish.set()
        await asyncio.gather(*dispatcher.tasks)
        assert await dispatcher.renew_leases() == 0  # nothing in flight, nothing renewed

    asyncio.run(run())
    watch = store.get_watch(added.url)
    assert watch is not None and watch.claimed_by is None


def test_daemon_identity_is_stable_per_data_folder(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    identity = daemon_identity(one)
    assert identity == daemon_identity(one) and str(os.getpid()) not in identity.split(":")
    assert daemon_identity(other) != identity
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "daemon.id").write_bytes((one / "daemon.id").read_bytes())
    assert daemon_identity(copy) != identity  # a copied folder is a daemon of its own


def test_a_restart_takes_back_its_own_leases(store: Store, db_url: str, tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path, database_url=db_url)
    mine, theirs = (
        w.url for w in api.add_watches(store, ["https://a.example/1", "https://a.example/2"])
    )
    identity = daemon_identity(tmp_path)
    ids = {url: store.get_watch(url).id for url in (mine, theirs)}  # type: ignore[union-attr]
    assert store.claim(identity, [ids[mine]], now_ms(), 3_600_000)
    assert store.claim("another-daemon", [ids[theirs]], now_ms(), 3_600_000)

    take_back_leases(settings, store, identity)

    assert store.get_watch(mine).claimed_by is None  # type: ignore[union-attr]
    left = store.get_watch(theirs).claimed_by  # type: ignore[union-attr]
    # PostgreSQL: another daemon's lease is its own business. SQLite: a lone
    # daemon (it holds the folder lock) drops every lease.
    assert left == (None if settings.is_sqlite else "another-daemon")


# -- the real daemon, killed between its file and its commit ----------------------------
CRASH_SCRIPT = """
import os, sys
{patch}
from watcher.cli import main
main(["run"])
"""
#: Dies after the temporary file is written, before it is renamed into place.
BEFORE_RENAME = """
_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if os.path.basename(os.fspath(src)).startswith(".tmp-") and "/archive/" in os.fspath(dst):
        os._exit(9)
    return _replace(src, dst, *args, **kwargs)
os.replace = replace
"""
#: Dies inside the transaction that records the version (the file is written).
BEFORE_COMMIT = """
from watcher.store import Transaction
Transaction.add_version = lambda *args, **kwargs: os._exit(9)
"""


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; any left running are killed at the end."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill_if_running()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None: the daemon's default SQLite file in its data folder."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_fresh_url")
    upgrade(url)
    return url


def crash(daemon: Daemon, patch: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT.format(patch=patch)],
        env=daemon.env, capture_output=True, text=True, timeout=STARTUP_S, check=False,
    )  # fmt: skip
    assert done.returncode == 9, done.stderr


def test_a_daemon_killed_between_file_and_commit_leaves_nothing_after_a_restart(
    tmp_path: Path, site: LocalServer, database_url: str | None, daemons: list[Daemon]
) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({}, home=home, database_url=database_url)
    store = api.open_store(settings)
    try:
        [added] = api.add_watches(store, [site.url(PATH)])
        daemon = Daemon(home, database_url)

        crash(daemon, BEFORE_RENAME)
        [tmp] = archive_files(settings)
        assert Path(tmp).name.startswith(".tmp-")
        crash(daemon, BEFORE_COMMIT)  # its start removed the temporary file, took the lease

        [orphan] = archive_files(settings)
        assert orphan.endswith(".md") and not Path(orphan).name.startswith(".tmp-")
        watch = store.get_watch(added.url)
        assert watch is not None and store.versions(watch.id) == []
        assert watch.claimed_by == daemon_identity(home)  # the dead run's lease
        assert watch.claimed_until is not None

        daemons.append(daemon.start())
        wait_for("the version", lambda: bool(store.versions(watch.id)))
        [version] = store.versions(watch.id)
        assert version.captured_at < watch.claimed_until  # at once: no wait for the lease
        assert daemon.stop() == 0
        assert archive_files(settings) == version_paths(store, watch.id)
        assert journals(settings) == []
        [check] = store.recent_checks(watch.id)
        assert check.outcome is CheckOutcome.NEW_VERSION
    finally:
        store.close()
    assert "its check was killed before recording it" in daemon.output()
    assert "Traceback" not in daemon.output()


def test_a_daemon_keeps_running_through_a_full_disk_and_stores_once_there_is_room(
    tmp_path: Path, tiny_disk: Path, site: LocalServer, daemons: list[Daemon]
) -> None:
    home = tiny_disk / "home"
    url = f"sqlite:///{tmp_path / 'watcher.db'}"  # the database has room; the archive has not
    settings = Settings.from_env({}, home=home, database_url=url)
    store = api.open_store(settings)
    try:
        daemon = Daemon(home, url, WATCHER_MIN_INTERVAL="1s")  # retried within seconds
        daemons.append(daemon.start())
        filler = fill(tiny_disk)
        [added] = api.add_watches(store, [site.url(PATH)])
        watch = store.get_watch(added.url)
        assert watch is not None

        def errors() -> list[str]:
            return [c.error or "" for c in store.recent_checks(watch.id)]

        wait_for("a disk-full check", lambda: any(e.startswith("disk full: ") for e in errors()))
        assert daemon.proc is not None and daemon.proc.poll() is None
        filler.unlink()
        wait_for("the version", lambda: bool(store.versions(watch.id)))
        assert daemon.stop() == 0
        assert store.versions(watch.id)[0].archive_path in archive_files(settings)
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM versions")).scalar_one() == 1
        output = daemon.output()
    finally:
        store.close()
    assert "reason=disk full: cannot write" in output
    assert "Traceback" not in output


def test_stopping_during_a_claim_checks_what_it_claimed_and_leaves_no_lease(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The scheduler cancels running jobs when it shuts down; a claim already
    in its worker thread still lands, so the dispatcher must see it through."""
    settings = Settings.from_env({}, home=tmp_path, database_url="sqlite://", poll=0.05)
    [added] = api.add_watches(store, ["https://news.example.com/a"], now=0)
    pipeline = SlowPipeline(store)
    pipeline.finish.set()  # checks finish at once
    dispatcher = Dispatcher(store, pipeline, settings, "worker-a")  # type: ignore[arg-type]
    claiming, landed = threading.Event(), threading.Event()
    claim_due = store.claim_due

    def slow_claim(*args: Any) -> list[WatchRecord]:
        claiming.set()
        landed.wait(5)
        return claim_due(*args)

    store.claim_due = slow_claim  # type: ignore[method-assign]

    async def run() -> None:
        scheduler = build_scheduler(dispatcher, settings)
        scheduler.start()
        await asyncio.to_thread(claiming.wait, 5)
        scheduler.shutdown(wait=False)  # cancels the dispatch job mid-claim
        await asyncio.sleep(0)
        landed.set()
        await dispatcher.drain(5.0)

    asyncio.run(run())
    watch = store.get_watch(added.url)
    assert watch is not None and watch.claimed_by is None
    assert watch.last_checked_at is not None  # its check ran, within the grace period
    assert "raised an exception" not in caplog.text
