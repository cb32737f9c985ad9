"""Shared fixtures: the seed file, the real-article corpus (read in place), and
the databases (every database test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from watcher.store import Store, open_engine, upgrade

# Test servers run on 127.0.0.1, which watcher refuses by default: allow it
# for everything that reads the environment (the CLI, subprocesses). Settings
# built from an empty environment pass allow_hosts="127.0.0.1" themselves.
os.environ["WATCHER_ALLOW_HOSTS"] = "127.0.0.1"

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_f45fe6e83c05ee36.txt"
CORPUS = Path(os.environ.get("WATCHER_CORPUS", ROOT.parent / "shared" / "corpus"))
#: Pairs whose script label we judge wrong, with the reason (see the file).
DISPUTED_LABELS: dict[str, str] = {
    pid: why
    for pid, why in json.loads(
        (ROOT / "tests" / "golden" / "disputed_labels.json").read_text(encoding="utf-8")
    ).items()
    if not pid.startswith("_")
}


@pytest.fixture
def seed_path() -> Path:
    return SEED


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "snapshots").is_dir():
        pytest.skip(f"real-article corpus not found at {CORPUS}")
    return CORPUS


def corpus_files(pattern: str) -> list[Path]:
    """Corpus files for parametrising; empty when the corpus is absent."""
    return sorted(CORPUS.glob(pattern)) if CORPUS.is_dir() else []


# -- databases -------------------------------------------------------------------
# Every database test runs on SQLite and on PostgreSQL.
#
# SQLite uses a file in ``tmp_path``. PostgreSQL uses a database created for
# this test session (``watcher_test_<random>``, made through the admin URL and
# dropped at the end), with a fresh schema per test selected by ``search_path``,
# so tests neither see each other's rows nor collide with other users of the
# server. Set ``WATCHER_TEST_PG_URL`` to point at another server; when none is
# reachable the PostgreSQL variants skip with the reason.

PG_ADMIN_URL = os.environ.get(
    "WATCHER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class PostgresUnavailable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


@contextmanager
def pg_scratch_database(
    prefix: str = "watcher_test", admin_url: str = PG_ADMIN_URL
) -> Iterator[str | PostgresUnavailable]:
    """Create a throwaway PostgreSQL database through ``admin_url``'s server;
    yield its URL (or why there is none)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        where = make_url(admin_url).render_as_string(hide_password=True)
        yield PostgresUnavailable(f"PostgreSQL at {where} unavailable: {reason}")
        return
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | PostgresUnavailable]:
    """URL of a throwaway PostgreSQL database for this session, or why there is none."""
    with pg_scratch_database() as database:
        yield database


@pytest.fixture
def pg_url(pg_database: str | PostgresUnavailable) -> str:
    """The session's PostgreSQL database URL; skips the test when there is none."""
    if isinstance(pg_database, PostgresUnavailable):
        pytest.skip(pg_database.reason)
    return pg_database


@pytest.fixture
def pg_fresh_url() -> Iterator[str]:
    """A PostgreSQL database of its own for one test (several processes share it)."""
    with pg_scratch_database("watcher_t") as database:
        if isinstance(database, PostgresUnavailable):
            pytest.skip(database.reason)
        yield database


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database (no tables) of the parametrised kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/watcher.db"
        return
    database = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(database).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A Store on a freshly migrated database."""
    upgrade(db_url)
    engine = open_engine(db_url)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def dialect(db_url: str) -> str:
    return make_url(db_url).get_backend_name()


@pytest.fixture(autouse=True)
def _utc_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI shows times in the system's zone (TZ): tests expect UTC unless
    they set a zone themselves."""
    monkeypatch.delenv("TZ", raising=False)
    monkeypatch.delenv("WATCHER_TIMEZONE", raising=False)
