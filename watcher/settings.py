"""Every setting, declared once: name, environment variable, default, help.

This is the only module that reads the environment (and, through
:mod:`watcher.configfile`, the config file). The README's settings table is
checked against ``SPECS`` by a test, so a new setting cannot go undocumented.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_data_dir

from watcher.config import Config
from watcher.errors import WatcherError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


DATABASE_NAME = "watcher.db"

#: The longest duration any setting or ``--interval`` takes: beyond it a
#: schedule's arithmetic overflows (epoch milliseconds, datetime) long before
#: it means anything.
MAX_DURATION_S = 365 * 86400


def parse_duration(text: str) -> float:
    """'90s', '10m', '2h', '1d' -> seconds; a bare number is seconds.

    At most :data:`MAX_DURATION_S` (365d); WatcherError otherwise.
    """
    m = _DURATION_RE.match(text)
    if m is None:
        raise WatcherError(f"{_shown(text)} is not a duration like 30s, 10m, 2h or 1d")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not seconds <= MAX_DURATION_S:  # also refuses inf from a few hundred digits
        raise WatcherError(f"{_shown(text)} is longer than {format_duration(MAX_DURATION_S)}")
    return seconds


def _duration(value: Any) -> str:
    try:
        return format_duration(float(value))
    except (TypeError, ValueError):
        return repr(value)


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut short if long."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


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


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?\.?$")


def parse_host_list(text: str) -> tuple[str, ...]:
    """'intranet.example, 10.0.0.0/8, 127.0.0.1' -> host names (lower case) and
    networks (CIDR, an address being a /32 or /128), in the order given."""
    out: list[str] = []
    for raw in text.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            out.append(str(ipaddress.ip_network(entry.strip("[]"), strict=False)))
            continue
        except ValueError:
            pass
        if "/" in entry or not _HOST_NAME.match(entry):
            raise WatcherError(f"{raw.strip()!r} is not a host name, an address or a CIDR range")
        out.append(entry.rstrip("."))
    return tuple(out)


def _host_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """WATCHER_ALLOW_HOSTS as parsed, unset (""), or an override (text or entries)."""
    return parse_host_list(value if isinstance(value, str) else ",".join(value))


@dataclass(frozen=True)
class Spec:
    name: str
    env: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def _contact(text: str) -> str:
    """Printable ASCII without parentheses: it goes inside the User-Agent's comment."""
    value = text.strip()
    if not all(" " <= ch <= "~" and ch not in "()" for ch in value):
        raise WatcherError("use printable ASCII without parentheses, e.g. ops@example.org")
    return value


def switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise WatcherError("use on or off")


DEFAULT_BIND = "127.0.0.1:8765"


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) as (host, port); WatcherError otherwise."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise WatcherError(f"use HOST:PORT, e.g. {DEFAULT_BIND}")
    return host, int(port)


def _bind(text: str) -> str:
    parse_bind(text)
    return text.strip()


def _source_interval(text: str) -> float:
    seconds = parse_duration(text)
    if seconds < 60:
        raise WatcherError("must be at least 1m: be kind to news sites")
    return seconds


def user_agent(contact: str = "") -> str:
    """The default User-Agent: the tool, its version, what it does, and how a
    site's operators reach whoever runs it (there is no project website to name)."""
    from watcher import __version__  # noqa: PLC0415 - the package imports nothing at load

    about = f"news change monitor; contact: {contact}" if contact else "news change monitor"
    return f"watcher/{__version__} ({about})"


def _default_home() -> str:
    return user_data_dir("watcher", appauthor=False)


SPECS: tuple[Spec, ...] = (
    Spec("home", "WATCHER_HOME", "", "Data folder: database, archive, reports. "
         "Default: the platform data dir (~/.local/share/watcher).", Path),
    Spec("database_url", "WATCHER_DATABASE_URL", "", "SQLAlchemy URL. Default: SQLite "
         "in the data folder; use postgresql+psycopg://… to share one list between daemons."),
    Spec("timezone", "WATCHER_TIMEZONE", "UTC",
         "Time zone the CLI prints times in and reports show beside UTC. "
         "Default: the system's (TZ), else UTC."),
    Spec("user_agent", "WATCHER_USER_AGENT", "",
         "User-Agent sent with every request, replacing the default "
         "watcher/<version> (news change monitor; contact: <WATCHER_CONTACT>)."),
    Spec("contact", "WATCHER_CONTACT", "",
         "How a site's operators can reach you (an e-mail address or URL), put in the "
         "default User-Agent. Default: none.", _contact),
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
    Spec("allow_hosts", "WATCHER_ALLOW_HOSTS", "",
         "Exceptions to the rule that only public addresses are fetched: comma-separated "
         "host names, addresses and CIDR ranges (e.g. intranet.example,10.1.0.0/16). "
         "Default: none; loopback, private, link-local, … addresses are refused.",
         parse_host_list),
    Spec("min_interval", "WATCHER_MIN_INTERVAL", "5m",
         "Adaptive schedule: interval while an article is young or just changed.",
         parse_duration),
    Spec("max_interval", "WATCHER_MAX_INTERVAL", "1d",
         "Adaptive schedule: the longest interval for an unchanged article.", parse_duration),
    Spec("retire_after", "WATCHER_RETIRE_AFTER", "30d",
         "Adaptive schedule: stop checking an article this long after it was added "
         "(0 = never). Pinned --interval watches are never retired.", parse_duration),
    Spec("source_interval", "WATCHER_SOURCE_INTERVAL", "10m",
         "How often a feed or section page is polled unless its source says (at least 1m).",
         _source_interval),
    Spec("check_retention", "WATCHER_CHECK_RETENTION", "500",
         "Check-log rows kept per watch (newest first); versions are never pruned.", int),
    Spec("poll", "WATCHER_POLL", "5s", "How often the daemon looks for due watches.",
         parse_duration),
    Spec("grace", "WATCHER_GRACE", "20s",
         "On SIGTERM, how long in-flight fetches may finish before they are abandoned.",
         parse_duration),
    Spec("public_url", "WATCHER_PUBLIC_URL", "",
         "Public base URL of the report site (e.g. https://watch.example.org/), for "
         "links in notifications. Default: none; messages carry no report link."),
    Spec("serve_token", "WATCHER_SERVE_TOKEN", "",
         "Bearer token that allows writes through the web API (adding watches, changing "
         "their interval or tags, pausing, resuming). Default: none; read-only."),
    Spec("http", "WATCHER_HTTP", "",
         "Serve the web UI and JSON API from inside watcher run, at HOST:PORT "
         "(e.g. 127.0.0.1:8765; the same as watcher serve). Default: none, not served.",
         _bind),
    Spec("delivery_attempts", "WATCHER_DELIVERY_ATTEMPTS", "8",
         "Attempts to deliver a message before it becomes a dead letter "
         "(see watcher deliveries).", int),
    Spec("delivery_backoff", "WATCHER_DELIVERY_BACKOFF", "30s",
         "Wait before retrying a failed delivery; it doubles per attempt, up to 1h.",
         parse_duration),
    Spec("log_format", "WATCHER_LOG_FORMAT", "text", "Log format: text or json."),
    Spec("log_level", "WATCHER_LOG_LEVEL", "INFO", "Log level."),
    Spec("warc", "WATCHER_WARC", "on",
         "Write every fetch, as received, to WARC files in the data folder's warc/ "
         "(on or off).", switch),
    Spec("warc_size", "WATCHER_WARC_SIZE", "100MB",
         "Start a new WARC file once the current one passes this size.", _size),
)  # fmt: skip


#: Whole numbers: (least, most). Outside, they do nothing useful or overflow
#: later (the retry backoff doubles per attempt; retention is a SQL offset).
_INT_RANGES: dict[str, tuple[int, int]] = {
    "max_connections": (1, 10_000),
    "per_host": (1, 10_000),
    "retries": (0, 20),
    "check_retention": (1, 10_000_000),
    "max_body": (1, 1024**4),
    "delivery_attempts": (1, 100),
    "warc_size": (1024 * 1024, 1024**4),
}
#: Durations that must be more than zero: a zero timeout fails every fetch, a
#: zero poll spins, a zero interval hammers the site.
_POSITIVE_DURATIONS = (
    "timeout", "poll", "min_interval", "max_interval", "retry_backoff_max", "delivery_backoff",
)  # fmt: skip
#: (shorter, longer): pairs of durations that must come in this order.
_ORDERED_DURATIONS = (("min_interval", "max_interval"), ("retry_backoff", "retry_backoff_max"))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ENV = {s.name: s.env for s in SPECS}

#: The config file's variable (not a Spec: it says where settings come from).
CONFIG_ENV = "WATCHER_CONFIG"
#: The config file looked for in the data folder.
CONFIG_NAME = "watcher.toml"


class _Refused(Exception):
    """A bad value of setting ``name``; from_env says whose (variable or file)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


def _validate(values: dict[str, Any], label: Callable[[str], str]) -> None:
    """Refuse values that would only fail later, obscurely (a hung fetch, an
    overflowing schedule, a report that cannot be rendered), naming the
    variable or config key (``label``)."""
    for name, (least, most) in _INT_RANGES.items():
        if not least <= int(values[name]) <= most:
            raise _Refused(name, f"{label(name)}={values[name]!r}: must be {least} to {most}")
    for name in _POSITIVE_DURATIONS:
        if not float(values[name]) > 0:
            raise _Refused(name, f"{label(name)}={_duration(values[name])}: must be more than 0s")
    for short, long in _ORDERED_DURATIONS:
        if float(values[short]) > float(values[long]):
            raise _Refused(
                short,
                f"{label(short)}={_duration(values[short])} is longer than "
                f"{label(long)}={_duration(values[long])}",
            )
    if str(values["log_level"]).upper() not in LOG_LEVELS:
        raise _Refused(
            "log_level",
            f"{label('log_level')}={_shown(str(values['log_level']))}: use one of "
            + ", ".join(LOG_LEVELS),
        )
    if values["log_format"] not in ("text", "json"):
        raise _Refused(
            "log_format", f"{label('log_format')}={values['log_format']!r}: use text or json"
        )
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise _Refused(
            "timezone",
            f"{label('timezone')}={values['timezone']!r}: not a time zone such as Asia/Shanghai",
        ) from None


def _system_zone(tz: str) -> str:
    """The zone TZ names (``Asia/Shanghai`` or ``:Asia/Shanghai``), else UTC: a
    POSIX rule such as ``CST-8`` names no zone a reader would recognise."""
    name = tz.strip().removeprefix(":")
    if not name or name.startswith("/"):
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def find_config(
    environ: Mapping[str, str],
    config_path: Path | str | None = None,
    home: Path | str | None = None,
) -> Path | None:
    """The config file to read: ``config_path`` (``--config``), else
    ``$WATCHER_CONFIG``, else ``watcher.toml`` in the data folder if there is
    one. A file named explicitly must exist (load_config says so if not)."""
    named = config_path or environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser()
    folder = Path(home or environ.get("WATCHER_HOME") or _default_home()).expanduser()
    candidate = folder / CONFIG_NAME
    return candidate if candidate.is_file() else None


def _raw_values(env: Mapping[str, str], config: Config) -> tuple[dict[str, str], set[str]]:
    """Each setting's text from its variable, else the config file, else the
    default; and the names whose text came from the file."""
    raw: dict[str, str] = {}
    from_file: set[str] = set()
    for spec in SPECS:
        raw[spec.name] = env.get(spec.env) or ""  # set but empty: not set
        if not raw[spec.name] and config.settings.get(spec.name):
            raw[spec.name] = config.settings[spec.name]
            from_file.add(spec.name)
        raw[spec.name] = raw[spec.name] or spec.default
    return raw, from_file


def _parse(raw: dict[str, str], label: Callable[[str], str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in SPECS:
        text = raw[spec.name]
        try:
            values[spec.name] = spec.parse(text) if text != "" else text
        except (ValueError, WatcherError) as exc:
            raise _Refused(spec.name, f"{label(spec.name)}={_shown(text)}: {exc}") from exc
    return values


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
    #: Host names and CIDR ranges fetched although not public (WATCHER_ALLOW_HOSTS).
    allow_hosts: tuple[str, ...] = ()
    #: Keep every request and response as received, for the WARC log (WATCHER_WARC).
    record: bool = False

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
    contact: str
    timeout: float
    max_body: int
    max_connections: int
    per_host: int
    retries: int
    retry_backoff: float
    retry_backoff_max: float
    allow_hosts: tuple[str, ...]
    min_interval: float
    max_interval: float
    retire_after: float
    source_interval: float
    check_retention: int
    poll: float
    grace: float
    public_url: str
    serve_token: str
    http: str
    delivery_attempts: int
    delivery_backoff: float
    log_format: str
    log_level: str
    warc: bool
    warc_size: int
    #: The parsed config file (channels, routes, sources, site rules); its
    #: settings are already merged into the fields above.
    config: Config = field(default_factory=Config, compare=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        config_path: Path | str | None = None,
        **overrides: Any,
    ) -> Settings:
        """Each setting from, first found: ``overrides`` (command-line options),
        the environment, the config file's ``[watcher]`` table, the default.
        The config file is the one :func:`find_config` names, if any."""
        # configfile checks values with this module's parsers, so it imports us.
        from watcher.configfile import load_config, setting_error  # noqa: PLC0415

        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        path = find_config(env, config_path, given.get("home"))
        config = Config() if path is None else load_config(path, env)
        raw, from_file = _raw_values(env, config)
        from_file -= given.keys()

        def label(name: str) -> str:
            return f"watcher.{name}" if name in from_file else _ENV[name]

        try:
            values = _parse(raw, label)
            values.update(given)
            _validate(values, label)
        except _Refused as exc:
            if exc.name in from_file:
                raise setting_error(config, exc.name, str(exc)) from None
            raise WatcherError(str(exc)) from None
        values["config"] = config
        if (
            "timezone" not in given
            and "timezone" not in from_file
            and not env.get(_ENV["timezone"])
        ):
            values["timezone"] = _system_zone(env.get("TZ", ""))
        home = Path(values["home"] or _default_home()).expanduser()
        values["home"] = home
        values["allow_hosts"] = _host_list(values["allow_hosts"])
        values["user_agent"] = values["user_agent"] or user_agent(values["contact"])
        if not values["database_url"]:
            values["database_url"] = f"sqlite:///{home / DATABASE_NAME}"
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
            allow_hosts=self.allow_hosts,
            record=self.warc,
        )

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def warc_dir(self) -> Path:
        return self.home / "warc"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def default_database_url(self) -> str:
        """The SQLite database in the data folder (used unless WATCHER_DATABASE_URL)."""
        return f"sqlite:///{self.home / DATABASE_NAME}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


assert {f.name for f in fields(Settings)} - {"config"} == {s.name for s in SPECS}
