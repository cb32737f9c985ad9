"""``watcher show URL [--version N | --at TIME]``: a watched article as it was,
from versions the real pipeline stored (a real server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer
from tests.support.newsroom import ARTICLE_PATH, LEAD, SEED, Newsroom
from watcher.store import Store

NEW_LEAD = "预计将持续约三个小时。"


@pytest.fixture
def room() -> Newsroom:
    return Newsroom.seed()


@pytest.fixture
def site(room: Newsroom) -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.route(ARTICLE_PATH, room.respond)
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> PipelineEnv:
    return make_env(PipelineEnv, store, db_url, tmp_path / "home", site)


@pytest.fixture
def url(env: PipelineEnv, room: Newsroom) -> str:
    """Two versions: the first, then the lead edited an hour later."""
    url = env.add(ARTICLE_PATH)
    env.check(url)
    env.clock.advance(minutes=60)
    room.edit(LEAD, NEW_LEAD)
    env.check(url)
    return url


def show(env: PipelineEnv, *args: str) -> Result:
    return env.cli("show", *args)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_show_url_prints_the_latest_version(env: PipelineEnv, url: str) -> None:
    result = show(env, url)
    assert result.exit_code == 0, result.output
    first_line = result.output.splitlines()[0]
    when = datetime.fromtimestamp(env.versions(url)[1].captured_at / 1000, UTC)
    assert first_line == f"version 2 of 2 (captured {when:%Y-%m-%d %H:%M:%S} UTC) of {url}"
    assert NEW_LEAD in result.output
    assert LEAD not in result.output


def test_show_url_version_n_prints_the_old_text(env: PipelineEnv, url: str) -> None:
    result = show(env, url, "--version", "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("version 1 of 2")
    assert LEAD in result.output
    assert NEW_LEAD not in result.output


def test_show_url_at_a_time_picks_the_version_current_then(env: PipelineEnv, url: str) -> None:
    first, second = env.versions(url)
    between = iso(first.captured_at + 30 * 60_000)
    result = show(env, url, "--at", between, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["version"] == {
        "url": url,
        "seq": 1,
        "of": 2,
        "captured_at": first.captured_at,
        "time_basis": "captured",
    }
    assert LEAD in json.dumps(payload["article"], ensure_ascii=False)
    after = show(env, url, "--at", iso(second.captured_at))
    assert after.output.startswith("version 2 of 2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "3"], "has versions 1 to 2, not 3"),
        (["--at", "2001-01-01"], "has no version from before 2001-01-01T00:00:00+00:00"),
        (["--at", "yesterday"], "--at 'yesterday' is not a time like 2026-01-31T08:00"),
        (["--version", "1", "--at", "2030-01-01"], "give --version or --at, not both"),
    ],
)
def test_show_url_refuses_what_it_cannot_show_in_one_line(
    env: PipelineEnv, url: str, args: list[str], message: str
) -> None:
    result = show(env, url, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_show_an_unwatched_url_says_so_not_a_mangled_path(env: PipelineEnv) -> None:
    result = show(env, "http://example.org/news/1")
    assert result.exit_code == 2
    assert "http:/example" not in result.output
    assert "not watched" in result.output or "no watch" in result.output


def test_show_file_refuses_version_options(env: PipelineEnv) -> None:
    result = show(env, str(SEED), "--version", "1")
    assert result.exit_code == 2
    assert "--version and --at need a watched URL, not a file" in result.output
