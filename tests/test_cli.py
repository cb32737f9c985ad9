"""The command line as a user types it."""

from __future__ import annotations

import json
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
