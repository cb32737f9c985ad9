"""The crash soak, short: the real ``watcher run`` killed with SIGKILL at
random moments of a pass over a local news site, restarted, and audited
(bench/soak.py; ``.venv/bin/python bench/soak.py --kills 50`` is the long run).

The kill moments come from a fixed seed but land wherever the daemon is; the
assertions hold for every moment, so the tests are not flaky unless watcher
is. The audit itself is checked on a database with every fault it looks for.
"""

from __future__ import annotations

import io
import signal
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench import soak
from watcher import api, snapshot
from watcher.daemon import HEARTBEAT_NAME
from watcher.models import Snapshot
from watcher.settings import Settings
from watcher.store import open_engine, upgrade


def run_soak(tmp_path: Path, corpus: Path, **options: object) -> soak.Totals:
    out = io.StringIO()
    settings = {
        "work": tmp_path,
        "corpus": corpus,
        "seed": 7,
        "window_timeout_s": 45.0,
        "max_s": 120.0,
        "out": out,
        **options,
    }
    totals = soak.soak(soak.Options(**settings))  # type: ignore[arg-type]
    print(out.getvalue())  # the table, shown by pytest when an assertion fails
    return totals


def assert_nothing_lost(totals: soak.Totals, kills: int) -> None:
    assert totals.aborted is None, totals.aborted
    assert totals.kills == kills
    problems = {c: list(found.values()) for c, found in totals.problems.seen.items() if found}
    assert problems == {}, totals.line()
    kills_in_flight = [row for row in totals.rows if row.moment == "pass" and row.leased]
    assert kills_in_flight, "no kill hit a check in flight"


def test_sigkill_soak_on_sqlite_loses_nothing(tmp_path: Path, corpus: Path) -> None:
    totals = run_soak(tmp_path, corpus, kills=5, stops=1, pages=20, db="sqlite")

    assert_nothing_lost(totals, 5)


@pytest.mark.postgres
def test_sigkill_soak_with_two_daemons_on_postgresql_checks_each_due_watch_once(
    tmp_path: Path, corpus: Path, pg_fresh_url: str
) -> None:
    totals = run_soak(
        tmp_path, corpus, kills=3, pages=20, db="postgresql", database_url=pg_fresh_url
    )

    assert_nothing_lost(totals, 3)


# -- the audit sees what it looks for ---------------------------------------------------
PAGE = snapshot.render(Snapshot("http://127.0.0.1/news/1", "快讯", "<p>x</p>", captured_at=1))
FAULTS = """
INSERT INTO watches (id, url, site, state, tags, created_at, next_check_at, last_checked_at,
                     failure_count, unchanged_count)
VALUES (1, 'http://127.0.0.1/news/1', '127.0.0.1', 'active', '[]', 0, 0, 2000, 0, 0),
       (2, 'http://127.0.0.1/news/2', '127.0.0.1', 'gone', '[]', 0, 0, 2000, 0, 0),
       (3, 'http://127.0.0.1/news/3', '127.0.0.1', 'active', '[]', 0, 0, 2000, 0, 0);
INSERT INTO contents (sha256, text, size) VALUES ('x', 'x', 1), ('y', 'y', 1);
INSERT INTO versions (id, watch_id, seq, captured_at, content_sha256, archive_path,
                      page_metadata, created_at)
VALUES (1, 1, 1, 1, 'x', 'a/1.md', '{}', 1),
       (2, 1, 2, 2, 'x', 'a/2.md', '{}', 2),   -- same content as seq 1, no removal between
       (3, 1, 4, 3, 'y', 'a/3.md', '{}', 3),   -- seq 3 is missing
       (4, 2, 1, 1, 'x', 'b/1.md', '{}', 1),
       (5, 2, 2, 2, 'x', 'b/2.md', '{}', 2),   -- a reappearance: allowed
       (6, 3, 1, 1, 'x', 'c/1.md', '{}', 1),
       (7, 3, 2, 2, 'y', NULL, '{}', 2),       -- noise only: no file, allowed
       (8, 3, 3, 3, 'x', NULL, '{}', 3);       -- news without its file
INSERT INTO changes (id, watch_id, old_version_id, new_version_id, created_at, verdict, kinds,
                     summary, record)
VALUES (1, 1, 1, 2, 0, 'significant', '[]', '', '{}'),
       (2, 1, 1, 2, 0, 'significant', '[]', '', '{}'),  -- the same change twice
       (3, 2, 4, NULL, 0, 'significant', '[]', '', '{}'),
       (4, 2, 4, 5, 0, 'significant', '[]', '', '{}'),
       (5, 2, 5, NULL, 0, 'significant', '[]', '', '{}'),
       (6, 2, 5, NULL, 0, 'significant', '[]', '', '{}'),  -- removed twice in a row
       (7, 3, 6, 7, 0, 'noise', '[]', '', '{}'),
       (8, 3, 7, 8, 0, 'significant', '[]', '', '{}');
INSERT INTO checks (watch_id, checked_at, outcome, redirects)
VALUES (1, 1500, 'new_version', '[]'), (1, 1600, 'unchanged', '[]'),  -- checked twice
       (2, 1500, 'gone', '[]');                                       -- watch 3: no row
"""


def test_the_audit_finds_every_fault_it_looks_for(tmp_path: Path) -> None:
    archive = tmp_path / "a" / "archive"
    for name in ("a/1.md", "a/3.md", "b/1.md", "b/2.md", "c/1.md", "a/stray.md", "a/.tmp-2-x.md"):
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_text(PAGE, encoding="utf-8")
    (archive / ".orphans").mkdir()
    (archive / ".orphans" / "kept-aside.md").write_text(PAGE, encoding="utf-8")
    url = f"sqlite:///{tmp_path}/watcher.db"
    upgrade(url)
    db = sqlite3.connect(tmp_path / "watcher.db")
    try:
        db.executescript(FAULTS)
        page = snapshot.content_text(snapshot.read(archive / "a/1.md"))
        db.execute("UPDATE contents SET text = ? WHERE sha256 = 'x'", (page,))
        db.commit()
    finally:
        db.close()
    problems = soak.Problems()
    engine = open_engine(url)
    try:
        audit = soak.Auditor(engine, [tmp_path / "a"], problems)
        audit.integrity("test")
        audit.archive(audit.structure())
        audit.checks_in_window(1, since=1000)
    finally:
        engine.dispose()

    found = {c: sorted(map(str, keys)) for c, keys in problems.seen.items()}
    expected: dict[str, list[tuple[object, ...]]] = {
        "integrity": [("file differs", "a/3.md")],  # version 3's content is "y"
        "duplicates": [
            ("same content", 2),
            ("change twice", 1, 2),
            ("gone twice", 6),
            ("checked twice", 1, 1),
        ],
        "lost": [
            ("seq gap", 1, 3),
            ("no change into", 3),
            ("file", "a/2.md"),
            ("file", "version 8"),
            ("no check row", 1, 3),
        ],
        "orphans": [("file", "a/stray.md"), ("file", "a/.tmp-2-x.md")],
        "stuck": [],
    }
    assert found == {c: sorted(map(str, keys)) for c, keys in expected.items()}


# -- what the soak found, pinned down ----------------------------------------------------
# Found with the soak's clean stops: a SIGTERM during a claim left the claim's
# watches leased to a daemon that had exited 0 (scheduler.shutdown cancelled the
# job awaiting the claim's thread; the claim committed unseen). Fixed in
# scheduler.py (shielded jobs, drain() waits for the claim, drops what is left).
CLAIM_WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE '%SKIP LOCKED%'"
)


@pytest.mark.postgres
def test_a_sigterm_while_a_claim_runs_leaves_no_lease(tmp_path: Path, pg_fresh_url: str) -> None:
    """The daemon's claim runs in a thread. Here it is held on a table lock
    when SIGTERM comes, so the stop always lands inside it (in the soak it
    does sometimes): the claim commits after the stop, and its watches must
    not stay leased to a daemon that is gone."""
    upgrade(pg_fresh_url)
    settings = Settings.from_env({}, home=tmp_path / "setup", database_url=pg_fresh_url)
    store = api.open_store(settings)
    try:  # nothing due yet; port 9 (discard) refuses, should a check ever run
        api.add_watches(store, [f"http://127.0.0.1:9/news/{i}" for i in range(5)], interval_s=600)
    finally:
        store.close()
    engine = open_engine(pg_fresh_url)
    daemon = soak.Daemon("a", tmp_path / "a", pg_fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE watches SET next_check_at = 9000000000000"))
        daemon.start()
        assert soak.wait_until(daemon.started, soak.STARTUP_S), daemon.log.read_text()
        with engine.connect() as holder:
            holder.execute(text("LOCK TABLE watches IN EXCLUSIVE MODE"))  # reads pass, claims wait
            holder.execute(text("UPDATE watches SET next_check_at = 0"))
            assert soak.wait_until(lambda: scalar(engine, CLAIM_WAITING) > 0, 30), (
                "the daemon's claim never waited for the lock"
            )
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGTERM)
            # until its shutdown is done with everything but the claim (the buggy
            # daemon); one that waits for the claim gets it after 5 s
            soak.wait_until(lambda: not (daemon.home / HEARTBEAT_NAME).exists(), 5)
            holder.commit()
        assert daemon.proc.wait(timeout=30) == 0
        leased = scalar(engine, "SELECT count(*) FROM watches WHERE claimed_by IS NOT NULL")
    finally:
        daemon.kill_if_running()
        engine.dispose()
    assert leased == 0, f"{leased} watches leased after a clean stop:\n{daemon.log.read_text()}"


def scalar(engine: Engine, query: str) -> int:
    with engine.connect() as conn:  # a new transaction: pg_stat_activity is read afresh
        return int(conn.execute(text(query)).scalar_one())
