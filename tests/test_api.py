"""The watch list as a user manages it: ``watcher add / list / remove`` (and the
API behind them), on SQLite and on PostgreSQL, plus history and export of
versions checked from a real local server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from tests.http_server import LocalServer
from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.demo import Newsroom
from watcher.settings import Settings

SEED = snapshot_mod.read(Path(__file__).resolve().parents[1] / "seeds" / "000_f45fe6e83c05ee36.txt")
URL = "https://www.bbc.com/zhongwen/simp/world-59301487"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging on the runner's stream; undo that afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class Cli:
    """``watcher --home HOME ...`` with the database of the parametrised kind."""

    def __init__(self, home: Path, db_url: str) -> None:
        self.home = home
        sqlite = make_url(db_url).get_backend_name() == "sqlite"
        # SQLite: the default database in the data folder; PostgreSQL: the env var.
        self.env = {
            "WATCHER_DATABASE_URL": None if sqlite else db_url,
            "WATCHER_HOME": None,
            "WATCHER_LOG_LEVEL": "WARNING",  # keep stderr to what the user must read
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--home", str(self.home), *args], env=self.env)

    def settings(self) -> Settings:
        env = {k: v for k, v in self.env.items() if v is not None}
        return Settings.from_env(env, home=self.home)


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    return Cli(tmp_path / "home", db_url)


def listed(cli: Cli) -> list[dict[str, object]]:
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_add_list_remove(cli: Cli) -> None:
    added = cli("add", URL, "--interval", "10m", "--tag", "bbc")
    assert added.exit_code == 0, added.output
    assert added.stdout == f"added: {URL}\n"

    [row] = listed(cli)
    assert (row["url"], row["interval_s"], row["tags"], row["state"]) == (
        URL,
        600,
        ["bbc"],
        "active",
    )
    table = cli("list")
    assert URL in table.stdout and "10m" in table.stdout

    removed = cli("remove", URL)
    assert (removed.exit_code, removed.stdout) == (0, f"removed: {URL}\n")
    assert listed(cli) == []
    assert cli("list").stdout == "no watches yet: watcher add URL\n"


def test_the_database_is_where_the_settings_say(cli: Cli, db_url: str) -> None:
    cli("add", URL)
    store = api.open_store(cli.settings())
    try:
        assert [w.url for w in store.list_watches()] == [URL]
    finally:
        store.close()
    sqlite_file = cli.home / "watcher.db"
    assert sqlite_file.exists() == db_url.startswith("sqlite")


def test_adding_twice_is_already_watched(cli: Cli) -> None:
    cli("add", URL)
    again = cli("add", URL)
    assert (again.exit_code, again.stdout) == (0, f"already watched: {URL}\n")
    # The same address written differently (scheme/host case, a fragment) is the same watch.
    variant = cli("add", "HTTPS://WWW.BBC.COM/zhongwen/simp/world-59301487#comments")
    assert (variant.exit_code, variant.stdout) == (0, f"already watched: {URL}\n")
    assert len(listed(cli)) == 1


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("ftp://example.com/news/1", "only http and https URLs can be watched"),
        ("not a url", "not a URL: expected http://host/... or https://host/..."),
    ],
)
def test_adding_an_invalid_url_says_why_and_exits_1(cli: Cli, bad: str, reason: str) -> None:
    result = cli("add", bad, URL)
    assert result.exit_code == 1
    assert result.stderr == f"skipped: {bad!r}: {reason}\n"
    assert result.stdout == f"added: {URL}\n"  # the good one is still added
    assert [row["url"] for row in listed(cli)] == [URL]


def test_add_from_file_skips_comments(cli: Cli, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# my list\n\n{URL}\nhttps://example.com/news/2\n", encoding="utf-8")
    result = cli("add", "--from-file", str(urls))
    assert result.exit_code == 0, result.output
    assert [row["url"] for row in listed(cli)] == [URL, "https://example.com/news/2"]


def test_removing_an_unwatched_url_is_one_line_and_exit_2(cli: Cli) -> None:
    result = cli("remove", URL)
    assert result.exit_code == 2
    assert result.stderr == f"watcher: error: {URL} is not watched (see `watcher list`)\n"


def test_a_too_short_interval_is_refused(cli: Cli) -> None:
    result = cli("add", URL, "--interval", "30s")
    assert result.exit_code == 2
    assert "at least 1m" in result.stderr
    assert listed(cli) == []


def test_check_history_diff_and_export_from_a_local_site(cli: Cli, tmp_path: Path) -> None:
    room = Newsroom(title=SEED.title, main=SEED.body)
    with LocalServer() as site:
        site.route("/a", lambda req: req.respond(200, room.page().encode("utf-8")))
        url = site.url("/a")
        cli("add", url)
        first = cli("check", url)
        assert (first.exit_code, first.stdout) == (0, f"{url}: new version\n")
        room.edit("本次会晤由拜登总统发起", "本次会晤由美方发起")
        second = cli("check", "--all")
        assert second.exit_code == 0
        assert second.stdout.startswith(f"{url}: new version — 1 paragraph edited")

    history = cli("history", url, "--json")
    assert [(r["version"], r["verdict"]) for r in json.loads(history.stdout)] == [
        (1, "first"),
        (2, "significant"),
    ]
    diff = cli("diff", url)
    assert diff.exit_code == 1 and "美方" in diff.stdout  # diff(1): 1 = changed

    exported = cli("export", str(tmp_path / "copy"))
    assert exported.stdout == f"wrote 2 versions to {tmp_path / 'copy'}\n"
    files = sorted((tmp_path / "copy").rglob("*.md"))
    assert [snapshot_mod.read(f).title for f in files] == [SEED.title, SEED.title]
