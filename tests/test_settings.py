"""Settings are declared once; the README documents every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.errors import WatcherError
from watcher.settings import (
    MAX_DURATION_S,
    SPECS,
    Settings,
    format_duration,
    parse_duration,
)

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
        ({"WATCHER_TIMEOUT": "0"}, "WATCHER_TIMEOUT=0s: must be more than 0s"),
        ({"WATCHER_POLL": "0s"}, "WATCHER_POLL"),
        ({"WATCHER_RETRIES": "-1"}, "WATCHER_RETRIES=-1: must be 0 to 20"),
        ({"WATCHER_RETRIES": "5000"}, "WATCHER_RETRIES"),  # 2**5000 overflows the backoff
        ({"WATCHER_MAX_CONNECTIONS": "abc"}, "WATCHER_MAX_CONNECTIONS"),
        (
            {"WATCHER_MIN_INTERVAL": "2d"},
            "WATCHER_MIN_INTERVAL=2d is longer than WATCHER_MAX_INTERVAL=1d",
        ),
        ({"WATCHER_RETRY_BACKOFF": "1m"}, "WATCHER_RETRY_BACKOFF=1m is longer than"),
        ({"WATCHER_MAX_INTERVAL": "999999999999d"}, "WATCHER_MAX_INTERVAL.*longer than 365d"),
        ({"WATCHER_RETIRE_AFTER": "400d"}, "WATCHER_RETIRE_AFTER.*longer than 365d"),
        ({"WATCHER_GRACE": "9" * 400}, "WATCHER_GRACE.*longer than 365d"),
        ({"WATCHER_LOG_LEVEL": "LOUD"}, "WATCHER_LOG_LEVEL='LOUD': use one of DEBUG, INFO"),
    ],
)
def test_values_that_would_fail_later_are_refused_now(env: dict[str, str], message: str) -> None:
    with pytest.raises(WatcherError, match=message) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_durations_are_bounded_at_a_year() -> None:
    assert parse_duration("365d") == MAX_DURATION_S
    for too_long in ("366d", "53w", "999999999999d", "1" + "0" * 400):
        with pytest.raises(WatcherError, match="longer than 365d"):
            parse_duration(too_long)


def test_an_empty_variable_means_the_default(tmp_path: Path) -> None:
    env = {"WATCHER_HOME": str(tmp_path), "WATCHER_TIMEOUT": "", "WATCHER_LOG_LEVEL": ""}
    settings = Settings.from_env(env)
    assert (settings.timeout, settings.log_level) == (20, "INFO")


def test_log_levels_are_case_insensitive() -> None:
    assert Settings.from_env({"WATCHER_LOG_LEVEL": "debug"}).log_level == "debug"


@pytest.mark.parametrize(
    ("env", "zone"),
    [
        ({}, "UTC"),
        ({"TZ": "Asia/Shanghai"}, "Asia/Shanghai"),
        ({"TZ": ":Europe/Berlin"}, "Europe/Berlin"),  # glibc's "a file of this name"
        ({"TZ": "CST-8"}, "UTC"),  # a POSIX rule names no zone a reader knows
        ({"TZ": "/etc/localtime"}, "UTC"),
        ({"TZ": "Mars/Olympus"}, "UTC"),
        ({"TZ": "Asia/Shanghai", "WATCHER_TIMEZONE": "America/New_York"}, "America/New_York"),
    ],
)
def test_the_time_zone_is_watchers_own_else_the_systems_else_utc(
    env: dict[str, str], zone: str, tmp_path: Path
) -> None:
    assert Settings.from_env(env, home=tmp_path).timezone == zone
