"""Atom 1.0 (RFC 4287) from plain entry values (pure).

The report site decides what a feed holds (:mod:`watcher.site`); this module
only writes it correctly: every text escaped, characters XML 1.0 cannot carry
replaced, control characters and bidi overrides removed from titles,
summaries and links (a feed reader shows them raw, so an archived U+202E
would make a title read backwards), links only relative or http(s), times in
RFC 3339 UTC, and ids as tag: URIs (RFC 4151) that stay the same whoever
builds the feed and wherever it is published, so a feed reader never shows a
change twice.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.safetext import UNSAFE_CHARS
from watcher.safeurl import WEB_SCHEMES, browser_url, scheme

# RFC 4151 wants an authority and a date; ".invalid" (RFC 2606) can belong to
# no one, so these ids cannot collide with anybody else's.
TAG_AUTHORITY = "tag:watcher.invalid,2026:"

# What XML 1.0 forbids even escaped (the report already shows C0/C1 as \uXXXX).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry; ``content_html`` is HTML that the feed carries as escaped text."""

    id: str
    title: str
    updated_ms: int
    link: str
    summary: str
    content_html: str = ""


@dataclass(frozen=True, slots=True)
class FeedInfo:
    id: str
    title: str
    self_link: str
    alternate_link: str
    subtitle: str = ""
    author: str = "watcher"


def tag_uri(specific: str) -> str:
    return TAG_AUTHORITY + specific


def atom_time(ms: int) -> str:
    """Epoch ms as an RFC 3339 UTC timestamp; the epoch itself if out of range."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00Z"


def _x(value: object) -> str:
    return html.escape(_XML_INVALID.sub("\ufffd", str(value)), quote=True)


def _text(value: object) -> str:
    """A title, summary or name: escaped, without controls or bidi characters."""
    return _x(UNSAFE_CHARS.sub("", str(value)))


def _link(url: str) -> str:
    """An href as a browser would follow it; empty unless relative or http(s)."""
    href = browser_url(UNSAFE_CHARS.sub("", url))
    return _x(href) if scheme(href) in WEB_SCHEMES | {""} else ""


def render_atom(info: FeedInfo, entries: Sequence[FeedEntry], *, now_ms: int = 0) -> str:
    """The feed document. ``updated`` is the newest entry's time (so an unchanged
    feed is byte-identical), or ``now_ms`` for an empty feed."""
    updated = max((e.updated_ms for e in entries), default=now_ms)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<id>{_x(info.id)}</id>",
        f"<title>{_text(info.title)}</title>",
    ]
    if info.subtitle:
        out.append(f"<subtitle>{_text(info.subtitle)}</subtitle>")
    out += [
        f"<updated>{atom_time(updated)}</updated>",
        f"<author><name>{_text(info.author)}</name></author>",
        '<generator version="0.1">watcher</generator>',
        f'<link rel="self" type="application/atom+xml" href="{_link(info.self_link)}"/>',
        f'<link rel="alternate" type="text/html" href="{_link(info.alternate_link)}"/>',
    ]
    out += [_entry(e) for e in entries]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def _entry(entry: FeedEntry) -> str:
    lines = [
        "<entry>",
        f"<id>{_x(entry.id)}</id>",
        f"<title>{_text(entry.title)}</title>",
        f"<updated>{atom_time(entry.updated_ms)}</updated>",
        f'<link rel="alternate" type="text/html" href="{_link(entry.link)}"/>',
        f"<summary>{_text(entry.summary)}</summary>",
    ]
    if entry.content_html:
        lines.append(f'<content type="html">{_x(entry.content_html)}</content>')
    lines.append("</entry>")
    return "\n".join(lines)
