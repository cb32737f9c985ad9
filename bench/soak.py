"""Crash soak ("lose nothing"): SIGKILL the real daemon at random moments,
restart it, and check that nothing was lost, doubled or left behind.

A news site on 127.0.0.1 (bench/_pages.py's pages, in its own process)
serves N articles. The soak adds them with a pinned interval and runs
``watcher run`` as a subprocess (poll 0.2 s); the process it kills with
SIGKILL is the daemon itself, not a shell. Time is simulated the way the
benchmark does it: every *due window* the site moves on (its clock ticks
seven minutes, ad ids change, one page in ten gets an edited paragraph,
about one in 25 answers 404 for three windows and then comes back) and the
soak makes every watch due at once (``next_check_at = T``, what the clock
reaching the next check would do).

Due window
    Opens at T, when the soak makes every watch due, and closes when every
    watch has been checked since T (``last_checked_at >= T``) and no lease
    is held. The pinned interval (10 minutes) is longer than a window may
    last (``--window-timeout``), so nothing becomes due by itself inside a
    window: each watch is due exactly once per window. A check killed before
    its commit leaves no row (its transaction rolls back) and is redone by
    whoever claims the watch next. So each watch must have exactly one check
    row with ``checked_at >= T``: two mean the same due check was claimed
    twice (two daemons, or one daemon twice, holding the watch at once);
    none, with the watch released, means a check that was lost. Check rows
    do not name their worker; the site's request log (User-Agent per
    daemon) says which daemons fetched a page, for the report.

Each kill: open a window, wait for a random point of the pass (after k of
the N checks, k random, plus up to 50 ms), SIGKILL the daemon (on
PostgreSQL: one of the two, at random), audit the database at once, restart
it (one time in five it is killed again during its start-up, which counts as
a kill too), wait for the window to close, audit everything. Among the kills
come ``--stops`` clean stops: SIGTERM at a random point of a pass, after
which the daemon must have exited 0 holding no lease. At the end every
daemon gets SIGTERM in the middle of one more pass, and ``watcher export``
rebuilds the archive from the database, which must match the files (and
each noise-only version, which has no file, its stored text).

Audits
    integrity   SQLite ``PRAGMA integrity_check`` / ``foreign_key_check``;
                an archive file whose content is not its version's; an
                exported file that differs from the archive's; a daemon
                that exits by itself
    duplicates  two versions with one seq, or consecutive versions with the
                same content (unless a removal lies between them: a
                reappearance); two changes with the same old and new
                version; two removals in a row with no reappearance; two
                check rows for one watch in one due window
    lost        a seq gap; a version (seq > 1) without the change that led
                to it; a change whose versions are not consecutive; a
                version people read (the first, or one a significant change
                led to) without its archive file (a noise-only version has
                none: archive.has_file); a watch released in a window
                without a check row
    orphans     an archive file no version names (``.tmp-*`` files a kill
                left between write and rename included); files under
                ``archive/.orphans/`` (start-up reconciliation's) are not
    stuck       a watch not checked again within ``--recheck`` seconds of a
                restart; a watch still leased by a daemon after its clean
                stop

Run: .venv/bin/python bench/soak.py [--kills 50] [--pages 200] [--db sqlite|postgresql]
     (PostgreSQL: two daemons, two data folders, one database; 15 kills by
     default; the server is WATCHER_TEST_PG_URL or postgres@127.0.0.1:5432/test)
Exit status 0 when every count is zero.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from bench._pages import _HTTP, Site, _mix, _page_index, load_articles  # noqa: E402
from watcher import api, archive  # noqa: E402
from watcher import snapshot as snapshot_mod  # noqa: E402
from watcher.daemon import read_heartbeat  # noqa: E402
from watcher.errors import WatcherError  # noqa: E402
from watcher.settings import Settings  # noqa: E402
from watcher.store import Store, now_ms, open_engine, upgrade  # noqa: E402

WATCHER = Path(sys.executable).with_name("watcher")
CORPUS = Path(os.environ.get("WATCHER_CORPUS", ROOT.parent / "shared" / "corpus"))
MINUTE_MS = 60_000
PINNED_S = 600  # longer than any window may last: see "Due window" above
GONE_SHARE = 25  # about one page in 25 answers 404 ...
GONE_WINDOWS = 3  # ... for three windows, then comes back
ORPHANS_DIR = ".orphans"  # where start-up reconciliation may put files no version names
TMP_PREFIX = ".tmp-"  # archive.write_atomic's temporary files
CHECKED = "('active', 'failing', 'gone')"  # store.CHECKED_STATES, the states a daemon checks
STARTUP_S = 60.0  # a loaded machine takes seconds just to import


# -- the site -------------------------------------------------------------------------
@dataclass
class SoakSite(Site):
    """bench/_pages.py's site, moved on once per due window, with pages that
    go away and come back, and a log of who fetched what in this window."""

    gone: frozenset[int] = frozenset()
    fetches: Counter[tuple[int, str]] = field(default_factory=Counter)

    def advance(self, window: int) -> dict[str, object]:
        """Window ``window`` (1, 2, ...): the clock 7 minutes on, new ad ids,
        one page in ten edited, about one in 25 gone."""
        self.fetches.clear()
        self.gone = frozenset(
            i for i in range(self.n) if _mix(i, 1000 + window // GONE_WINDOWS) % GONE_SHARE == 0
        )
        now = str(self.start_ms + window * 7 * MINUTE_MS)
        self.control({"now": [now], "tick": [str(window)], "edit": ["1"]})  # rebuilds every page
        return {"window": window, "gone": len(self.gone)}

    def fetch_log(self) -> dict[str, object]:
        agents: dict[int, set[str]] = {}
        for (page, agent), _ in self.fetches.items():
            agents.setdefault(page, set()).add(agent)
        return {
            "fetches": sum(self.fetches.values()),
            "by_several": sorted(page for page, who in agents.items() if len(who) > 1),
        }


class _SoakHTTP(_HTTP):
    site: SoakSite

    def respond(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        path = urlsplit(parts[1] if len(parts) > 1 else "/")
        agent = next(
            (
                ln.partition(":")[2].strip()
                for ln in lines[1:]
                if ln.lower().startswith("user-agent:")
            ),
            "",
        )
        close = any(ln.lower().replace(" ", "") == "connection:close" for ln in lines[1:])
        if path.path == "/_soak":
            query = parse_qs(path.query)
            answer = (
                self.site.advance(int(query["window"][0]))
                if "window" in query
                else self.site.fetch_log()
            )
            self.send(200, json.dumps(answer).encode(), "application/json", (), close)
            return
        index = _page_index(path.path, self.site.n)
        if index is not None:
            self.site.fetches[(index, agent)] += 1
            if index in self.site.gone:
                self.send(404, b"<h1>404 Not Found</h1>", "text/html; charset=utf-8", (), close)
                return
        super().respond(head)


def _serve(corpus: str, n: int, conn: Connection) -> None:
    """Child process: build the site, send back its base URL, serve forever."""

    async def main() -> None:
        site = SoakSite(load_articles(Path(corpus)), n)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _SoakHTTP(site), "127.0.0.1", 0, backlog=512)
        site.base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        site.rebuild()
        conn.send(site.base)
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def running_site(corpus: Path, n: int) -> Iterator[str]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(str(corpus), n, child), daemon=True)
    process.start()
    try:
        if not parent.poll(STARTUP_S):
            raise RuntimeError("the soak site did not start")
        yield parent.recv()
    finally:
        process.terminate()
        process.join(10)


def site_call(base: str, query: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/_soak?{query}", timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


# -- the daemons ----------------------------------------------------------------------
class Daemon:
    """One ``watcher run`` process on its own data folder; logs to ``<home>.log``."""

    def __init__(self, name: str, home: Path, database_url: str | None) -> None:
        self.name = name
        self.home = home
        self.log = home.with_name(home.name + ".log")
        base = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
        self.env = {
            **base,
            "WATCHER_HOME": str(home),
            "WATCHER_POLL": "0.2s",
            "WATCHER_GRACE": "3s",
            "WATCHER_TIMEOUT": "10s",
            "WATCHER_RETRIES": "0",
            "WATCHER_MAX_CONNECTIONS": "8",
            "WATCHER_PER_HOST": "8",
            "WATCHER_USER_AGENT": f"soak-{name}",
            "WATCHER_ALLOW_HOSTS": "127.0.0.1",  # the SSRF guard lets the local site through
            **({"WATCHER_DATABASE_URL": database_url} if database_url else {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker: str | None = None  # from the heartbeat, once started
        self.spawned = 0.0
        self.startup_s: float | None = None  # Popen to heartbeat, last time

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(WATCHER), "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.spawned = time.monotonic()

    def started(self) -> bool:
        """Its heartbeat names this process (a killed one's heartbeat stays behind)."""
        beat = read_heartbeat(self.home) or {}
        if self.proc is None or beat.get("pid") != self.proc.pid:
            return False
        self.worker = str(beat.get("worker"))
        self.startup_s = time.monotonic() - self.spawned
        return True

    def exit_status(self) -> int | None:
        """Its exit status if it has exited by itself (a killed or stopped one
        has no process until it is started again)."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM; the exit status, or None if it did not exit in time (then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logged(self, *needles: str) -> int:
        """Lines of its log that contain any of ``needles``."""
        if not self.log.exists():
            return 0
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return sum(1 for line in lines if any(n in line for n in needles))


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# -- problems -------------------------------------------------------------------------
INTEGRITY, DUPLICATE, LOST, ORPHAN, STUCK = "integrity", "duplicates", "lost", "orphans", "stuck"
CATEGORIES = (INTEGRITY, DUPLICATE, LOST, ORPHAN, STUCK)


@dataclass
class Problems:
    """Every problem seen, by category, each once however many audits see it."""

    seen: dict[str, dict[tuple[object, ...], str]] = field(
        default_factory=lambda: {c: {} for c in CATEGORIES}
    )

    def add(self, category: str, key: tuple[object, ...], detail: str) -> bool:
        if key in self.seen[category]:
            return False
        self.seen[category][key] = detail
        return True

    def count(self, category: str) -> int:
        return len(self.seen[category])

    def snapshot(self) -> dict[str, int]:
        return {c: self.count(c) for c in CATEGORIES}


# -- audits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionRow:
    id: int
    watch_id: int
    seq: int
    sha: str
    archive_path: str | None
    verdict: str | None  # of the change into it; None for a first version
    captured_at: int
    url: str

    @property
    def has_file(self) -> bool:
        """Whether the daemon must have written an archive file for it."""
        return archive.has_file(self.verdict)


@dataclass(frozen=True)
class ChangeRow:
    id: int
    watch_id: int
    old: int
    new: int | None


class Auditor:
    """Reads the database and the archive folders; reports into ``problems``."""

    def __init__(self, engine: Engine, homes: list[Path], problems: Problems) -> None:
        self.engine = engine
        self.homes = homes
        self.problems = problems
        self.sqlite = engine.dialect.name == "sqlite"
        self.verified_version = 0  # versions up to this id had their files compared

    @contextmanager
    def snapshot_read(self) -> Iterator[Any]:
        """One consistent view for several SELECTs (a live daemon may be writing)."""
        options = {} if self.sqlite else {"isolation_level": "REPEATABLE READ"}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn

    # -- database -------------------------------------------------------------
    def integrity(self, where: str) -> None:
        if not self.sqlite:
            return  # the server's business; foreign keys are enforced there
        with self.engine.connect() as conn:
            result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            if result != ["ok"]:
                self.problems.add(INTEGRITY, ("integrity_check", where), f"{where}: {result[:3]}")
            for row in conn.exec_driver_sql("PRAGMA foreign_key_check"):
                self.problems.add(INTEGRITY, ("foreign_key_check", *row), f"{where}: {tuple(row)}")

    def rows(self) -> tuple[list[VersionRow], list[ChangeRow]]:
        with self.snapshot_read() as conn:
            versions = [
                VersionRow(*r)
                for r in conn.execute(
                    text(
                        # max(): 'significant' sorts after 'noise' and 'none', so
                        # two changes into one version (a fault of its own) still
                        # ask for the file if either was news
                        "SELECT v.id, v.watch_id, v.seq, v.content_sha256, v.archive_path, "
                        "(SELECT max(c.verdict) FROM changes c WHERE c.new_version_id = v.id), "
                        "v.captured_at, w.url FROM versions v JOIN watches w ON w.id = v.watch_id "
                        "ORDER BY v.watch_id, v.seq, v.id"
                    )
                )
            ]
            changes = [
                ChangeRow(*r)
                for r in conn.execute(
                    text(
                        "SELECT id, watch_id, old_version_id, new_version_id FROM changes "
                        "ORDER BY watch_id, id"
                    )
                )
            ]
        return versions, changes

    def structure(self) -> list[VersionRow]:
        """Duplicate and missing versions and changes; returns the versions."""
        versions, changes = self.rows()
        by_watch: dict[int, list[VersionRow]] = {}
        for v in versions:
            by_watch.setdefault(v.watch_id, []).append(v)
        changes_by_watch: dict[int, list[ChangeRow]] = {}
        for c in changes:
            changes_by_watch.setdefault(c.watch_id, []).append(c)
        for watch_id in by_watch.keys() | changes_by_watch.keys():
            self._watch_structure(
                watch_id, by_watch.get(watch_id, []), changes_by_watch.get(watch_id, [])
            )
        return versions

    def _watch_structure(
        self, watch_id: int, versions: list[VersionRow], changes: list[ChangeRow]
    ) -> None:
        add = self.problems.add
        gone_after = {c.old for c in changes if c.new is None}
        previous: VersionRow | None = None
        for expected, v in enumerate(versions, start=1):
            if previous is not None and v.seq == previous.seq:
                add(DUPLICATE, ("seq twice", v.id), f"watch {watch_id}: seq {v.seq} twice")
            elif v.seq != expected:
                add(LOST, ("seq gap", watch_id, expected), f"watch {watch_id}: no seq {expected}")
            if previous is not None and v.sha == previous.sha and previous.id not in gone_after:
                add(
                    DUPLICATE,
                    ("same content", v.id),
                    f"watch {watch_id}: seq {v.seq} repeats seq {previous.seq}'s content",
                )
            previous = v
        position = {v.id: k for k, v in enumerate(versions)}
        into: Counter[int] = Counter(c.new for c in changes if c.new is not None)
        pairs: Counter[tuple[int, int | None]] = Counter((c.old, c.new) for c in changes)
        for (old, new), n in pairs.items():
            if new is not None and n > 1:
                add(
                    DUPLICATE,
                    ("change twice", old, new),
                    f"watch {watch_id}: {n} changes {old}->{new}",
                )
        for k, v in enumerate(versions[1:], start=1):
            if into[v.id] == 0:
                add(LOST, ("no change into", v.id), f"watch {watch_id}: no change into seq {v.seq}")
            elif into[v.id] > 1 and not pairs.get((versions[k - 1].id, v.id), 0) > 1:
                add(
                    DUPLICATE,
                    ("changes into", v.id),
                    f"watch {watch_id}: {into[v.id]} changes into seq {v.seq}",
                )
        for c in changes:
            if c.new is not None and position.get(c.new, -1) - position.get(c.old, -9) != 1:
                add(
                    LOST,
                    ("change not consecutive", c.id),
                    f"watch {watch_id}: change {c.id} {c.old}->{c.new}",
                )
        for a, b in itertools.pairwise(changes):
            if a.new is None and b.new is None:
                add(
                    DUPLICATE,
                    ("gone twice", b.id),
                    f"watch {watch_id}: removals {a.id} and {b.id} in a row",
                )

    # -- archive --------------------------------------------------------------
    def archive_files(self) -> dict[str, list[Path]]:
        """Relative path -> the archive folders holding it (``.orphans`` left out)."""
        found: dict[str, list[Path]] = {}
        for home in self.homes:
            root = home / "archive"
            if not root.is_dir():
                continue
            for path in root.rglob("*"):
                relative = path.relative_to(root)
                if relative.parts[0] == ORPHANS_DIR or path.is_dir():
                    continue
                found.setdefault(relative.as_posix(), []).append(root)
        return found

    def archive(self, versions: list[VersionRow]) -> None:
        files = self.archive_files()
        named = {v.archive_path for v in versions if v.archive_path}
        for relative, roots in files.items():
            where = ", ".join(r.parent.name for r in roots)
            if relative not in named:
                kind = "temp file" if Path(relative).name.startswith(TMP_PREFIX) else "file"
                self.problems.add(
                    ORPHAN, ("file", relative), f"{kind} {relative} in {where}: no version"
                )
            elif len(roots) > 1:
                self.problems.add(DUPLICATE, ("file twice", relative), f"{relative} in {where}")
        fresh = [v for v in versions if v.id > self.verified_version]
        texts = self.texts([v.id for v in fresh if v.archive_path or v.has_file])
        for v in fresh:
            if not v.archive_path and not v.has_file:
                continue  # noise only: in the database alone (compare_export reads it)
            if not v.archive_path or v.archive_path not in files:
                self.problems.add(LOST, ("file", v.archive_path or f"version {v.id}"),
                                  f"version {v.id} (watch {v.watch_id} seq {v.seq}): no file {v.archive_path}")  # fmt: skip
                continue
            path = files[v.archive_path][0] / v.archive_path
            if file_content(path) != texts.get(v.id):
                self.problems.add(INTEGRITY, ("file differs", v.archive_path),
                                  f"{path}: not version {v.id}'s content")  # fmt: skip
        for v in versions:  # files of checked versions may not disappear later either
            if v.id <= self.verified_version and v.archive_path and v.archive_path not in files:
                self.problems.add(LOST, ("file", v.archive_path or f"version {v.id}"),
                                  f"version {v.id}: file {v.archive_path} disappeared")  # fmt: skip
        self.verified_version = max((v.id for v in versions), default=self.verified_version)

    def texts(self, ids: list[int]) -> dict[int, str]:
        """The versions' content texts, decoded by the store (contents are
        compressed, most of them deltas); a version it cannot read is absent."""
        store = Store(self.engine)
        out: dict[int, str] = {}
        for version_id in ids:
            try:
                out[version_id] = store.version_text(version_id)
            except WatcherError as exc:
                self.problems.add(INTEGRITY, ("content", version_id),
                                  f"version {version_id}: {exc}")  # fmt: skip
        return out

    def unfiled(self, versions: list[VersionRow]) -> dict[str, int]:
        """Where ``watcher export`` puts each version without an archive file
        (relative path -> version id)."""
        by_watch: dict[int, list[VersionRow]] = {}
        for v in versions:
            by_watch.setdefault(v.watch_id, []).append(v)
        out: dict[str, int] = {}
        for rows in by_watch.values():
            paths = archive.export_paths(
                rows[0].url, [(v.captured_at, v.archive_path) for v in rows]
            )
            out.update(
                {p.as_posix(): v.id for v, p in zip(rows, paths, strict=True) if not v.archive_path}
            )
        return out

    # -- windows and leases ---------------------------------------------------
    def make_due(self, at: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE watches SET next_check_at = :t WHERE state IN {CHECKED}"), {"t": at}
            )

    def unfinished(self, since: int) -> list[int]:
        """Watches not checked since ``since``, or leased: the window is open."""
        with self.engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    text(
                        f"SELECT id FROM watches WHERE state IN {CHECKED} AND "
                        "(last_checked_at IS NULL OR last_checked_at < :t OR claimed_by IS NOT NULL)"
                    ),
                    {"t": since},
                )
            ]

    def checked_since(self, since: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        f"SELECT count(*) FROM watches WHERE state IN {CHECKED} AND last_checked_at >= :t"
                    ),
                    {"t": since},
                ).scalar_one()
            )

    def leases(self, worker: str | None = None) -> tuple[int, int | None]:
        """How many watches are leased (to ``worker``), and the latest lease end."""
        where = "claimed_by IS NOT NULL" + (" AND claimed_by = :w" if worker else "")
        with self.engine.connect() as conn:
            n, until = conn.execute(
                text(f"SELECT count(*), max(claimed_until) FROM watches WHERE {where}"),
                {"w": worker},
            ).one()
        return int(n), until

    def checks_in_window(self, window: int, since: int) -> int:
        """Each watch checked since ``since`` must have exactly one check row
        from then on; returns how many check rows there were."""
        with self.snapshot_read() as conn:
            counts = dict(
                conn.execute(
                    text(
                        "SELECT watch_id, count(*) FROM checks WHERE checked_at >= :t GROUP BY watch_id"
                    ),
                    {"t": since},
                ).all()
            )
            released = [
                r[0]
                for r in conn.execute(
                    text(
                        f"SELECT id FROM watches WHERE state IN {CHECKED} AND last_checked_at >= :t"
                    ),
                    {"t": since},
                )
            ]
        for watch_id, n in counts.items():
            if n > 1:
                self.problems.add(DUPLICATE, ("checked twice", window, watch_id),
                                  f"window {window}: watch {watch_id} has {n} check rows")  # fmt: skip
        for watch_id in released:
            if not counts.get(watch_id):
                self.problems.add(LOST, ("no check row", window, watch_id),
                                  f"window {window}: watch {watch_id} released without a check row")  # fmt: skip
        return sum(counts.values())


def file_content(path: Path) -> str | None:
    """An archive file's content as the database stores it; None if unreadable."""
    try:
        return snapshot_mod.content_text(snapshot_mod.read(path))
    except WatcherError:
        return None


# -- the soak -------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    kills: int
    pages: int
    db: str  # "sqlite" or "postgresql"
    work: Path  # data folders and logs go here
    database_url: str | None = None  # PostgreSQL: an empty database the daemons share
    seed: int = 1
    startup_share: float = 0.2  # of restarts killed again while starting
    stops: int = 0  # clean stops (SIGTERM mid-pass) among the kills
    recheck_s: float | None = None  # a restart must close the window within this
    # (default: 20 s + the first start-up + three first passes)
    window_timeout_s: float = 150.0  # give up on the soak if a window stays open this long
    max_s: float = 3600.0  # stop killing after this long, whatever --kills says
    corpus: Path = CORPUS
    out: TextIO | None = None  # default: sys.stdout at the time of the run


@dataclass
class Row:
    """One kill, and what the audits after it found."""

    kill: int
    window: int
    daemon: str
    moment: str  # "pass": while checking; "start-up": while starting again
    at_s: float  # after the window opened, or after the daemon was started
    done: int  # watches checked in the window before the kill
    leased: int  # leases the killed daemon held: checks in flight
    back_s: float | None = None  # restart to the window closing
    versions: int | None = None
    fetches: int = 0
    both: int = 0  # pages fetched by two daemons in the window
    checks: int = 0


@dataclass
class Totals:
    kills: int
    problems: Problems
    rows: list[Row] = field(default_factory=list)
    evidence: dict[str, int] = field(default_factory=dict)
    aborted: str | None = None

    def counts(self) -> dict[str, int]:
        return self.problems.snapshot()

    @property
    def ok(self) -> bool:
        return self.aborted is None and not any(self.counts().values())

    def line(self) -> str:
        c = self.counts()
        return (
            f"kills: {self.kills}, integrity failures: {c[INTEGRITY]}, "
            f"duplicates: {c[DUPLICATE]}, lost: {c[LOST]}, orphans: {c[ORPHAN]}, "
            f"stuck leases: {c[STUCK]}"
        )


HEADER = (
    f"{'kill':>4} {'win':>4} {'daemon':>6} {'moment':>8} {'at s':>6} {'done':>5} {'leased':>6} "
    f"{'back s':>6} {'versions':>8} {'fetches':>7} {'both':>4} {'checks':>6} "
    f"{'integ':>5} {'dups':>4} {'lost':>4} {'orph':>4} {'stuck':>5}"
)
#: What the daemons' logs show the kills exercised (see daemon.recover_archive).
EVIDENCE = {
    "archive files removed at restart (killed between write and commit)": (
        "its check was killed before recording it",
    ),
    "restarts that removed temporary files of killed writes": ("temporary files of interrupted",),
    "restarts that took back leases": ("took back",),
    "tracebacks": ("Traceback",),
}


class Soak:
    def __init__(self, options: Options, site: str, database_url: str) -> None:
        self.o = options
        self.site = site
        self.rng = random.Random(options.seed)
        self.problems = Problems()
        names = ("a", "b") if options.db == "postgresql" else ("a",)
        shared = database_url if options.db == "postgresql" else None
        self.daemons = [Daemon(n, options.work / n, shared) for n in names]
        self.engine = open_engine(database_url)
        self.audit = Auditor(self.engine, [d.home for d in self.daemons], self.problems)
        self.kills = 0
        self.stops = 0
        self.crashes = 0
        self.window = 0
        self.window_start = 0
        self.pass_s = 1.0
        self.recheck_s = options.recheck_s or 0.0
        self.started = time.monotonic()
        self.aborted: str | None = None
        self.rows: list[Row] = []

    def say(self, line: str) -> None:
        print(line, file=self.o.out or sys.stdout, flush=True)

    # -- windows --------------------------------------------------------------
    def open_window(self) -> None:
        self.window += 1
        site_call(self.site, f"window={self.window}")
        self.window_start = now_ms()
        self.audit.make_due(self.window_start)

    def window_closed(self) -> bool:
        self.revive()
        return not self.audit.unfinished(self.window_start)

    def revive(self) -> None:
        """A daemon that exited by itself is an integrity failure; it is restarted."""
        for d in self.daemons:
            code = d.exit_status()
            if code is not None:
                self.crashes += 1
                self.problems.add(INTEGRITY, ("exited", self.crashes),
                                  f"daemon {d.name} exited by itself with status {code} "
                                  f"in window {self.window} (see {d.log})")  # fmt: skip
                d.start()

    def recover(self, row: Row, restarted_at: float) -> None:
        """Wait for the window to close; watches still open after ``recheck_s`` are stuck."""
        if wait_until(self.window_closed, self.recheck_s):
            row.back_s = time.monotonic() - restarted_at
            return
        for watch_id in self.audit.unfinished(self.window_start):
            self.problems.add(STUCK, ("not rechecked", self.window, watch_id),
                              f"window {self.window}: watch {watch_id} not checked or still "
                              f"leased {self.recheck_s:g}s after the restart")  # fmt: skip
        left = self.o.window_timeout_s - (time.monotonic() - restarted_at)
        if wait_until(self.window_closed, max(0.0, left)):
            row.back_s = time.monotonic() - restarted_at
        else:
            open_ = len(self.audit.unfinished(self.window_start))
            self.aborted = (
                f"window {self.window} still open {self.o.window_timeout_s:g}s after the "
                f"restart ({open_} watches unchecked or leased)"
            )

    # -- kills and audits -----------------------------------------------------
    def kill(self, daemon: Daemon, moment: str, since: float) -> Row:
        self.revive()  # an exit of its own is not a kill
        daemon.kill()
        self.kills += 1
        at_s = time.monotonic() - since
        leased = self.audit.leases(daemon.worker)[0] if daemon.worker else 0
        done = self.audit.checked_since(self.window_start)
        row = Row(self.kills, self.window, daemon.name, moment, at_s, done, leased)
        # the database as the kill left it, before a restart touches anything
        self.audit.integrity(f"after kill {self.kills}")
        self.audit.structure()
        return row

    def full_audit(self, row: Row) -> None:
        self.audit.integrity(f"window {self.window}")
        versions = self.audit.structure()
        self.audit.archive(versions)
        row.checks = self.audit.checks_in_window(self.window, self.window_start)
        log = site_call(self.site, "log=1")
        row.fetches, row.both = int(log["fetches"]), len(log["by_several"])
        row.versions = len(versions)

    def print_row(self, row: Row, before: dict[str, int]) -> None:
        self.rows.append(row)
        after = self.problems.snapshot()
        new = [after[c] - before[c] for c in CATEGORIES]
        back = "-" if row.back_s is None else f"{row.back_s:.1f}"
        audited = row.versions is not None
        seen = (
            (str(row.versions), str(row.fetches), str(row.both), str(row.checks))
            if audited
            else ("-",) * 4
        )
        self.say(
            f"{row.kill:>4} {row.window:>4} {row.daemon:>6} {row.moment:>8} {row.at_s:6.2f} "
            f"{row.done:>5} {row.leased:>6} {back:>6} {seen[0]:>8} {seen[1]:>7} {seen[2]:>4} {seen[3]:>6} "
            f"{new[0]:>5} {new[1]:>4} {new[2]:>4} {new[3]:>4} {new[4]:>5}"
        )

    # -- the run --------------------------------------------------------------
    def warm_up(self) -> None:
        """Window 0: every watch due since it was added; the site as it started."""
        self.window_start = now_ms()
        for d in self.daemons:
            d.start()
        for d in self.daemons:
            if not wait_until(d.started, STARTUP_S):
                raise RuntimeError(f"daemon {d.name} did not start; see {d.log}")
        t0 = time.monotonic()  # a pass, without the start-up: what a kill should land in
        if not wait_until(self.window_closed, self.o.window_timeout_s):
            raise RuntimeError(f"the first pass did not finish in {self.o.window_timeout_s:g}s")
        self.pass_s = max(0.3, time.monotonic() - t0)
        startup = max(d.startup_s or 0 for d in self.daemons)
        self.recheck_s = self.o.recheck_s or round(20 + startup + 3 * self.pass_s)
        row = Row(0, 0, "-", "-", 0.0, self.o.pages, 0, self.pass_s)
        before = self.problems.snapshot()
        self.full_audit(row)
        self.say(
            f"first pass: {self.pass_s:.1f} s, after a start-up of {startup:.1f} s; "
            f"a restart must close its window within {self.recheck_s:g} s\n"
        )
        self.say(HEADER)
        self.print_row(row, before)

    def one_kill(self) -> None:
        """Open a window, kill a daemon mid-pass, restart it (perhaps killing it
        again while it starts), wait for the window to close, audit."""
        before = self.problems.snapshot()
        self.open_window()
        opened = time.monotonic()
        self.random_point_of_the_pass()
        victim = self.rng.choice(self.daemons)
        row = self.kill(victim, "pass", opened)
        victim.start()
        if self.kills < self.o.kills and self.rng.random() < self.o.startup_share:
            # anywhere from importing to recovering the archive, taking back
            # leases and the first claims
            time.sleep(self.rng.uniform(0.3, 1.3) * (victim.startup_s or 1.0))
            self.print_row(row, before)
            before = self.problems.snapshot()
            row = self.kill(victim, "start-up", victim.spawned)
            victim.start()
        restarted = victim.spawned
        wait_until(victim.started, STARTUP_S)
        self.recover(row, restarted)
        if self.aborted is None:
            self.full_audit(row)
        self.print_row(row, before)

    def random_point_of_the_pass(self) -> None:
        """Return after k of the window's N checks (k random, N: after the
        pass), plus up to 50 ms, so a signal lands anywhere in a check."""
        target = self.rng.randint(0, self.o.pages)
        wait_until(lambda: self.audit.checked_since(self.window_start) >= target,
                   self.pass_s * 5 + 10, step=0.01)  # fmt: skip
        time.sleep(self.rng.uniform(0, 0.05))

    def one_stop(self) -> None:
        """Open a window, SIGTERM a daemon mid-pass (a clean stop), restart it,
        wait for the window to close, audit."""
        before = self.problems.snapshot()
        self.open_window()
        opened = time.monotonic()
        self.random_point_of_the_pass()
        daemon = self.rng.choice(self.daemons)
        row = self.clean_stop(daemon, opened)
        daemon.start()
        wait_until(daemon.started, STARTUP_S)
        self.recover(row, daemon.spawned)
        if self.aborted is None:
            self.full_audit(row)
        self.print_row(row, before)

    def clean_stop(self, daemon: Daemon, since: float) -> Row:
        """SIGTERM: exit 0 within the grace, and not one lease left behind."""
        self.revive()
        self.stops += 1
        at_s = time.monotonic() - since
        leased = self.audit.leases(daemon.worker)[0] if daemon.worker else 0
        code = daemon.stop()
        if code != 0:
            self.problems.add(INTEGRITY, ("stop", self.stops),
                              f"daemon {daemon.name}: SIGTERM ended it with {code} (see {daemon.log})")  # fmt: skip
        done = self.audit.checked_since(self.window_start)
        with self.engine.connect() as conn:
            left = conn.execute(
                text("SELECT id, claimed_until FROM watches WHERE claimed_by = :w"),
                {"w": daemon.worker},
            ).all()
        for watch_id, until in left:
            self.problems.add(STUCK, ("leased after stop", self.stops, watch_id),
                              f"watch {watch_id} still leased to daemon {daemon.name} after its "
                              f"clean stop (window {self.window}), for "
                              f"{(until - now_ms()) / 1000:.0f} s more")  # fmt: skip
        return Row(self.kills, self.window, daemon.name, "SIGTERM", at_s, done, leased)

    def finish(self) -> None:
        """SIGTERM every daemon in the middle of one more pass; then the export
        must match the archive."""
        before = self.problems.snapshot()
        opened = time.monotonic()
        self.open_window()
        self.random_point_of_the_pass()
        rows = [self.clean_stop(d, opened) for d in self.daemons]
        row = rows[0]
        row.daemon, row.leased = "all", sum(r.leased for r in rows)
        row.done = self.audit.checked_since(self.window_start)
        self.audit.integrity("after the clean stop")
        versions = self.audit.structure()
        self.audit.archive(versions)
        row.checks = self.audit.checks_in_window(self.window, self.window_start)
        row.versions = len(versions)
        log = site_call(self.site, "log=1")
        row.fetches, row.both = int(log["fetches"]), len(log["by_several"])
        self.print_row(row, before)
        self.compare_export()

    def compare_export(self) -> None:
        target = self.o.work / "export"
        shutil.rmtree(target, ignore_errors=True)
        env = {**self.daemons[0].env, "WATCHER_LOG_LEVEL": "WARNING"}
        done = subprocess.run(
            [str(WATCHER), "export", str(target)], env=env, capture_output=True, text=True,
            timeout=1800, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            self.problems.add(
                INTEGRITY, ("export",), f"watcher export failed: {done.stderr.strip()}"
            )
            return
        files = self.audit.archive_files()
        exported = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        # the versions without a file (noise only): rebuilt from the database alone
        versions, _ = self.audit.rows()
        unfiled = self.audit.unfiled(versions)
        texts = self.audit.texts(list(unfiled.values()))
        for relative in sorted(exported):
            if relative in unfiled:
                if file_content(target / relative) != texts.get(unfiled[relative]):
                    self.problems.add(INTEGRITY, ("export differs", relative),
                                      f"exported {relative} is not version {unfiled[relative]}'s content")  # fmt: skip
            elif relative not in files:
                self.problems.add(
                    LOST, ("file", relative), f"exported {relative}: not in any archive"
                )
            elif (files[relative][0] / relative).read_bytes() != (target / relative).read_bytes():
                self.problems.add(INTEGRITY, ("export differs", relative),
                                  f"exported {relative} differs from the archive's")  # fmt: skip
        for relative in (files.keys() | unfiled.keys()) - exported:
            self.problems.add(ORPHAN if relative in files else LOST, ("file", relative),
                              f"{relative}: not exported")  # fmt: skip
        self.say(
            f"\nwatcher export: {len(exported)} files; the archive folders: {len(files)};"
            f" noise-only versions (no archive file): {len(unfiled)}"
        )

    def run(self) -> Totals:
        try:
            self.warm_up()
            events = ["kill"] * self.o.kills + ["stop"] * self.o.stops
            self.rng.shuffle(events)
            for event in events:
                if self.aborted is not None:
                    break
                if time.monotonic() - self.started > self.o.max_s:
                    self.aborted = f"stopped after {self.o.max_s:g}s with {self.kills} kills"
                    break
                if event == "stop":
                    self.one_stop()
                elif self.kills < self.o.kills:  # start-up kills count too
                    self.one_kill()
            self.finish()
        finally:
            for d in self.daemons:
                d.kill_if_running()
            self.engine.dispose()
        evidence = {
            what: sum(d.logged(*needles) for d in self.daemons)
            for what, needles in EVIDENCE.items()
        }
        return Totals(self.kills, self.problems, self.rows, evidence, self.aborted)


def prepare(options: Options, site: str) -> str:
    """The database, migrated, with one watch per page; returns its URL."""
    home = options.work / "a"
    home.mkdir(parents=True, exist_ok=True)
    url = options.database_url if options.db == "postgresql" else None
    settings = Settings.from_env({}, home=home, database_url=url)
    upgrade(settings.database_url)
    store: Store = api.open_store(settings)
    try:
        added = api.add_watches(
            store, [f"{site}/news/{i:05d}" for i in range(options.pages)], interval_s=PINNED_S
        )
    finally:
        store.close()
    if errors := [a for a in added if a.error]:
        raise WatcherError(f"cannot watch {errors[0].url}: {errors[0].error}")
    return settings.database_url


def soak(options: Options) -> Totals:
    """Run the soak; prints the table as it goes and returns the totals."""
    if options.db == "postgresql" and not options.database_url:
        raise ValueError("the PostgreSQL soak needs a database_url")
    out = options.out or sys.stdout
    options.work.mkdir(parents=True, exist_ok=True)
    with running_site(options.corpus, options.pages) as site:
        url = prepare(options, site)
        daemons = (
            "two daemons sharing one PostgreSQL database"
            if options.db == "postgresql"
            else "one daemon on SQLite"
        )
        print(
            f"soak: {options.pages} pages on {site}, {daemons}, {options.kills} kills, "
            f"seed {options.seed}; work folder {options.work}",
            file=out, flush=True,
        )  # fmt: skip
        totals = Soak(options, site, url).run()
    report(totals, out)
    return totals


def report(totals: Totals, out: TextIO) -> None:
    print(file=out)
    for category in CATEGORIES:
        found = totals.problems.seen[category]
        print(f"{category:<11} {len(found)}", file=out)
        for detail in list(found.values())[:8]:
            print(f"    {detail}", file=out)
        if len(found) > 8:
            print(f"    ... and {len(found) - 8} more", file=out)
    for what, n in totals.evidence.items():
        print(f"{what}: {n}", file=out)
    if totals.aborted:
        print(f"ABORTED: {totals.aborted}", file=out)
    print(totals.line(), file=out, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, help="SIGKILLs (default 50; 15 on PostgreSQL)")
    parser.add_argument("--pages", type=int, default=200, help="pages watched (default 200)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--recheck", type=float,
                        help="seconds a restart may take to check every due watch "
                             "(default: 20 + start-up + 3 passes)")  # fmt: skip
    parser.add_argument("--window-timeout", type=float, default=150.0,
                        help="give up when a window stays open this long (default 150 s)")  # fmt: skip
    parser.add_argument("--stops", type=int,
                        help="clean SIGTERM stops mid-pass among the kills (default kills / 5)")  # fmt: skip
    parser.add_argument("--max-minutes", type=float, default=60.0, help="time limit (default 60)")
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    args = parser.parse_args()
    if not (CORPUS / "snapshots").is_dir():
        sys.exit(f"corpus not found at {CORPUS}; set WATCHER_CORPUS")
    kills = args.kills if args.kills is not None else (15 if args.db == "postgresql" else 50)
    work = Path(tempfile.mkdtemp(prefix="watcher-soak-"))
    try:
        with database(args.db) as url:
            options = Options(
                kills=kills, pages=args.pages, db=args.db, work=work, database_url=url,
                seed=args.seed, recheck_s=args.recheck, window_timeout_s=args.window_timeout,
                max_s=args.max_minutes * 60,
                stops=args.stops if args.stops is not None else kills // 5,
            )  # fmt: skip
            totals = soak(options)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if totals.ok else 1)


@contextmanager
def database(kind: str) -> Iterator[str | None]:
    """SQLite: none (the daemon's data folder has it); PostgreSQL: a scratch database."""
    if kind != "postgresql":
        yield None
        return
    # only here: the tests' scratch-database helper imports pytest
    from tests.conftest import PostgresUnavailable, pg_scratch_database  # noqa: PLC0415

    with pg_scratch_database("watcher_soak") as url:
        if isinstance(url, PostgresUnavailable):
            sys.exit(url.reason)
        yield url


if __name__ == "__main__":
    main()
