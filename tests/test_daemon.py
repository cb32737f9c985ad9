"""``watcher run`` as systemd runs it: a real process, real signals, a real
local site that answers slowly, and the real databases.

Nothing here sleeps for a fixed time: every wait polls for the state it needs
(a heartbeat file, a number of requests answered, check rows) with a deadline.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from tests.support.http_server import Handler, LocalServer, Request
from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.daemon import HEARTBEAT_NAME
from watcher.settings import Settings
from watcher.store import Store, current_revision, head_revision, upgrade

WATCHER = Path(sys.executable).with_name("watcher")
STARTUP_S = 30.0  # generous: a loaded CI machine takes seconds just to import
GRACE_S = 5.0
PENDING_OR_CLAIMED = (
    "SELECT count(*) FROM watches WHERE last_checked_at IS NULL OR claimed_by IS NOT NULL"
)


def article(i: int) -> str:
    return (
        f'<html lang="zh-CN"><head><meta charset="utf-8"><title>快讯 {i}</title></head>'
        f"<body><article><h1>快讯 {i}</h1>"
        f"<p>第 {i} 条：美国总统拜登与中国国家主席习近平于北京时间星期二开始视频会晤。</p>"
        "<p>双方正在就共同关切的领域展开对话，预计将持续数个小时。</p>"
        "</article></body></html>"
    )


def wait_for(what: str, condition: Callable[[], bool], timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class Daemon:
    """One ``watcher run`` process; its log goes to a file next to its data folder."""

    def __init__(
        self, home: Path, database_url: str | None = None, *, args: tuple[str, ...] = (), **env: str
    ) -> None:
        self.home = home
        self.args = args
        self.log = home.with_name(home.name + ".log")
        base = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
        self.env = {
            **base,
            "WATCHER_HOME": str(home),
            "WATCHER_POLL": "0.2s",
            "WATCHER_GRACE": f"{GRACE_S:g}s",
            "WATCHER_TIMEOUT": "10s",
            "WATCHER_RETRIES": "0",
            "WATCHER_ALLOW_HOSTS": "127.0.0.1",  # the test sites; refused by default
            **({"WATCHER_DATABASE_URL": database_url} if database_url else {}),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Daemon:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(WATCHER), "run", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            wait_for(f"{self.home} daemon to start", self.started)
        return self

    def started(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
        return (self.home / HEARTBEAT_NAME).exists()

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = GRACE_S + 5) -> int:
        """Send ``sig``; return the exit status (asserting it came in time)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon ignored {sig.name} for {timeout:g}s") from None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; any left running are killed at the end."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill_if_running()


def cli(home: Path, *args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {
        "WATCHER_HOME": None,
        "WATCHER_DATABASE_URL": database_url,
        "WATCHER_LOG_LEVEL": "WARNING",
    }
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(main, ["--home", str(home), *args], env=env)
    finally:
        root.handlers[:], root.level = handlers, level
    return result.exit_code, result.stdout, result.stderr


def add_articles(
    settings: Settings, site: LocalServer, count: int, interval_s: float | None = None
) -> list[str]:
    paths = [f"/news/{i}" for i in range(count)]
    for i, path in enumerate(paths):
        site.page(path, article(i))
    store = api.open_store(settings)
    try:
        api.add_watches(store, [site.url(p) for p in paths], interval_s=interval_s)
    finally:
        store.close()
    return paths


@pytest.fixture
def slow_site() -> Iterator[LocalServer]:
    with LocalServer(delay=0.2) as site:
        yield site


# -- crash safety --------------------------------------------------------------------
def test_sigkill_mid_pass_loses_nothing_and_a_restart_catches_up(
    tmp_path: Path, slow_site: LocalServer, daemons: list[Daemon]
) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({}, home=home)
    add_articles(settings, slow_site, 30)
    first = Daemon(home, WATCHER_MAX_CONNECTIONS="6", WATCHER_PER_HOST="6")
    daemons.append(first.start())

    wait_for("a third of the pass", lambda: len(slow_site.hits()) >= 10)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    assert_sqlite_intact(home / "watcher.db")
    stored = assert_versions_readable(settings, expect_between=(1, 29))
    assert_archive_readable(settings.archive_dir, stored)

    # A new daemon takes over the dead one's leases at once and finishes the pass.
    second = Daemon(home, WATCHER_MAX_CONNECTIONS="6", WATCHER_PER_HOST="6")
    daemons.append(second.start())
    store = Store.open(settings.database_url)
    try:
        wait_for(
            "every watch to be checked",
            lambda: all(w.last_checked_at is not None for w in store.list_watches()),
        )
        stopped_at = time.monotonic()
        assert second.stop() == 0
        assert time.monotonic() - stopped_at < GRACE_S
        for summary in store.list_watches():
            assert summary.version_count == 1, summary.url  # no duplicate after the crash
            assert store.recent_checks(summary.id), summary.url
            watch = store.get_watch_by_id(summary.id)
            assert watch is not None and watch.claimed_by is None
        # The restart removed what the kill left (a file written but never
        # recorded, a temporary file): the archive is exactly the versions.
        on_disk = {p.relative_to(settings.archive_dir).as_posix()
                   for p in settings.archive_dir.rglob("*") if p.is_file()}  # fmt: skip
        assert on_disk == assert_versions_readable(settings, expect_between=(30, 30))
    finally:
        store.close()
    assert "Traceback" not in second.output()
    assert "watcher daemon stopped" in second.output()
    assert not (home / HEARTBEAT_NAME).exists()


def assert_sqlite_intact(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


def assert_versions_readable(settings: Settings, expect_between: tuple[int, int]) -> set[str]:
    """Every version's text parses and equals its archive file; returns the archive paths."""
    store = Store.open(settings.database_url)
    try:
        versions = [v for s in store.list_watches() for v in store.versions(s.id)]
        low, high = expect_between
        assert low <= len(versions) <= high, f"{len(versions)} versions: the kill missed mid-pass"
        for version in versions:
            text = store.version_text(version.id)
            assert snapshot_mod.parse(text, source=str(version.id)).title.startswith("快讯")
            assert version.archive_path is not None
            on_disk = snapshot_mod.read(settings.archive_dir / version.archive_path)
            assert snapshot_mod.content_text(on_disk) == text
        return {v.archive_path for v in versions if v.archive_path}
    finally:
        store.close()


def assert_archive_readable(archive: Path, referenced: set[str]) -> None:
    """Every archive file parses. A kill between mkstemp and rename can leave a
    hidden ".tmp-*.md" file (archive.write_atomic's temporary file): no version
    names it and nothing reads it; it is the only leftover allowed."""
    for path in archive.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(archive).as_posix()
        if path.name.startswith(".tmp-"):
            assert relative not in referenced
            continue
        assert path.suffix == ".md"
        assert snapshot_mod.read(path).title.startswith("快讯")


def test_sigterm_finishes_quick_checks_and_abandons_stuck_ones_within_grace(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({}, home=home)
    with LocalServer() as site:
        add_articles(settings, site, 2)  # /news/0 answers in 1 s, /news/1 never in time
        site.delays = {"/news/0": 1.0, "/news/1": 60.0}
        daemon = Daemon(home, WATCHER_GRACE="2s")
        daemons.append(daemon.start())
        wait_for("both fetches in flight", lambda: len(site.arrived) == 2)

        stopped_at = time.monotonic()
        assert daemon.stop(timeout=10) == 0
        took = time.monotonic() - stopped_at

    assert 0.5 < took < 2 + 1.5, f"exit took {took:.1f}s with a 2s grace"
    assert "abandoned 1 in-flight checks" in daemon.output()
    store = Store.open(settings.database_url)
    try:
        quick, stuck = (store.get_watch(site.url(p)) for p in ("/news/0", "/news/1"))
        assert quick is not None and stuck is not None
        assert [c.outcome.value for c in store.recent_checks(quick.id)] == ["new_version"]
        assert store.recent_checks(stuck.id) == []  # rolled back, not half-recorded
        assert quick.claimed_by is None and stuck.claimed_by is None  # free for the next run
        assert stuck.next_check_at <= time.time() * 1000  # still due
    finally:
        store.close()


# -- one daemon per SQLite data folder; status ----------------------------------------
def test_one_daemon_per_sqlite_folder_and_status_tells_whether_it_runs(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    upgrade(Settings.from_env({}, home=home).database_url)
    first = Daemon(home)
    daemons.append(first.start())
    assert_status(home, f"running (pid {first.pid},")

    second = subprocess.run(
        [str(WATCHER), "run"],
        env=first.env,
        capture_output=True,
        text=True,
        timeout=STARTUP_S,
        check=False,
    )

    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(f"watcher: error: another watcher daemon (pid {first.pid})")
    assert str(home) in lines[0] and "WATCHER_DATABASE_URL" in lines[0]
    assert first.stop() == 0
    assert_status(home, "not running\n")


def assert_status(home: Path, daemon_line: str, database_url: str | None = None) -> None:
    code, out, _ = cli(home, "status", database_url=database_url)
    assert code == 0
    assert f"daemon:      {daemon_line}" in out


def test_run_on_a_new_data_folder_creates_its_database(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """The quick start's `watcher run`, first thing on a fresh machine."""
    home = tmp_path / "new-home"
    daemon = Daemon(home)
    daemons.append(daemon)
    daemon.start()
    assert daemon.stop() == 0
    assert current_revision(f"sqlite:///{home / 'watcher.db'}") == head_revision()


def test_run_refuses_a_database_without_the_schema(tmp_path: Path, db_url: str) -> None:
    code, out, err = cli(tmp_path / "home", "run", database_url=db_url)
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith("watcher: error: database schema is at none (empty database)")
    assert line.endswith("run `watcher db upgrade`")
    assert not (tmp_path / "home" / HEARTBEAT_NAME).exists()


# -- the web UI inside the daemon -----------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_with_http_serves_the_ui_and_api_beside_the_checks(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings.from_env({}, home=home)
    upgrade(settings.database_url)
    origin = f"http://127.0.0.1:{free_port()}"
    with LocalServer() as site:
        [path] = add_articles(settings, site, 1)
        daemon = Daemon(home, args=("--http", origin.removeprefix("http://")),
                        WATCHER_SERVE_TOKEN="s3cret")  # fmt: skip
        daemons.append(daemon.start())

        def versions() -> int:
            [watch] = httpx.get(origin + "/api/watches", timeout=5).json()["items"]
            return int(watch["versions"])

        wait_for("the first version, seen through the API", lambda: versions() == 1)
        found = httpx.get(origin + "/api/search", params={"q": "第 0 条"}, timeout=5).json()
        assert [(h["url"], h["seq"]) for h in found["items"]] == [(site.url(path), 1)]
        page = httpx.get(origin + "/", timeout=5)
        assert page.status_code == 200 and "快讯 0" in page.text
        # writes go through the daemon's own store, with the token
        [watch] = httpx.get(origin + "/api/watches", timeout=5).json()["items"]
        paused = httpx.post(f"{origin}/api/watches/{watch['id']}/pause", timeout=5,
                            headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert daemon.stop() == 0
    log = daemon.output()
    assert f"web UI and API at {origin}/ (writes allowed with the token)" in log
    assert "Traceback" not in log
    with pytest.raises(httpx.TransportError):  # the port was given back
        httpx.get(origin + "/", timeout=2)


def test_run_refuses_to_start_when_its_http_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        code, out, err = cli(tmp_path / "home", "run", "--http", bind)
    assert code == 2 and out == ""
    assert err.splitlines() == [f"watcher: error: cannot listen on {bind}: Address already in use"]
    assert not (tmp_path / "home" / HEARTBEAT_NAME).exists()
    code, _, err = cli(tmp_path / "home", "run", "--http", "localhost")
    assert code == 2
    assert err.splitlines() == [
        "watcher: error: --http 'localhost': use HOST:PORT, e.g. 127.0.0.1:8765"
    ]


# -- several daemons on one PostgreSQL database ---------------------------------------
@pytest.mark.postgres
def test_two_daemons_on_postgresql_never_fetch_the_same_watch_and_status_follows(
    tmp_path: Path, pg_fresh_url: str, daemons: list[Daemon]
) -> None:
    upgrade(pg_fresh_url)
    agents = ("daemon-a", "daemon-b")
    with LocalServer(delay=0.1) as site:
        settings = Settings.from_env({}, home=tmp_path / "setup", database_url=pg_fresh_url)
        paths = add_articles(settings, site, 40, interval_s=3600)  # pinned: one pass only
        hold_until_both_ask(site, paths, agents)
        pair = [
            Daemon(tmp_path / name, pg_fresh_url, WATCHER_USER_AGENT=name,
                   WATCHER_MAX_CONNECTIONS="8", WATCHER_PER_HOST="8")
            for name in agents
        ]  # fmt: skip
        for daemon in pair:
            daemons.append(daemon.start(wait=False))
        for daemon in pair:
            wait_for(f"{daemon.home.name} to start", daemon.started)

        store = Store.open(pg_fresh_url)
        try:

            def pass_done() -> bool:
                with store.engine.connect() as conn:
                    busy = conn.execute(text(PENDING_OR_CLAIMED)).scalar_one()
                return busy == 0

            wait_for("one full pass", pass_done)
            assert_status(pair[0].home, f"running (pid {pair[0].pid},", pg_fresh_url)
            versions = sum(s.version_count for s in store.list_watches())
        finally:
            store.close()
        hits = site.hits()

    assert versions == 40
    assert sorted(h.path for h in hits) == sorted(paths)  # each URL exactly once
    by_agent = {name: [h for h in hits if h.headers.get("User-Agent") == name]
                for name in agents}  # fmt: skip
    assert all(by_agent.values()), "both daemons should have taken part"
    a, b = by_agent["daemon-a"], by_agent["daemon-b"]
    overlap = min(max(h.finished for h in a), max(h.finished for h in b)) - max(
        min(h.started for h in a), min(h.started for h in b)
    )
    assert overlap > 0, "the two daemons should have fetched at the same time"
    assert [d.stop() for d in pair] == [0, 0]
    assert_status(pair[0].home, "not running\n", pg_fresh_url)


def hold_until_both_ask(site: LocalServer, paths: list[str], agents: tuple[str, ...]) -> None:
    """Answer nothing until every daemon has asked for something, so the daemons
    overlap however slowly each one starts (the first one's claimed fetches wait)."""
    seen: set[str] = set()
    everyone = threading.Event()
    lock = threading.Lock()

    def handler(body: bytes) -> Handler:
        def serve(req: Request) -> None:
            with lock:
                seen.add(req.headers.get("User-Agent", ""))
                if seen.issuperset(agents):
                    everyone.set()
            everyone.wait(timeout=STARTUP_S)
            req.respond(200, body)

        return serve

    for i, path in enumerate(paths):
        site.route(path, handler(article(i).encode("utf-8")))
