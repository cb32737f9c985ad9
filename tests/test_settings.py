"""Settings are declared once; the README documents every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.errors import WatcherError
from watcher.settings import SPECS, Settings, format_duration, parse_duration

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.env)
def test_every_setting_is_documented_in_the_readme(spec: object) -> None:
    assert f"`{spec.env}`" in README.read_text(encoding="utf-8")  # type: ignore[attr-defined]


def test_defaults_put_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"WATCHER_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'watcher.db'}"
    assert settings.archive_dir == tmp_path / "archive"
    assert settings.min_interval == 300 and settings.max_body == 10 * 1024 * 1024


def test_environment_overrides_and_bad_values_name_the_variable(tmp_path: Path) -> None:
    env = {"WATCHER_HOME": str(tmp_path), "WATCHER_MIN_INTERVAL": "90s", "WATCHER_MAX_BODY": "2MB"}
    settings = Settings.from_env(env)
    assert settings.min_interval == 90 and settings.max_body == 2 * 1024 * 1024
    with pytest.raises(WatcherError, match="WATCHER_TIMEOUT"):
        Settings.from_env({"WATCHER_TIMEOUT": "soon"})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCHER_TIMEZONE": "Mars/Olympus"}, "WATCHER_TIMEZONE"),
        ({"WATCHER_LOG_FORMAT": "xml"}, "WATCHER_LOG_FORMAT"),
        ({"WATCHER_PER_HOST": "0"}, "WATCHER_PER_HOST"),
        ({"WATCHER_CHECK_RETENTION": "0"}, "WATCHER_CHECK_RETENTION"),
    ],
)
def test_values_that_would_fail_later_are_refused_now(env: dict[str, str], message: str) -> None:
    with pytest.raises(WatcherError, match=message):
        Settings.from_env(env)
