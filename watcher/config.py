"""``watcher.toml``: settings, notification channels, routes, sources and
per-site extraction rules, in one file read with the standard library.

Precedence: environment variable > config file > default (see settings.py).

This module holds the parsed shape of the file; every value in it has been
validated (see :func:`load_config`), so the rest of watcher never sees raw TOML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

#: The built-in channel that writes the report files; always routed, never configured.
REPORTS_CHANNEL = "reports"
CHANNEL_TYPES = ("apprise", "webhook", "exec")
DIGESTS = ("hour", "day")


@dataclass(frozen=True)
class ChannelConfig:
    """Where messages go. ``apprise``: ``url`` is one or more Apprise URLs
    (mailto://, tgram://, slack://, ntfy://, …); ``webhook``: a POST of the JSON
    change record to ``url``, signed with ``secret``; ``exec``: ``command`` run
    with the JSON on stdin."""

    name: str
    type: str
    urls: tuple[str, ...] = ()
    secret: str | None = None
    command: tuple[str, ...] = ()
    timeout_s: float = 10.0
    #: Longest message body in characters; None: the channel type's own limit.
    limit: int | None = None


@dataclass(frozen=True)
class Route:
    """Which changes go to which channels. Empty ``tags``/``kinds`` match any;
    ``quiet_hours`` (start, end) in the configured time zone holds messages
    until the end; ``digest`` sends one message per hour or day instead."""

    channels: tuple[str, ...]
    tags: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ("significant",)
    kinds: tuple[str, ...] = ()
    quiet_hours: tuple[time, time] | None = None
    digest: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    """A feed or section page to discover articles from (synced into the database)."""

    url: str
    tags: tuple[str, ...] = ()
    interval_s: float | None = None
    match: str | None = None


@dataclass(frozen=True)
class SiteRules:
    """Per-host extraction rules: CSS selectors for the article body and for
    blocks to ignore."""

    host: str
    body: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """Changes whenever the rules do: part of the raw-body shortcut, so new
        rules re-baseline the site's next version instead of diffing noise."""
        data = json.dumps({"body": self.body, "ignore": self.ignore}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Config:
    """The parsed file; ``Config()`` is the empty configuration (no file)."""

    path: Path | None = None
    #: Setting name -> value as text, as the environment would give it.
    settings: dict[str, str] = field(default_factory=dict)
    channels: dict[str, ChannelConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    sites: dict[str, SiteRules] = field(default_factory=dict)

    def rules_for(self, host: str) -> SiteRules | None:
        """The rules of ``host``: a ``www.`` on either side is ignored, so
        ``[sites."www.bbc.com"]`` applies to bbc.com and www.bbc.com alike."""
        bare = host.lower().removeprefix("www.")
        return self.sites.get(bare) or self.sites.get(f"www.{bare}")
