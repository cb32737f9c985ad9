"""Every setting, declared once: name, environment variable, default, help.

This is the only module that reads the environment. The README's settings
table is checked against ``SPECS`` by a test, so a new setting cannot go
undocumented.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_data_dir

from watcher.errors import WatcherError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str) -> float:
    """'90s', '10m', '2h', '1d' -> seconds; a bare number is seconds."""
    m = _DURATION_RE.match(text)
    if m is None:
        raise WatcherError(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _size(text: str) -> int:
    m = re.match(r"^\s*(\d+)\s*([kKmMgG]i?[bB]?)?\s*$", text)
    if m is None:
        raise WatcherError(f"{text!r} is not a size like 10MB")
    unit = (m.group(2) or "").upper()[:1]
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]


@dataclass(frozen=True)
class Spec:
    name: str
    env: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def _default_home() -> str:
    return user_data_dir("watcher", appauthor=False)


SPECS: tuple[Spec, ...] = (
    Spec("home", "WATCHER_HOME", "", "Data folder: database, archive, reports. "
         "Default: the platform data dir (~/.local/share/watcher).", Path),
    Spec("database_url", "WATCHER_DATABASE_URL", "", "SQLAlchemy URL. Default: SQLite "
         "in the data folder; use postgresql+psycopg://… to share one list between daemons."),
    Spec("timezone", "WATCHER_TIMEZONE", "UTC", "Time zone for report times (besides UTC)."),
    Spec("user_agent", "WATCHER_USER_AGENT", "watcher/0.1 (+https://github.com/watcher)",
         "User-Agent sent with every request."),
    Spec("timeout", "WATCHER_TIMEOUT", "20s", "Time limit for one fetch attempt.",
         parse_duration),
    Spec("max_body", "WATCHER_MAX_BODY", "10MB", "Largest page body accepted.", _size),
    Spec("max_connections", "WATCHER_MAX_CONNECTIONS", "20",
         "Fetches in flight at once, over all hosts.", int),
    Spec("per_host", "WATCHER_PER_HOST", "4", "Fetches in flight at once per host.", int),
    Spec("retries", "WATCHER_RETRIES", "3",
         "Extra attempts after a timeout, 5xx or 429 (exponential backoff with jitter).", int),
    Spec("retry_backoff", "WATCHER_RETRY_BACKOFF", "0.5s",
         "Wait before the first retry; it doubles per attempt, with jitter.", parse_duration),
    Spec("retry_backoff_max", "WATCHER_RETRY_BACKOFF_MAX", "30s",
         "The longest wait between two attempts (a Retry-After above it is capped).",
         parse_duration),
    Spec("min_interval", "WATCHER_MIN_INTERVAL", "5m",
         "Adaptive schedule: interval while an article is young or just changed.",
         parse_duration),
    Spec("max_interval", "WATCHER_MAX_INTERVAL", "1d",
         "Adaptive schedule: the longest interval for an unchanged article.", parse_duration),
    Spec("retire_after", "WATCHER_RETIRE_AFTER", "30d",
         "Adaptive schedule: stop checking an article this long after it was added "
         "(0 = never). Pinned --interval watches are never retired.", parse_duration),
    Spec("check_retention", "WATCHER_CHECK_RETENTION", "500",
         "Check-log rows kept per watch (newest first); versions are never pruned.", int),
    Spec("poll", "WATCHER_POLL", "5s", "How often the daemon looks for due watches.",
         parse_duration),
    Spec("grace", "WATCHER_GRACE", "20s",
         "On SIGTERM, how long in-flight fetches may finish before they are abandoned.",
         parse_duration),
    Spec("log_format", "WATCHER_LOG_FORMAT", "text", "Log format: text or json."),
    Spec("log_level", "WATCHER_LOG_LEVEL", "INFO", "Log level."),
)  # fmt: skip


_AT_LEAST_ONE = ("max_connections", "per_host", "check_retention", "max_body")


def _validate(values: dict[str, Any]) -> None:
    """Refuse values that would only fail later, obscurely (a hung fetch, a
    report that cannot be rendered)."""
    env = {s.name: s.env for s in SPECS}
    for name in _AT_LEAST_ONE:
        if int(values[name]) < 1:
            raise WatcherError(f"{env[name]}={values[name]!r}: must be at least 1")
    if values["log_format"] not in ("text", "json"):
        raise WatcherError(f"{env['log_format']}={values['log_format']!r}: use text or json")
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise WatcherError(
            f"{env['timezone']}={values['timezone']!r}: not a time zone such as Asia/Shanghai"
        ) from None


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How the fetcher behaves; built by :meth:`Settings.fetch_settings`, so
    its values (and defaults) are the Settings' own.

    ``retries`` counts extra attempts, so a request is tried at most
    ``retries + 1`` times.
    """

    timeout_s: float
    max_body_bytes: int
    user_agent: str
    max_connections: int
    per_host: int
    retries: int
    backoff_base_s: float
    backoff_max_s: float

    @property
    def worst_case_s(self) -> float:
        """The longest one fetch can take: every attempt timing out, every
        wait at its cap."""
        return self.timeout_s * (self.retries + 1) + self.backoff_max_s * self.retries


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    timezone: str
    user_agent: str
    timeout: float
    max_body: int
    max_connections: int
    per_host: int
    retries: int
    retry_backoff: float
    retry_backoff_max: float
    min_interval: float
    max_interval: float
    retire_after: float
    check_retention: int
    poll: float
    grace: float
    log_format: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SPECS:
            raw = env.get(spec.env, spec.default)
            try:
                values[spec.name] = spec.parse(raw) if raw != "" else raw
            except (ValueError, WatcherError) as exc:
                raise WatcherError(f"{spec.env}={raw!r}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        _validate(values)
        home = Path(values["home"] or _default_home()).expanduser()
        values["home"] = home
        if not values["database_url"]:
            values["database_url"] = f"sqlite:///{home / 'watcher.db'}"
        return cls(**values)

    def fetch_settings(self) -> FetchSettings:
        """The part of the settings the fetcher uses."""
        return FetchSettings(
            timeout_s=self.timeout,
            max_body_bytes=self.max_body,
            user_agent=self.user_agent,
            max_connections=self.max_connections,
            per_host=self.per_host,
            retries=self.retries,
            backoff_base_s=self.retry_backoff,
            backoff_max_s=self.retry_backoff_max,
        )

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


assert {f.name for f in fields(Settings)} == {s.name for s in SPECS}
