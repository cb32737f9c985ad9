"""``watcher verify``: the hash chain, the archive files and the WARC records of
versions the real pipeline stored, then tampered with one way at a time."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer
from tests.support.newsroom import ARTICLE_PATH, LEAD, SEED, Newsroom
from watcher import evidence, snapshot, warc
from watcher.cli import main
from watcher.store import Store

ARTICLE = snapshot.read(SEED)
OTHER_PATH = "/news/other"


@pytest.fixture
def room() -> Newsroom:
    return Newsroom.seed()


@pytest.fixture
def site(room: Newsroom) -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.route(ARTICLE_PATH, room.respond)
        server.route(OTHER_PATH, Newsroom(title="另一篇", main=ARTICLE.body).respond)
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> PipelineEnv:
    return make_env(PipelineEnv, store, db_url, tmp_path / "home", site)


@pytest.fixture
def url(env: PipelineEnv, room: Newsroom) -> str:
    """An article with three versions: the first, an edit, then a paragraph more."""
    url = env.add(ARTICLE_PATH)
    env.check(url)
    env.clock.advance(minutes=30)
    room.edit(LEAD, "预计将持续约三个小时。")
    env.check(url)
    env.clock.advance(minutes=30)
    room.edit("预计将持续约三个小时。", "预计将持续约三个小时。<p>白宫随后发表声明。</p>")
    env.check(url)
    assert [v.seq for v in env.versions(url)] == [1, 2, 3]
    return url


def verify(env: PipelineEnv, *urls: str) -> Result:
    return env.cli("verify", *urls)


def test_an_untouched_record_verifies(env: PipelineEnv, url: str) -> None:
    other = env.add(OTHER_PATH)
    env.check(other)
    result = verify(env)
    assert result.exit_code == 0, result.output
    assert (
        "2 articles, 4 versions: 4 chained; 4 WARC records looked up; no problems" in result.output
    )
    # the chain links each version to the one before, from the genesis entry
    versions = env.versions(url)
    assert versions[0].evidence.prev_hash == evidence.GENESIS
    for before, after in itertools.pairwise(versions):
        assert after.evidence.prev_hash == before.evidence.chain_hash


def test_the_snapshot_hash_is_that_of_the_exported_file(
    env: PipelineEnv, url: str, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(
        main,
        ["export", str(out)],
        env={
            "WATCHER_HOME": str(env.settings.home),
            "WATCHER_DATABASE_URL": env.settings.database_url,
        },
    )
    assert result.exit_code == 0, result.output
    exported = sorted(out.rglob("*.md"))
    assert len(exported) == 3
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in exported}
    assert hashes == {v.evidence.snapshot_sha256 for v in env.versions(url)}


def test_one_byte_edited_in_an_archive_file_is_reported(env: PipelineEnv, url: str) -> None:
    second = env.versions(url)[1]
    assert second.archive_path is not None
    path = env.settings.archive_dir / second.archive_path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify(env, url)
    assert result.exit_code == 1
    assert f"{url} v2: archive file altered: {second.archive_path}" in result.output
    assert "; 1 problem" in result.output


def test_a_deleted_warc_file_is_reported(env: PipelineEnv, url: str) -> None:
    files = warc.warc_files(env.settings.warc_dir)
    assert len(files) == 3  # one per check: each ran in its own process here
    first = env.versions(url)[0]
    (env.settings.warc_dir / str(first.evidence.warc_file)).unlink()
    result = verify(env, url)
    assert result.exit_code == 1
    assert f"{url} v1: WARC file missing: {first.evidence.warc_file}" in result.output


def test_an_altered_warc_record_is_reported(env: PipelineEnv, url: str) -> None:
    third = env.versions(url)[2]
    path = env.settings.warc_dir / str(third.evidence.warc_file)
    data = bytearray(path.read_bytes())
    data[int(third.evidence.warc_offset or 0) + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    result = verify(env, url)
    assert result.exit_code == 1
    assert f"{url} v3: WARC record altered or moved" in result.output


def test_two_reordered_rows_break_the_chain(env: PipelineEnv, url: str, store: Store) -> None:
    watch_id = env.watch(url).id
    with store.engine.begin() as conn:
        for old, new in ((1, -1), (2, 1), (-1, 2)):
            conn.execute(
                text("UPDATE versions SET seq = :new WHERE watch_id = :w AND seq = :old"),
                {"new": new, "old": old, "w": watch_id},
            )
    result = verify(env, url)
    assert result.exit_code == 1
    out = result.output
    assert f"{url} v1: chain broken" in out
    assert f"{url} v2: chain broken" in out
    assert f"{url} v3: chain broken" in out
    assert "chain entry does not match its fields" in out


def test_a_removed_version_breaks_the_chain(env: PipelineEnv, url: str, store: Store) -> None:
    watch_id = env.watch(url).id
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM changes WHERE watch_id = :w"), {"w": watch_id})
        conn.execute(text("DELETE FROM versions WHERE watch_id = :w AND seq = 2"), {"w": watch_id})
    result = verify(env, url)
    assert result.exit_code == 1
    assert f"{url} v3: chain broken" in result.output


def test_content_altered_in_the_database_is_reported(
    env: PipelineEnv, url: str, store: Store
) -> None:
    first = env.versions(url)[0]
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE versions SET captured_at = captured_at + 1000 WHERE id = :id"),
            {"id": first.id},
        )
    result = verify(env, url)
    assert result.exit_code == 1
    assert f"{url} v1: stored content differs from its recorded hash" in result.output
