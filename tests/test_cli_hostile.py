"""The command line against hostile text and hostile input (issue 10).

Archived titles, page text and URLs come from strangers: whatever they hold,
no escape sequence, control character or bidi override reaches the terminal
from any command. URLs with such characters, or too long, are refused at
``add``; intervals are bounded; ``list`` stays small whatever one URL's length;
reading commands work on a read-only data folder; and every error a user can
provoke is exactly one line, ``watcher: error: ...``, with exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watcher import api
from watcher.cli import URL_CELL_MAX, main
from watcher.errors import WatcherError
from watcher.logs import configure as configure_logging
from watcher.models import Change, Verdict
from watcher.safetext import UNSAFE_CHARS, for_colour_terminal
from watcher.settings import Settings, parse_duration
from watcher.store import Store
from watcher.urlnorm import MAX_URL_LENGTH

#: Sets the terminal title, paints red, clears the screen (7- and 8-bit CSI),
#: overwrites the line, reverses the text, and hides a NUL.
EVIL = "T\x1b]0;pwned\x07itle \x1b[31mred\x1b[0m \u202eevil\u2066 \x9b2J\r over\x00"
EVIL_URL = "https://example.com/a\x1b]0;pwned\x07\u202eb"
URL = "https://example.com/news/1"


def assert_safe(text: str) -> None:
    """Nothing a terminal would obey: no ESC, no C0/C1 control, no bidi control."""
    found = sorted({f"U+{ord(c):04X}" for c in UNSAFE_CHARS.findall(text)})
    assert not found, f"unsafe characters in output: {found}: {text[:200]!r}"


def one_error_line(result: Result) -> str:
    """The result is exit 2 with exactly one line on stderr, ``watcher: error: ...``."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[0].startswith("watcher: error: "), lines[0]
    assert "Traceback" not in result.output
    assert_safe(result.stderr)
    return lines[0]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class Cli:
    """``watcher --home HOME ...`` on the SQLite database in HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env: dict[str, str | None] = {
            "WATCHER_HOME": None,
            "WATCHER_DATABASE_URL": None,
            "WATCHER_LOG_LEVEL": "WARNING",
            "WATCHER_RETRIES": "0",
        }

    def __call__(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(self.home), *args], env={**self.env, **env})

    def settings(self) -> Settings:
        return Settings.from_env({}, home=self.home)

    def store(self) -> Store:
        return api.open_store(self.settings())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def _hostile_history(store: Store) -> None:
    """A watch stored before URLs were checked (as an old database holds it),
    with two versions whose titles and change summary carry :data:`EVIL`."""
    watch, _ = store.add_watch(EVIL_URL, site="example.com", tags=(EVIL,), now_ms=1)
    versions = []
    for n in (1, 2):
        text = f"body {n} {EVIL}"
        version = store.add_version(
            watch.id, captured_at=1_637_030_584_000 + n * 60_000,
            content_sha256=hashlib.sha256(text.encode()).hexdigest(), content_text=text,
            http_status=200, final_url=EVIL_URL, title=f"{EVIL} {n}", archive_path=None,
        )  # fmt: skip
        versions.append(version)
    change = Change(
        url=EVIL_URL, title_before=EVIL, title_after=EVIL, captured_before=None,
        captured_after=None, items=(), verdict=Verdict.SIGNIFICANT, summary=f"edited {EVIL}",
    )  # fmt: skip
    store.add_change(
        change, watch_id=watch.id, old_version_id=versions[0].id, new_version_id=versions[1].id
    )


@pytest.fixture
def hostile(cli: Cli) -> Cli:
    store = cli.store()
    try:
        _hostile_history(store)
    finally:
        store.close()
    return cli


# -- terminal control characters --------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("history", EVIL_URL),
        ("status",),
        ("diff", EVIL_URL),
        ("diff", EVIL_URL, "--format", "md"),
        ("pause", EVIL_URL),
        ("remove", "https://example.com/\x1b]0;pwned\x07\u202e"),  # not watched: an error
    ],
    ids=lambda a: " ".join(a)[:20],
)
def test_no_command_prints_archived_control_characters(hostile: Cli, args: tuple[str, ...]) -> None:
    result = hostile(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert_safe(result.stdout)
    assert_safe(result.stderr)
    assert result.stdout or result.stderr


def test_list_shows_the_title_without_its_escapes(hostile: Cli) -> None:
    result = hostile("list")
    assert result.exit_code == 0, result.output
    assert "pwned" not in result.stdout  # the whole OSC sequence is gone, not just ESC
    assert "Title red evil" in result.stdout


@pytest.mark.parametrize("command", [("list", "--json"), ("history", EVIL_URL, "--json")])
def test_json_escapes_what_it_keeps(hostile: Cli, command: tuple[str, ...]) -> None:
    """JSON keeps the data (json.loads gives it back) but as \\u escapes."""
    result = hostile(*command)
    assert result.exit_code == 0, result.output
    assert_safe(result.stdout)
    data = json.loads(result.stdout)
    if command[0] == "list":
        assert data[0]["url"] == EVIL_URL and data[0]["title"] == f"{EVIL} 2"
    else:
        assert data[1]["title"] == f"{EVIL} 2" and data[1]["summary"] == f"edited {EVIL}"


def test_check_prints_a_hostile_url_and_its_error_safely(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    store = cli.store()
    try:
        store.add_watch("http://127.0.0.1:9/a\x1b]0;pwned\x07\u202eb", site="127.0.0.1", now_ms=1)
    finally:
        store.close()
    result = cli("check", "--all", WATCHER_LOG_LEVEL="INFO")
    assert result.exit_code == 1, result.output  # the check failed; said so safely
    assert_safe(result.stdout)
    assert_safe(result.stderr)
    assert "http://127.0.0.1:9/ab" in result.stdout


def test_show_and_diff_of_hostile_files(tmp_path: Path) -> None:
    head = f"<!--1637030584000-->\n[{EVIL}](https://e.com/a)\n------\n\n"
    old = tmp_path / "old.md"
    new = tmp_path / "new.md"
    old.write_text(head + "<p>calm</p>\n", encoding="utf-8")
    new.write_text(head + f"<p>calm {EVIL}</p>\n", encoding="utf-8")
    runner = CliRunner()
    for args in (
        ["show", str(new)],
        ["show", "--json", str(new)],
        ["diff", str(old), str(new)],
        ["diff", str(old), str(new), "--format", "json"],
        ["diff", str(old), str(new), "--format", "md"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code in (0, 1), (args, result.output)
        assert_safe(result.stdout)
    shown = json.loads(runner.invoke(main, ["show", "--json", str(new)]).stdout)
    assert "\x1b]0;pwned\x07" in shown["snapshot"]["title"]  # JSON keeps the data, escaped
    assert "\u202e" in shown["snapshot"]["title"]


def test_coloured_output_keeps_only_its_own_colours() -> None:
    coloured = f"\x1b[1mTitle:\x1b[0m    {EVIL}\n\x1b[9;31mold\x1b[0m"
    shown = for_colour_terminal(coloured)
    assert "\x1b[1mTitle:\x1b[0m" in shown and "\x1b[9;31mold\x1b[0m" in shown
    assert "pwned" not in shown and "\u202e" not in shown and "\x9b" not in shown
    assert "\r" not in shown and "\x00" not in shown


def test_log_lines_are_made_safe(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    logging.getLogger("watcher.test").warning("check %s failed: %s", EVIL_URL, EVIL)
    err = capsys.readouterr().err
    assert_safe(err)
    assert "pwned" not in err and "example.com/ab failed" in err


# -- URLs refused at add ----------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ("https://example.com/a\x01b", "U+0001"),
        ("https://example.com/\x1b[31mred", "U+001B"),
        ("https://example.com/a b", "U+0020"),
        ("https://example.com/a\tb", "U+0009"),
        ("https://example.com/\u202eevil", "U+202E"),
        ("https://example.com/a\x85b", "U+0085"),
    ],
)
def test_add_refuses_control_characters_and_whitespace(cli: Cli, bad: str, code: str) -> None:
    result = cli("add", bad, URL)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("skipped: ") and code in line and "percent-encode" in line
    assert_safe(result.stderr)
    assert [row["url"] for row in json.loads(cli("list", "--json").stdout)] == [URL]


def test_add_refuses_a_url_over_the_limit(cli: Cli) -> None:
    too_long = "https://example.com/" + "a" * MAX_URL_LENGTH
    result = cli("add", too_long)
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert f"longer than {MAX_URL_LENGTH} characters" in line and len(line) < 200
    just_fits = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))
    assert cli("add", just_fits).exit_code == 0


def test_the_api_refuses_them_too(store: Store) -> None:
    results = api.add_watches(store, ["https://e.com/\x1b", "https://e.com/" + "x" * 9000])
    assert [r.created for r in results] == [False, False]
    assert all(r.error for r in results)
    assert store.list_watches() == []


# -- list: bounded width, bounded memory ------------------------------------------


def test_list_is_bounded_by_the_cell_width_not_the_longest_url(cli: Cli) -> None:
    """500 watches and one 100,000-character URL (stored before the limit):
    every line is short, and the listing holds a few MB, not rows × 100 KB."""
    store = cli.store()
    try:
        for n in range(500):
            store.add_watch(f"https://example.com/{n}", site="example.com", now_ms=1)
        store.add_watch("https://example.com/" + "x" * 100_000, site="example.com", now_ms=1)
    finally:
        store.close()
    tracemalloc.start()
    try:
        result = cli("list")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 502
    assert max(len(line) for line in lines) < URL_CELL_MAX + 100
    assert any(line.startswith("https://example.com/xxx") and "…" in line for line in lines)
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


# -- intervals --------------------------------------------------------------------


def test_an_overflowing_interval_is_refused_before_anything_is_added(cli: Cli) -> None:
    line = one_error_line(cli("add", URL, "--interval", "999999999999d"))
    assert "--interval" in line and "365d" in line
    one_error_line(cli("add", URL, "--interval", "366d"))
    assert json.loads(cli("list", "--json").stdout) == []
    assert cli("add", URL, "--interval", "365d").exit_code == 0


def test_the_api_bounds_a_pinned_interval(store: Store) -> None:
    for too_long in (366 * 86400, 1e12, float("inf"), float("nan")):
        with pytest.raises(WatcherError, match="--interval must be"):
            api.add_watches(store, [URL], interval_s=too_long)
    assert store.list_watches() == []
    with pytest.raises(WatcherError, match="longer than 365d"):
        parse_duration("9" * 400 + "d")


# -- every bad input: one line, exit 2 --------------------------------------------


def _unknown_revision(cli: Cli) -> None:
    cli("add", URL)
    with sqlite3.connect(cli.home / "watcher.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff9999'")


def _no_version_table(cli: Cli) -> None:
    cli("add", URL)
    with sqlite3.connect(cli.home / "watcher.db") as conn:
        conn.execute("DROP TABLE alembic_version")


def _not_a_database(cli: Cli) -> None:
    cli.home.mkdir(parents=True)
    (cli.home / "watcher.db").write_bytes(b"not a database, " * 100)


def _binary_url_file(cli: Cli) -> None:
    cli.home.mkdir(parents=True)
    (cli.home / "urls.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe" * 50)


CASES = {
    "binary --from-file": (_binary_url_file, ("add", "--from-file", "{home}/urls.bin"), {}),
    "log level": (None, ("list",), {"WATCHER_LOG_LEVEL": "LOUD"}),
    "zero timeout": (None, ("list",), {"WATCHER_TIMEOUT": "0"}),
    "negative retries": (None, ("list",), {"WATCHER_RETRIES": "-1"}),
    "retries overflow": (None, ("list",), {"WATCHER_RETRIES": "100000"}),
    "min above max": (None, ("list",), {"WATCHER_MIN_INTERVAL": "2d"}),
    "huge max interval": (None, ("list",), {"WATCHER_MAX_INTERVAL": "999999999999d"}),
    "huge retire after": (None, ("list",), {"WATCHER_RETIRE_AFTER": "9" * 400}),
    "bad per host": (None, ("list",), {"WATCHER_PER_HOST": "many"}),
    "huge interval": (None, ("add", URL, "--interval", "999999999999d"), {}),
    "upgrade unknown revision": (_unknown_revision, ("db", "upgrade"), {}),
    "list unknown revision": (_unknown_revision, ("list",), {}),
    "upgrade without version table": (_no_version_table, ("db", "upgrade"), {}),
    "add without version table": (_no_version_table, ("add", URL), {}),
    "list without version table": (_no_version_table, ("list",), {}),
    "not a database": (_not_a_database, ("list",), {}),
    "add to not a database": (_not_a_database, ("add", URL), {}),
    "status before any database": (None, ("status",), {}),
    "history of an unwatched URL": (_unknown_revision, ("history", URL + "/x"), {}),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_bad_input_is_one_line_and_exit_2(cli: Cli, case: str) -> None:
    prepare, args, env = CASES[case]
    if prepare is not None:
        prepare(cli)
    line = one_error_line(cli(*(a.format(home=cli.home) for a in args), **env))
    assert "sqlalche.me" not in line and "[SQL:" not in line
    for name in env:
        assert name in line  # a bad setting is named


def test_database_errors_lose_sqlalchemys_background_link(tmp_path: Path) -> None:
    from sqlalchemy.exc import InvalidRequestError, OperationalError  # noqa: PLC0415

    from watcher.store.repository import _store_error  # noqa: PLC0415

    bare = _store_error(InvalidRequestError("boom", code="abcd"))
    assert str(bare) == "database error: InvalidRequestError: boom"
    wrapped = _store_error(OperationalError("SELECT 1\nFROM x", {}, Exception("disk I/O error")))
    assert str(wrapped) == "database error: OperationalError: disk I/O error"


# -- reading a read-only data folder ------------------------------------------------


def test_reading_commands_create_nothing(cli: Cli) -> None:
    assert cli("list").stdout == "no watches yet: watcher add URL\n"
    assert json.loads(cli("list", "--json").stdout) == []
    one_error_line(cli("status"))
    assert not cli.home.exists()


def _read_only_runner(home: Path) -> list[str] | None:
    """How to run a command with ``home`` read-only, or None when this system cannot."""
    if os.geteuid() != 0:
        return []  # the caller removes write permission instead
    if shutil.which("unshare") is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "-m", "sh", "-c", script, str(home)]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def test_reading_commands_work_on_a_read_only_data_folder(hostile: Cli) -> None:
    home = hostile.home
    assert not (home / "watcher.db-shm").exists()  # closed cleanly: a reader must cope
    prefix = _read_only_runner(home)
    if prefix is None:
        pytest.skip("cannot make a read-only folder here (need unshare and mount as root)")
    before = sorted(p.name for p in home.iterdir())
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env.update(WATCHER_HOME=str(home), WATCHER_LOG_LEVEL="INFO")
    watcher = [sys.executable, "-c", "from watcher.cli import main; main()"]
    if not prefix:
        for path in (home, *home.iterdir()):
            path.chmod(path.stat().st_mode & ~0o222)
    try:
        for args in (["list"], ["status"], ["history", EVIL_URL]):
            done = subprocess.run(
                [*prefix, *watcher, *args], capture_output=True, text=True, env=env, check=False
            )
            assert done.returncode == 0, (args, done.stderr)
            assert done.stderr == "", (args, done.stderr)
            assert_safe(done.stdout)
        assert "example.com/ab" in done.stdout
        written = subprocess.run(
            [*prefix, *watcher, "add", URL], capture_output=True, text=True, env=env, check=False
        )
        assert written.returncode == 2 and len(written.stderr.splitlines()) == 1, written.stderr
    finally:
        if not prefix:
            for path in (home, *home.iterdir()):
                path.chmod(path.stat().st_mode | 0o200)
    assert sorted(p.name for p in home.iterdir()) == before
