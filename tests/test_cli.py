"""The command line as a user types it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_show_prints_readable_article(runner: CliRunner, seed_path: Path) -> None:
    result = runner.invoke(main, ["show", str(seed_path)])
    assert result.exit_code == 0
    assert result.output.startswith("拜登和习近平视像会晤开始 双方在讨论什么\n")
    assert "## 会晤的目标与期待" in result.output
    assert "[time] 14 分钟前 -> 2021-11-16T02:29:04+00:00 ± 60s" in result.output


def test_show_json(runner: CliRunner, seed_path: Path) -> None:
    result = runner.invoke(main, ["show", "--json", str(seed_path)])
    data = json.loads(result.output)
    assert data["snapshot"]["captured_at"] == 1637030584000
    assert data["article"]["blocks"][0]["times"][0]["start_ms"] == 1637029684000


def test_show_bad_file_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("not a snapshot\n", encoding="utf-8")
    result = runner.invoke(main, ["show", str(bad)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and str(bad) in result.output


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in (command.help or ""), f"{name} --help has no example"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def versions(tmp_path: Path, seed_path: Path) -> tuple[Path, Path, Path]:
    """The seed, a tick of its relative time an hour later, and an edit."""
    text = seed_path.read_text(encoding="utf-8")
    tick = text.replace("<!--1637030584000-->", "<!--1637034304000-->").replace(
        "14 分钟前", "1 小时前"
    )
    edit = text.replace("预计将持续数个小时", "预计将持续三个小时")
    return (
        _write(tmp_path / "v1.md", text),
        _write(tmp_path / "v2.md", tick),
        _write(tmp_path / "v3.md", edit),
    )


def test_diff_exit_status_is_like_diff1(
    runner: CliRunner, versions: tuple[Path, Path, Path]
) -> None:
    v1, v2, v3 = versions
    noise = runner.invoke(main, ["diff", str(v1), str(v2)])
    assert noise.exit_code == 0, noise.output
    assert "relative timestamp" in noise.output
    news = runner.invoke(main, ["diff", str(v1), str(v3)])
    assert news.exit_code == 1
    assert "[-数-]{+三+}" in news.output
    broken = runner.invoke(main, ["diff", str(v1), str(v1.parent / "missing.md")])
    assert broken.exit_code == 2


def test_diff_writes_html_and_json_reports(
    runner: CliRunner, versions: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    v1, _, v3 = versions
    out = tmp_path / "report.html"
    result = runner.invoke(main, ["diff", str(v1), str(v3), "--format", "html", "-o", str(out)])
    assert result.exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    assert "<del>数</del>" in page and "<ins>三</ins>" in page
    as_json = runner.invoke(main, ["diff", str(v1), str(v3), "--format", "json"])
    assert json.loads(as_json.output)["items"][0]["kind"] == "paragraph_edited"


def test_diff_html_report_neutralises_hostile_archived_content(
    runner: CliRunner, tmp_path: Path
) -> None:
    head = "<!--1-->\n[T](https://e.com/a)\n------\n\n"
    old = _write(tmp_path / "old.md", head + "<p>safe</p>\n")
    evil = (
        '<p>safe <script>alert(1)</script><img src=x onerror="alert(2)">'
        '<a href="javascript:alert(3)">click</a></p>\n'
    )
    new = _write(tmp_path / "new.md", head + evil)
    result = runner.invoke(main, ["diff", str(old), str(new), "--format", "html"])
    page = result.output.lower()
    assert "<script" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    assert 'href="javascript:' not in page


def test_show_prints_no_terminal_control_characters(runner: CliRunner, tmp_path: Path) -> None:
    """A title that would set the terminal's title, and a body that would clear
    the screen and reverse the text, are printed as plain text."""
    evil = _write(
        tmp_path / "evil.md",
        "<!--1637030584000-->\n[Ti\x1b]0;pwned\x07tle \u202eevil](https://e.com/a)\n------\n\n"
        "<p>para \x1b[2J with \x9b31m csi \r over</p>\n",
    )
    result = runner.invoke(main, ["show", str(evil)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Title evil\n")
    assert "para  with  csi over" in result.output
    assert not any(ch in result.output for ch in "\x1b\x07\x9b\r\u202e")


def test_a_bad_setting_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main, ["--home", str(tmp_path), "list"], env={"WATCHER_LOG_LEVEL": "LOUD"}
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "watcher: error: WATCHER_LOG_LEVEL='LOUD': use one of DEBUG, INFO, WARNING, ERROR, "
        "CRITICAL\n"
    )


#: Libraries that take tens of milliseconds each to import.
HEAVY = ("sqlalchemy", "httpx", "lxml", "apprise", "dateparser")
#: Runs a command in a fresh interpreter, then names the HEAVY libraries it loaded.
PROBE = """
import sys
from watcher.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("loaded:", ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(args: list[str], home: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env["WATCHER_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    last = done.stdout.splitlines()[-1]
    assert last.startswith("loaded:"), done.stdout + done.stderr
    return {m for m in last.removeprefix("loaded:").strip().split(",") if m}


def test_importing_the_command_loads_no_heavy_library() -> None:
    """`watcher --help` must answer at once: each command imports what it needs."""
    code = f"import sys, watcher.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


@pytest.mark.parametrize(
    ("args", "needed"),
    [
        (["--help"], set()),
        (["--version"], set()),
        (["list", "--help"], set()),
        (["list"], {"sqlalchemy"}),
        (["status"], {"sqlalchemy"}),
        # URLs are checked with the fetcher's validate_url (watcher.urlnorm)
        (["add", "https://news.example.com/a/1"], {"sqlalchemy", "httpx"}),
    ],
)
def test_a_command_loads_only_the_libraries_it_needs(
    tmp_path: Path, args: list[str], needed: set[str]
) -> None:
    home = tmp_path / "home"
    if args == ["status"]:
        _loaded(["add", "https://news.example.com/a/1"], home)  # status reads a database
    assert _loaded(args, home) == needed


def test_version_is_the_installed_package_version(runner: CliRunner) -> None:
    """--version prints watcher.__version__ (no metadata lookup at start-up):
    it must be the version pip installed, pyproject.toml's."""
    result = runner.invoke(main, ["--version"])
    assert result.output == f"main, version {importlib.metadata.version('watcher')}\n"
