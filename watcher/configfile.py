"""Reading and checking ``watcher.toml`` (the README's "The config file").

:func:`load_config` turns the file into a :class:`~watcher.config.Config` or
raises one :class:`~watcher.errors.ConfigError` naming the file, line and key
of the first problem, so a typo stops ``watcher config check`` (and the daemon)
at once instead of silently routing nothing: an unknown key (with the nearest
valid names), a wrong type, a bad URL, duration, time range, regular expression
or CSS selector, a route to a channel that does not exist.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watcher.config import (
    CHANNEL_TYPES,
    DIGESTS,
    REPORTS_CHANNEL,
    ChannelConfig,
    Config,
    Route,
    SiteRules,
    SourceConfig,
)
from watcher.errors import ConfigError, WatcherError
from watcher.models import ChangeKind, Verdict
from watcher.settings import SPECS, Spec, parse_duration, parse_host_list, switch
from watcher.tomllines import KeyLines, KeyPath, dotted

#: Every key the file may hold, by where it may stand (the README documents each).
TABLES = ("watcher", "channels", "routes", "sources", "sites")
CHANNEL_KEYS: dict[str, tuple[str, ...]] = {
    "apprise": ("type", "url", "urls", "timeout", "limit"),
    # webhooks and exec hooks get the whole JSON record: no text to cut
    "webhook": ("type", "url", "secret", "secret_env", "timeout"),
    "exec": ("type", "command", "timeout"),
}
ROUTE_KEYS = ("channels", "tags", "verdicts", "kinds", "quiet_hours", "digest")
SOURCE_KEYS = ("url", "tags", "interval", "match")
SITE_KEYS = ("body", "ignore")

VERDICTS = (Verdict.SIGNIFICANT.value, Verdict.NOISE.value)
KINDS = tuple(kind.value for kind in ChangeKind)
DEFAULT_CHANNEL_TIMEOUT_S = 10.0
MAX_LIMIT = 10_000_000
_SPECS = {spec.name: spec for spec in SPECS}
_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$")
_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check ``path``. ``environ`` (default: the process environment)
    supplies the secrets that ``secret_env`` names."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(shown, f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(shown, "not UTF-8 text", line=line) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(shown, exc) from None
    env = os.environ if environ is None else environ
    return _Checker(path, text, env).config(data)


def setting_error(config: Config, name: str, reason: str) -> ConfigError:
    """``reason`` about the ``[watcher]`` setting ``name``, at its line. The
    file is scanned again: this only happens on the way out with an error."""
    return _error_at(config, ("watcher", name), reason, named=False)  # reason names it


def channel_error(config: Config, name: str, reason: str) -> ConfigError:
    """``reason`` about channel ``name``'s URL (found unusable when the channel
    is built: Apprise knows its schemes, this module does not import it)."""
    table = config.channels[name]
    key: tuple[str, ...] = ("channels", name, "urls" if len(table.urls) > 1 else "url")
    return _error_at(config, key, reason)


def _error_at(
    config: Config, key: tuple[str, ...], reason: str, *, named: bool = True
) -> ConfigError:
    path = config.path or Path("watcher.toml")
    try:
        line = KeyLines(path.read_text(encoding="utf-8")).line(key)
    except (OSError, UnicodeDecodeError):
        line = None
    return ConfigError(str(path), reason, line=line, key=".".join(key) if named else None)


def _syntax_error(shown: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    m = _TOML_AT.search(message)
    line = int(m.group(1)) if m else None
    reason = message[: m.start()] if m else message
    return ConfigError(shown, f"not valid TOML: {reason}", line=line)


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _kind(value: object) -> str:
    """What a TOML value is, in words."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _unknown(name: str, allowed: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name, allowed, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"use {', '.join(allowed)}"
    return f"unknown key{what}; {hint}"


class _Checker:
    """Checks one parsed file, turning each value into its dataclass; every
    error names the file, line and dotted key."""

    def __init__(self, path: Path, text: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.lines = KeyLines(text)
        self.environ = environ

    def error(self, key: KeyPath, reason: str) -> ConfigError:
        return ConfigError(str(self.path), reason, line=self.lines.line(key), key=dotted(key))

    def config(self, data: dict[str, Any]) -> Config:
        self.keys((), data, TABLES, "")
        channels = self.channels(data.get("channels", {}))
        routes = self.array(("routes",), data.get("routes", []))
        sources = self.array(("sources",), data.get("sources", []))
        return Config(
            path=self.path,
            settings=self.settings(data.get("watcher", {})),
            channels=channels,
            routes=tuple(self.route(("routes", i), r, channels) for i, r in enumerate(routes)),
            sources=self.sources(sources),
            sites=self.sites(data.get("sites", {})),
        )

    # -- shapes ---------------------------------------------------------------
    def keys(self, key: KeyPath, table: dict[str, Any], allowed: Sequence[str], what: str) -> None:
        for name in table:
            if name not in allowed:
                raise self.error((*key, name), _unknown(name, allowed, what))

    def table(self, key: KeyPath, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table ([{dotted(key)}]), not {_kind(value)}")
        return value

    def array(self, key: KeyPath, value: object) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, f"must be an array of tables ([[{dotted(key)}]])")
        return value

    def string(self, key: KeyPath, value: object) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be text, not {_kind(value)}")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def strings(self, key: KeyPath, value: object) -> tuple[str, ...]:
        """Text or a list of text (``tags = "x"`` is ``tags = ["x"]``)."""
        if isinstance(value, str):
            return (self.string(key, value),)
        if not isinstance(value, list):
            raise self.error(key, f"must be text or a list of text, not {_kind(value)}")
        return tuple(self.string((*key, i), item) for i, item in enumerate(value))

    def duration(self, key: KeyPath, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f'must be a duration like "10m", not {_kind(value)}')
        try:
            seconds = parse_duration(str(value))
        except WatcherError as exc:
            raise self.error(key, str(exc)) from None
        if not seconds > 0:
            raise self.error(key, "must be more than 0s")
        return seconds

    def http_url(self, key: KeyPath, value: object) -> str:
        url = self.string(key, value)
        try:
            parts = urlsplit(url)
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise self.error(key, f"{_shown(url)} is not an http(s) URL")
        return url

    def one_of(self, key: KeyPath, value: object, allowed: Sequence[str], what: str) -> str:
        text = self.string(key, value)
        if text not in allowed:
            close = difflib.get_close_matches(text, allowed, n=2)
            hint = f"did you mean {' or '.join(close)}?" if close else f"use {', '.join(allowed)}"
            raise self.error(key, f"{_shown(text)} is not {what}; {hint}")
        return text

    # -- [watcher] --------------------------------------------------------------
    def settings(self, value: object) -> dict[str, str]:
        """Setting name -> the text its environment variable would hold."""
        table = self.table(("watcher",), value)
        self.keys(("watcher",), table, tuple(_SPECS), " (settings go by name, e.g. timeout)")
        out: dict[str, str] = {}
        for name, item in table.items():
            key: KeyPath = ("watcher", name)
            spec = _SPECS[name]
            text = self.setting_text(key, spec, item)
            try:
                spec.parse(text)
            except WatcherError as exc:
                raise self.error(key, str(exc)) from None
            except ValueError:
                raise self.error(key, f"{_shown(text)} is not a whole number") from None
            out[name] = text
        return out

    def setting_text(self, key: KeyPath, spec: Spec, value: object) -> str:
        if isinstance(value, list) and spec.parse is parse_host_list:
            return ", ".join(self.string((*key, i), v) for i, v in enumerate(value))
        if isinstance(value, bool) and spec.parse is switch:
            return "on" if value else "off"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"must be text or a number, not {_kind(value)}")
        return str(value)

    # -- [channels.NAME] --------------------------------------------------------
    def channels(self, value: object) -> dict[str, ChannelConfig]:
        table = self.table(("channels",), value)
        return {name: self.channel(name, item) for name, item in table.items()}

    def channel(self, name: str, value: object) -> ChannelConfig:
        key: KeyPath = ("channels", name)
        if name == REPORTS_CHANNEL:
            raise self.error(key, "'reports' is the built-in report channel; use another name")
        if not name.strip():
            raise self.error(key, "a channel needs a name")
        table = self.table(key, value)
        kind = self.one_of((*key, "type"), table.get("type", "apprise"), CHANNEL_TYPES, "a type")
        for item in table:
            types = [t for t, keys in CHANNEL_KEYS.items() if item in keys]
            if kind not in types and types:
                of = " and ".join(types)
                raise self.error((*key, item), f"is a key of {of} channels, not of {kind} ones")
        self.keys(key, table, CHANNEL_KEYS[kind], f" for a {kind} channel")
        base = ChannelConfig(
            name=name,
            type=kind,
            timeout_s=self.duration((*key, "timeout"), table["timeout"])
            if "timeout" in table
            else DEFAULT_CHANNEL_TIMEOUT_S,
            limit=self.limit((*key, "limit"), table["limit"]) if "limit" in table else None,
        )
        if kind == "webhook":
            url = self.http_url((*key, "url"), self.required(key, table, "url", kind))
            return replace(base, urls=(url,), secret=self.secret(key, table))
        if kind == "exec":
            return replace(base, command=self.command(key, table))
        return replace(base, urls=self.apprise_urls(key, table))

    def required(self, key: KeyPath, table: dict[str, Any], name: str, kind: str) -> object:
        if name not in table:
            raise self.error(key, f"a {kind} channel needs {name}")
        return table[name]

    def limit(self, key: KeyPath, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT:
            raise self.error(key, f"must be a whole number of characters, 1 to {MAX_LIMIT}")
        return value

    def apprise_urls(self, key: KeyPath, table: dict[str, Any]) -> tuple[str, ...]:
        if "url" in table and "urls" in table:
            raise self.error((*key, "urls"), "use url or urls, not both")
        name = "url" if "url" in table else "urls"
        urls = self.strings((*key, name), self.required(key, table, name, "apprise"))
        if not urls:
            raise self.error((*key, name), "must not be empty")
        for i, url in enumerate(urls):
            if not _APPRISE_URL.match(url):
                where: KeyPath = (*key, name, i) if isinstance(table[name], list) else (*key, name)
                raise self.error(where, f"{_shown(url)} is not an Apprise URL like mailto://…")
        return urls

    def secret(self, key: KeyPath, table: dict[str, Any]) -> str:
        if "secret" in table and "secret_env" in table:
            raise self.error((*key, "secret_env"), "use secret or secret_env, not both")
        if "secret" in table:
            return self.string((*key, "secret"), table["secret"])
        if "secret_env" not in table:
            raise self.error(
                key, "a webhook channel needs secret (or secret_env): receivers check its signature"
            )
        variable = self.string((*key, "secret_env"), table["secret_env"])
        secret = self.environ.get(variable, "")
        if not secret:
            raise self.error(
                (*key, "secret_env"), f"the environment variable {variable} is not set"
            )
        return secret

    def command(self, key: KeyPath, table: dict[str, Any]) -> tuple[str, ...]:
        value = self.required(key, table, "command", "exec")
        if not isinstance(value, list) or not value:
            raise self.error(
                (*key, "command"), 'must be a list like ["/usr/local/bin/on-change", "--json"]'
            )
        return tuple(self.string((*key, "command", i), v) for i, v in enumerate(value))

    # -- [[routes]] ---------------------------------------------------------------
    def route(self, key: KeyPath, table: dict[str, Any], channels: Mapping[str, object]) -> Route:
        self.keys(key, table, ROUTE_KEYS, " for a route")
        if "channels" not in table:
            raise self.error(key, 'a route needs channels = ["…"]')
        names = self.strings((*key, "channels"), table["channels"])
        if not names:
            raise self.error((*key, "channels"), "must not be empty")
        for i, name in enumerate(names):
            self.route_channel((*key, "channels", i), name, channels)
        verdicts = self.choices(key, table, "verdicts", VERDICTS, "a verdict")
        if not verdicts:
            raise self.error(
                (*key, "verdicts"), "must not be empty (the route would match nothing)"
            )
        quiet = table.get("quiet_hours")
        digest = table.get("digest")
        return Route(
            channels=names,
            tags=self.strings((*key, "tags"), table.get("tags", [])),
            verdicts=verdicts,
            kinds=self.choices(key, table, "kinds", KINDS, "a change kind"),
            quiet_hours=None if quiet is None else self.quiet_hours((*key, "quiet_hours"), quiet),
            digest=None
            if digest is None
            else self.one_of((*key, "digest"), digest, DIGESTS, "a digest"),
        )

    def route_channel(self, key: KeyPath, name: str, channels: Mapping[str, object]) -> None:
        if name == REPORTS_CHANNEL:
            raise self.error(key, "'reports' gets every change already; name [channels.*] only")
        if name not in channels:
            known = ", ".join(channels) or "none"
            raise self.error(key, f"no channel named {_shown(name)} (channels: {known})")

    def choices(
        self, key: KeyPath, table: dict[str, Any], name: str, allowed: Sequence[str], what: str
    ) -> tuple[str, ...]:
        if name not in table:
            return ("significant",) if name == "verdicts" else ()
        value = table[name]
        items = self.strings((*key, name), value)
        return tuple(
            self.one_of(
                (*key, name, i) if isinstance(value, list) else (*key, name), v, allowed, what
            )
            for i, v in enumerate(items)
        )

    def quiet_hours(self, key: KeyPath, value: object) -> tuple[time, time]:
        text = self.string(key, value)
        m = _QUIET.match(text)
        h1, m1, h2, m2 = (int(g) for g in m.groups()) if m else (-1, 0, 0, 0)
        if not (0 <= h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60):
            raise self.error(key, f'{_shown(text)} is not a time range like "22:00-07:00"')
        if (h1, m1) == (h2, m2):
            raise self.error(key, f"{_shown(text)} starts when it ends")
        return time(h1, m1), time(h2, m2)

    # -- [[sources]] ----------------------------------------------------------------
    def sources(self, tables: list[dict[str, Any]]) -> tuple[SourceConfig, ...]:
        out: dict[str, SourceConfig] = {}
        for i, table in enumerate(tables):
            key: KeyPath = ("sources", i)
            self.keys(key, table, SOURCE_KEYS, " for a source")
            if "url" not in table:
                raise self.error(key, 'a source needs url = "https://…"')
            url = self.http_url((*key, "url"), table["url"])
            if url in out:
                raise self.error((*key, "url"), f"{_shown(url)} is already a source")
            interval = table.get("interval")
            out[url] = SourceConfig(
                url=url,
                tags=self.strings((*key, "tags"), table.get("tags", [])),
                interval_s=None
                if interval is None
                else self.duration((*key, "interval"), interval),
                match=None if "match" not in table else self.regex((*key, "match"), table["match"]),
            )
        return tuple(out.values())

    def regex(self, key: KeyPath, value: object) -> str:
        text = self.string(key, value)
        try:
            re.compile(text)
        except re.error as exc:
            raise self.error(key, f"{_shown(text)} is not a regular expression: {exc}") from None
        return text

    # -- [sites."HOST"] -------------------------------------------------------------
    def sites(self, value: object) -> dict[str, SiteRules]:
        out: dict[str, SiteRules] = {}
        for host, item in self.table(("sites",), value).items():
            key: KeyPath = ("sites", host)
            name = host.strip().lower()
            if not _HOST.match(name):
                raise self.error(key, f"{_shown(host)} is not a host name like www.bbc.com")
            if name in out:
                raise self.error(key, f"{name} has rules already")
            table = self.table(key, item)
            self.keys(key, table, SITE_KEYS, " for a site")
            out[name] = SiteRules(
                host=name,
                body=self.selectors((*key, "body"), table.get("body", [])),
                ignore=self.selectors((*key, "ignore"), table.get("ignore", [])),
            )
        return out

    def selectors(self, key: KeyPath, value: object) -> tuple[str, ...]:
        # Only a [sites] table has selectors: every command reads this file,
        # and most should not pay for cssselect's import (issue 12).
        from cssselect import GenericTranslator, SelectorError  # noqa: PLC0415

        selectors = self.strings(key, value)
        for i, selector in enumerate(selectors):
            try:
                GenericTranslator().css_to_xpath(selector)
            except SelectorError as exc:
                where: KeyPath = (*key, i) if isinstance(value, list) else key
                raise self.error(
                    where, f"{_shown(selector)} is not a CSS selector: {exc}"
                ) from None
        return selectors
