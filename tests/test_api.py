"""The watch list as a user manages it: ``watcher add / list / remove`` (and the
API behind them), on SQLite and on PostgreSQL, plus history and export of
versions checked from a real local server."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event
from sqlalchemy.engine import make_url

from tests.support.http_server import LocalServer
from tests.support.newsroom import Newsroom
from watcher import api
from watcher import cli as cli_module
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.errors import WatcherError
from watcher.models import Change, Verdict
from watcher.settings import Settings
from watcher.store import Store, WatchRecord, WatchState

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
            "WATCHER_ALLOW_HOSTS": "127.0.0.1",  # the test sites; refused by default
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
    assert cli("list").stdout == "no watches (1 removed: watcher list --all)\n"


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
    cli("db", "upgrade")  # the refusal comes first: not even the database is created
    result = cli("add", URL, "--interval", "30s")
    assert result.exit_code == 2
    assert (
        result.stderr == "watcher: error: --interval must be at least 1m: be kind to news sites\n"
    )
    assert listed(cli) == []


def test_the_api_refuses_a_too_short_interval_too_and_adds_nothing(store: Store) -> None:
    for too_short in (1, 59.9):
        with pytest.raises(WatcherError, match=r"^--interval must be at least 1m"):
            api.add_watches(store, [URL, "https://example.com/news/2"], interval_s=too_short)
    assert store.list_watches() == []
    [added] = api.add_watches(store, [URL], interval_s=60)
    assert (added.created, store.list_watches()[0].interval_s) == (True, 60)


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


# -- the API does the work, the CLI prints it -----------------------------------------
T0 = SEED.captured_at or 0  # 2021-11-16T02:43:04Z
MINUTE_MS = 60_000


@contextmanager
def selects(store: Store) -> Iterator[list[str]]:
    """The SELECT statements the store sends to its database inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _change(summary: str) -> Change:
    return Change(
        url=URL,
        title_before=SEED.title,
        title_after=SEED.title,
        captured_before=None,
        captured_after=None,
        items=(),
        verdict=Verdict.SIGNIFICANT,
        summary=summary,
    )


def _with_history(store: Store, versions: int) -> WatchRecord:
    """URL watched, with ``versions`` versions, an edit leading to each after the
    first, and finally a removal (the article answered 404)."""
    api.add_watches(store, [URL], now=T0)
    watch = api.require_watch(store, URL)
    previous = None
    for n in range(1, versions + 1):
        text = f"body {n}"
        version = store.add_version(
            watch.id,
            captured_at=T0 + n * MINUTE_MS,
            content_sha256=hashlib.sha256(text.encode()).hexdigest(),
            content_text=text,
            http_status=200,
            final_url=URL,
            title=f"title {n}",
            archive_path=None,
        )
        if previous is not None:
            store.add_change(
                _change(f"edit {n}"),
                watch_id=watch.id,
                old_version_id=previous.id,
                new_version_id=version.id,
                created_at=T0 + n * MINUTE_MS,
            )
        previous = version
    assert previous is not None
    store.add_change(
        _change("article removed (HTTP 404)"),
        watch_id=watch.id,
        old_version_id=previous.id,
        new_version_id=None,
        created_at=T0 + (versions + 2) * MINUTE_MS,
    )
    return watch


def test_history_pairs_each_version_with_its_change_in_three_queries(store: Store) -> None:
    _with_history(store, versions=6)
    with selects(store) as seen:
        hist = api.history(store, URL)
    assert len(seen) == 3  # the watch, its versions, its changes: not one per version
    assert hist.watch.url == URL
    assert [
        (e.version.seq if e.version else None, e.change.summary if e.change else None)
        for e in hist.entries
    ] == [(1, None), *((n, f"edit {n}") for n in range(2, 7)), (None, "article removed (HTTP 404)")]
    for entry in hist.entries[1:-1]:
        assert entry.change is not None and entry.version is not None
        assert entry.change.new_version_id == entry.version.id
    assert hist.latest_change == hist.entries[-1].change


def test_history_lists_a_removal_where_it_happened(store: Store) -> None:
    """A removal between two versions is listed between them, not after both
    (an article taken down at 12:51 and back at 12:54)."""
    watch = _with_history(store, versions=2)
    versions = store.versions(watch.id)
    back = store.add_version(
        watch.id, captured_at=T0 + 10 * MINUTE_MS, content_sha256="b" * 64, content_text="back",
        http_status=200, final_url=URL, title="back", archive_path=None,
    )  # fmt: skip
    store.add_change(
        _change("article reappeared"), watch_id=watch.id, old_version_id=versions[-1].id,
        new_version_id=back.id, created_at=T0 + 10 * MINUTE_MS,
    )  # fmt: skip
    hist = api.history(store, URL)
    assert [e.change.summary if e.change else "first" for e in hist.entries] == [
        "first", "edit 2", "article removed (HTTP 404)", "article reappeared",
    ]  # fmt: skip
    assert [e.at for e in hist.entries] == sorted(e.at for e in hist.entries)


def test_history_command_prints_versions_and_the_removal(cli: Cli) -> None:
    cli("add", URL)
    store = api.open_store(cli.settings())
    try:
        _with_history(store, versions=2)
    finally:
        store.close()
    text = cli("history", URL)
    assert (text.exit_code, text.stderr) == (0, "")
    assert text.stdout == (
        f"{URL} (active; times in UTC)\n"
        "    v1  2021-11-16 02:44  first        first capture\n"
        "    v2  2021-11-16 02:45  significant  edit 2\n"
        "     -  2021-11-16 02:47  significant  article removed (HTTP 404)\n"
    )
    rows = json.loads(cli("history", URL, "--json").stdout)
    assert rows == [
        {"version": 1, "captured_at": "2021-11-16T02:44:04+00:00", "title": "title 1",
         "verdict": "first", "summary": "first capture", "archive_path": None},
        {"version": 2, "captured_at": "2021-11-16T02:45:04+00:00", "title": "title 2",
         "verdict": "significant", "summary": "edit 2", "archive_path": None},
        {"version": None, "captured_at": "2021-11-16T02:47:04+00:00", "title": "",
         "verdict": "significant", "summary": "article removed (HTTP 404)",
         "archive_path": None},
    ]  # fmt: skip


def test_history_shows_times_in_the_readers_zone_and_names_it(cli: Cli) -> None:
    cli("add", URL)
    store = api.open_store(cli.settings())
    try:
        _with_history(store, versions=2)
    finally:
        store.close()
    cli.env["TZ"] = "Asia/Shanghai"  # the system's zone, unless WATCHER_TIMEZONE says
    text = cli("history", URL).stdout
    assert text.startswith(f"{URL} (active; times in Asia/Shanghai)\n")
    assert "    v1  2021-11-16 10:44  first" in text
    cli.env["WATCHER_TIMEZONE"] = "America/New_York"
    assert "    v1  2021-11-15 21:44  first" in cli("history", URL).stdout
    listed = cli("list").stdout
    assert "LAST CHECK (America/New_York)" in listed.splitlines()[0]
    # JSON is for programs: UTC, whatever the zone
    rows = json.loads(cli("history", URL, "--json").stdout)
    assert rows[0]["captured_at"] == "2021-11-16T02:44:04+00:00"


def test_watches_to_check_is_one_query_for_any_number_of_watches(store: Store) -> None:
    urls = [f"https://example.com/news/{n}" for n in range(8)]
    api.add_watches(store, urls)
    store.set_state(urls[3], WatchState.PAUSED)
    store.set_state(urls[5], WatchState.RETIRED)
    with selects(store) as seen:
        every = api.watches_to_check(store, None)
    assert len(seen) == 1
    assert [w.url for w in every] == [u for u in urls if u != urls[3]]  # all but the paused

    with selects(store) as seen:
        named = api.watches_to_check(store, [urls[6], urls[1] + "#comments", urls[6]])
    assert len(seen) == 1
    assert [w.url for w in named] == [urls[6], urls[1]]  # as given, normalised, each once
    with pytest.raises(WatcherError, match=r"^https://example\.com/other is not watched"):
        api.watches_to_check(store, [urls[0], "https://example.com/other"])


def test_remove_removes_nothing_when_one_url_is_not_watched(cli: Cli) -> None:
    other = "https://example.com/news/2"
    cli("add", URL, other)
    result = cli("remove", URL, "https://example.com/never-added")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "watcher: error: https://example.com/never-added is not watched (see `watcher list`)\n"
    )
    assert [row["url"] for row in listed(cli)] == [URL, other]
    both = cli("remove", URL, other)
    assert (both.exit_code, both.stdout) == (0, f"removed: {URL}\nremoved: {other}\n")
    assert listed(cli) == []


def test_list_watches_and_remove_watches(store: Store) -> None:
    api.add_watches(store, [URL, "https://example.com/news/2"])
    assert [w.url for w in api.list_watches(store)] == [URL, "https://example.com/news/2"]
    assert api.remove_watches(store, ["https://example.com/news/2"]) == [
        api.Removed("https://example.com/news/2", versions=0, purged=False)
    ]
    assert [w.url for w in api.list_watches(store)] == [URL]
    everything = api.list_watches(store, include_removed=True)
    assert [(w.url, w.state) for w in everything] == [
        (URL, WatchState.ACTIVE), ("https://example.com/news/2", WatchState.REMOVED),
    ]  # fmt: skip


def test_pause_and_resume_of_a_never_checked_watch_keeps_it_never_checked(cli: Cli) -> None:
    cli("add", URL)
    assert cli("pause", URL).stdout == f"paused: {URL}\n"
    assert listed(cli)[0]["state"] == "paused"
    assert cli("resume", URL).stdout == f"resumed: {URL}\n"
    [row] = listed(cli)
    assert (row["state"], row["last_checked_at"]) == ("active", None)  # not 1970-01-01
    assert "1970" not in cli("list").stdout


def test_pause_and_resume_leave_a_running_checks_lease_alone(store: Store) -> None:
    api.add_watches(store, [URL], now=T0)
    watch = api.require_watch(store, URL)
    store.release(
        watch.id, next_check_at=T0 + 3_600_000, failure_count=3, unchanged_count=9,
        last_checked_at=T0, state=WatchState.FAILING,
    )  # fmt: skip
    [claimed] = store.claim("daemon-1", [watch.id], T0 + 1, lease_ms=900_000)

    api.set_paused(store, URL, True)
    paused = api.require_watch(store, URL)
    assert paused.state is WatchState.PAUSED
    assert (paused.claimed_by, paused.claimed_until) == ("daemon-1", claimed.claimed_until)

    api.set_paused(store, URL, False, now=T0 + 5)
    resumed = api.require_watch(store, URL)
    assert (resumed.state, resumed.next_check_at) == (WatchState.ACTIVE, T0 + 5)
    assert (resumed.failure_count, resumed.unchanged_count) == (0, 0)
    assert resumed.last_checked_at == T0
    assert (resumed.claimed_by, resumed.claimed_until) == ("daemon-1", claimed.claimed_until)


def test_status_never_shows_the_database_password(store: Store, tmp_path: Path) -> None:
    secret = "s3cret-pw"
    settings = Settings.from_env(
        {"WATCHER_DATABASE_URL": f"postgresql+psycopg://watcher:{secret}@db.example.org/watcher"},
        home=tmp_path / "home",
    )
    st = api.status(settings, store)
    assert secret not in st.database
    assert st.database == "postgresql+psycopg://watcher:***@db.example.org/watcher"


# -- managing watches: set, remove (kept or purged), last errors --------------------------
OTHER = "https://example.com/news/2"


def test_set_changes_interval_and_tags_and_says_what_changed(cli: Cli) -> None:
    cli("add", URL, OTHER, "--interval", "10m", "--tag", "draft")
    result = cli("set", URL, OTHER, "--interval", "adaptive", "--tag", "elections",
                 "--untag", "draft")  # fmt: skip
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"{URL}: interval 10m → adaptive, tags +elections -draft\n"
        f"{OTHER}: interval 10m → adaptive, tags +elections -draft\n"
    )
    assert [(r["interval_s"], r["tags"]) for r in listed(cli)] == [(None, ["elections"])] * 2
    again = cli("set", URL, "--interval", "adaptive", "--untag", "never-there")
    assert (again.exit_code, again.stdout) == (0, f"{URL}: unchanged\n")
    pinned = cli("set", URL, "--interval", "2h")
    assert pinned.stdout == f"{URL}: interval adaptive → 2h\n"
    assert cli("set", URL).exit_code == 2  # nothing to set: a usage error


def test_set_with_an_unknown_or_removed_url_changes_nothing(cli: Cli) -> None:
    cli("add", URL, "--tag", "a")
    unknown = cli("set", URL, "https://example.com/never-added", "--interval", "30m")
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert unknown.stderr == (
        "watcher: error: https://example.com/never-added is not watched (see `watcher list`)\n"
    )
    too_short = cli("set", URL, "--interval", "30s", "--tag", "b")
    assert too_short.stderr == (
        "watcher: error: --interval must be at least 1m: be kind to news sites\n"
    )
    cli("add", OTHER)
    cli("remove", OTHER)
    removed = cli("set", URL, OTHER, "--tag", "b")
    assert removed.exit_code == 2 and f"{OTHER} was removed" in removed.stderr
    [row] = listed(cli)
    assert (row["interval_s"], row["tags"]) == (None, ["a"])


def test_set_moves_the_next_check_earlier_for_a_shorter_interval(store: Store) -> None:
    api.add_watches(store, [URL, OTHER], interval_s=7200, now=T0)
    for url in (URL, OTHER):
        watch = api.require_watch(store, url)
        store.release(watch.id, next_check_at=T0 + 7_200_000, failure_count=0,
                      unchanged_count=0, last_checked_at=T0)  # fmt: skip
    [shorter] = api.set_watches(store, [URL], interval_s=600, now=T0 + 1000)
    assert (shorter.interval_before, shorter.interval_after) == (7200, 600)
    assert api.require_watch(store, URL).next_check_at == T0 + 1000 + 600_000
    api.set_watches(store, [OTHER], interval_s=86_400, add_tags=["x"], now=T0 + 1000)
    assert api.require_watch(store, OTHER).next_check_at == T0 + 7_200_000  # never later
    with pytest.raises(WatcherError, match=r"--tag and --untag both name 'x'"):
        api.set_watches(store, [URL], add_tags=["x"], remove_tags=["x"])


def test_adding_again_says_what_it_did_with_tags_and_interval(cli: Cli) -> None:
    cli("add", URL, "--interval", "10m", "--tag", "a")
    tags = cli("add", URL, "--tag", "a", "--tag", "b")
    assert tags.stdout == f"already watched: {URL} (tags +b added)\n"
    interval = cli("add", URL, "--interval", "2h")
    assert interval.stdout == (
        f"already watched: {URL} (interval stays 10m: "
        "use watcher set to change its interval or tags)\n"
    )
    [row] = listed(cli)
    assert (row["interval_s"], row["tags"]) == (600, ["a", "b"])


def test_remove_keeps_the_history_and_add_brings_the_watch_back(cli: Cli) -> None:
    cli("add", URL, OTHER)
    store = api.open_store(cli.settings())
    try:
        watch = _with_history(store, versions=2)
    finally:
        store.close()
    removed = cli("remove", URL)
    assert removed.stdout == (
        f"removed: {URL} (2 versions kept)\n"
        "(history kept: watcher add watches it again, watcher remove --purge deletes it)\n"
    )
    assert [r["url"] for r in listed(cli)] == [OTHER]
    assert URL not in cli("list").stdout
    every = json.loads(cli("list", "--all", "--json").stdout)
    assert [(r["url"], r["state"], r["versions"]) for r in every] == [
        (URL, "removed", 2), (OTHER, "active", 0),
    ]  # fmt: skip
    assert "removed" in cli("list", "--all").stdout
    history = cli("history", URL)
    assert (
        history.stdout.startswith(f"{URL} (removed; times in UTC)\n") and "edit 2" in history.stdout
    )
    assert cli("remove", URL).stdout == f"already removed: {URL}\n"
    for refused in (("pause", URL), ("resume", URL), ("check", URL)):
        result = cli(*refused)
        assert result.exit_code == 2, refused
        assert "was removed (its history is kept): `watcher add` watches it again" in result.stderr

    back = cli("add", URL)
    assert back.stdout == f"watching again: {URL} (it was removed; its history is kept)\n"
    [again] = [r for r in listed(cli) if r["url"] == URL]
    assert (again["versions"], again["state"]) == (2, "gone")  # its last news was a removal
    store = api.open_store(cli.settings())
    try:
        assert api.require_watch(store, URL).id == watch.id
    finally:
        store.close()


def test_one_add_of_new_known_removed_bad_and_repeated_urls(store: Store) -> None:
    """One bulk add says, URL by URL, what a URL-by-URL add would have: a URL
    given twice is "already watched" the second time, as the first left it."""
    third = "https://example.com/news/3"
    api.add_watches(store, [URL, OTHER], tags=["a"], now=T0)
    api.remove_watches(store, [OTHER])
    added = api.add_watches(
        store, [third, URL, OTHER, "ftp://example.com/x", URL, third, OTHER],
        interval_s=3600, tags=["b"], now=T0 + 1,
    )  # fmt: skip
    said = [(a.url, a.created, a.reactivated, a.tags_added, a.interval_kept, a.interval_s)
            for a in added if a.error is None]  # fmt: skip
    assert said == [
        (third, True, False, (), False, 3600),
        (URL, False, False, ("b",), True, None),  # keeps its adaptive interval
        (OTHER, False, True, ("b",), False, 3600),  # back, with the interval asked for
        (URL, False, False, (), True, None),
        (third, False, False, (), False, 3600),
        (OTHER, False, False, (), False, 3600),
    ]
    assert [a.url for a in added if a.error] == ["ftp://example.com/x"]
    watches = store.watches()
    assert [(w.url, w.tags, w.interval_s) for w in watches] == [
        (URL, ("a", "b"), None), (OTHER, ("a", "b"), 3600), (third, ("b",), 3600),
    ]  # fmt: skip
    assert watches[1].state is WatchState.ACTIVE and watches[1].next_check_at == T0 + 1


def test_an_add_longer_than_one_statement_adds_every_url_in_order(store: Store) -> None:
    """The bulk add works in chunks of 500 URLs: those around the seams are
    neither lost nor doubled, and ids follow the order given."""
    urls = [f"https://example.com/bulk/{i}" for i in range(1201)]
    api.add_watches(store, urls[400:700:3], tags=["old"], now=T0)
    added = api.add_watches(store, urls, tags=["new"], now=T0)
    assert [a.url for a in added] == urls
    assert sum(a.created for a in added) == 1201 - 100
    assert {a.tags_added for a in added if not a.created} == {("new",)}
    listed_urls = [w.url for w in store.watches()]
    assert sorted(listed_urls) == sorted(urls)
    assert [u for u in listed_urls if u not in urls[400:700:3]] == [
        u for u in urls if u not in urls[400:700:3]
    ]


def test_check_all_and_the_daemon_skip_removed_watches(store: Store) -> None:
    api.add_watches(store, [URL, OTHER], now=T0)
    api.remove_watches(store, [OTHER])
    assert [w.url for w in api.watches_to_check(store, None)] == [URL]
    assert [w.url for w in store.claim_due("d", T0 + 1, 10, 1000)] == [URL]


def test_remove_purge_yes_deletes_the_watch_and_its_history(cli: Cli) -> None:
    cli("add", URL, OTHER)
    store = api.open_store(cli.settings())
    try:
        watch = _with_history(store, versions=3)
    finally:
        store.close()
    cli("remove", OTHER)  # a removed watch can be purged too
    purged = cli("remove", "--purge", "--yes", URL, OTHER)
    assert (purged.exit_code, purged.stdout) == (
        0, f"purged: {URL} (3 versions deleted)\npurged: {OTHER}\n",
    )  # fmt: skip
    assert json.loads(cli("list", "--all", "--json").stdout) == []
    store = api.open_store(cli.settings())
    try:
        assert (store.versions(watch.id), store.changes(watch.id)) == ([], [])
    finally:
        store.close()


def test_purge_without_a_terminal_or_yes_refuses_and_deletes_nothing(cli: Cli) -> None:
    cli("add", URL)
    store = api.open_store(cli.settings())
    try:
        _with_history(store, versions=2)
    finally:
        store.close()
    result = cli("remove", "--purge", URL)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "watcher: error: --purge would delete 1 watch and its 2 versions: pass --yes to confirm\n"
    )
    assert [(r["state"], r["versions"]) for r in listed(cli)] == [("active", 2)]


def test_purge_on_a_terminal_asks_first(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "_on_terminal", lambda: True)
    cli("add", URL, OTHER)
    declined = cli.runner.invoke(
        main, ["--home", str(cli.home), "remove", "--purge", URL, OTHER], env=cli.env, input="n\n"
    )
    assert declined.exit_code == 1
    assert declined.stdout == "Delete 2 watches and their 0 versions? [y/N]: n\nnothing deleted\n"
    assert len(listed(cli)) == 2
    agreed = cli.runner.invoke(
        main, ["--home", str(cli.home), "remove", "--purge", URL], env=cli.env, input="y\n"
    )
    assert agreed.exit_code == 0
    assert agreed.stdout.endswith(f"[y/N]: y\npurged: {URL}\n")
    assert [r["url"] for r in json.loads(cli("list", "--all", "--json").stdout)] == [OTHER]


def test_a_failing_watch_shows_its_last_error_until_a_check_succeeds(cli: Cli) -> None:
    """A real server answers 500 three times, then the article: list and status
    say what is wrong while it fails, and nothing once it is back."""
    cli.env["WATCHER_RETRIES"] = "0"  # one request per check: the error comes at once
    room = Newsroom(title=SEED.title, main=SEED.body)
    failing = {"now": True}

    def page(req: Any) -> None:
        if failing["now"]:
            req.respond(500, b"<h1>Internal Server Error</h1>")
        else:
            req.respond(200, room.page().encode("utf-8"))

    with LocalServer() as site:
        site.route("/a", page)
        url = site.url("/a")
        cli("add", url)
        for _ in range(3):
            failed = cli("check", url)
            assert failed.stdout == f"{url}: error: HTTP 500\n"
            assert failed.stderr == ""  # said once, not again as a log line
        [row] = listed(cli)
        assert (row["state"], row["failures"], row["last_error"]) == ("failing", 3, "HTTP 500")
        table = cli("list").stdout.splitlines()
        assert table[1].startswith(url) and table[1].endswith("failing")
        assert table[2] == "  ↳ error: HTTP 500 (3 checks in a row)"
        status = cli("status").stdout
        assert f"failing:     1\n  {url}: HTTP 500 (3 checks in a row)\n" in status

        failing["now"] = False
        assert cli("check", url).stdout == f"{url}: new version\n"
        [row] = listed(cli)
        assert (row["state"], row["failures"], row["last_error"]) == ("active", 0, None)
        assert len(cli("list").stdout.splitlines()) == 2  # the header and the watch: no error line
        assert "failing:     0\n" in cli("status").stdout

        failing["now"] = True
        cli("check", url)
        assert listed(cli)[0]["last_error"] == "HTTP 500"
        site.route("/a", lambda req: req.respond(404, b"<h1>Not Found</h1>"))
        assert cli("check", url).stdout.startswith(f"{url}: gone")
    [row] = listed(cli)  # the site answered: the article is gone, the watch is not failing
    assert (row["state"], row["last_error"]) == ("gone", None)


def test_status_names_ten_failing_watches_then_counts_the_rest(cli: Cli) -> None:
    urls = [f"https://example.com/news/{n}" for n in range(12)]
    cli("add", *urls)
    store = api.open_store(cli.settings())
    try:
        for n, watch in enumerate(store.watches()):
            store.release(watch.id, next_check_at=T0, failure_count=n + 1, unchanged_count=0,
                          last_checked_at=T0, last_error=f"HTTP 50{n % 4}")  # fmt: skip
        api.remove_watches(store, [urls[0]])  # removed: not failing any more
    finally:
        store.close()
    lines = cli("status").stdout.splitlines()
    start = lines.index("failing:     11")
    named = lines[start + 1 : start + 11]
    assert named[0] == f"  {urls[11]}: HTTP 503 (12 checks in a row)"  # failing longest first
    assert [line.split(":")[1] for line in named] == [
        f"//example.com/news/{n}" for n in range(11, 1, -1)
    ]
    assert lines[start + 11] == "  and 1 more (watcher list)"
