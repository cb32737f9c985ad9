"""Discovery: a feed or a section page in, the article links it lists out (pure).

A feed (RSS 0.9x/1.0/2.0, Atom, RDF — whatever feedparser reads — or a JSON
Feed) gives its entries with GUID, published/updated times and title. An
HTML page gives the links its own structure marks as articles:

* links inside ``<nav>``, ``<header>``, ``<footer>``, ``<aside>``, forms and
  elements named like menus, breadcrumbs, pagers or share bars are never
  articles, nor ``#fragment``, ``javascript:``, ``mailto:`` links, the page
  itself or its parent sections, nor paths through tag, category, author,
  login, search, feed, pagination... segments;
* a link is an article when its path looks like one (a run of 4+ digits — an
  id or a date —, a slug of 3+ words, an ``.html`` file), or when the page
  puts it in an ``<article>``, an ``h1``-``h3`` or a list in ``<main>`` and
  its path is at least two segments deep and ends in a slug;
* only links of the page's own site (registrable domain) count.

Feed links may point to another host (feeds are often served elsewhere).
Every link is normalised (:func:`watcher.urlnorm.normalise_url`),
deduplicated, filtered by the source's ``match`` regular expression, and at
most :data:`MAX_LINKS` are kept per document.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser  # type: ignore[import-untyped]
import lxml.html
from lxml import etree

from watcher.errors import InvalidURLError, WatcherError
from watcher.feedmeta import Entry
from watcher.imageid import registrable_domain
from watcher.urlnorm import normalise_url

MAX_LINKS = 200
MAX_TITLE = 300
FEED = "feed"
PAGE = "page"

_FEED_TYPES = frozenset(
    {
        "application/rss+xml", "application/atom+xml", "application/rdf+xml",
        "application/xml", "text/xml", "application/feed+json", "application/json",
    }
)  # fmt: skip
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_UNKNOWN_TYPES = frozenset({"", "application/octet-stream", "unknown/unknown", "text/plain"})
_FEED_START = re.compile(r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)\b", re.S)
_HTML_START = re.compile(r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b",
                         re.S | re.I)  # fmt: skip
_SKIPPED_CONTAINERS = frozenset({"nav", "header", "footer", "aside", "form"})
_SKIPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar"})
_SKIPPED_CLASSES = frozenset(
    {
        "nav", "navbar", "navigation", "menu", "footer", "breadcrumb", "breadcrumbs",
        "pagination", "pager", "share", "social", "sidebar", "masthead", "subnav",
    }
)  # fmt: skip
_NOT_ARTICLES = frozenset(
    {
        "tag", "tags", "topic", "topics", "category", "categories", "author", "authors",
        "profile", "user", "users", "login", "signin", "sign-in", "logout", "register",
        "signup", "sign-up", "subscribe", "subscription", "account", "search", "about",
        "about-us", "contact", "contact-us", "privacy", "privacy-policy", "terms", "cookies",
        "help", "faq", "feed", "feeds", "rss", "page", "archive", "archives", "newsletter",
        "newsletters", "wp-login", "cdn-cgi",
    }
)  # fmt: skip
_SKIPPED_SCHEMES = ("javascript:", "mailto:", "tel:", "data:", "#")
_HEADINGS = frozenset({"h1", "h2", "h3"})
_DIGITS = re.compile(r"\d{4,}")
_WORDS = re.compile(r"[-_]")
_PAGE_EXTENSIONS = (".html", ".htm", ".shtml", ".php", ".aspx")


class NotASourceError(WatcherError):
    """A source answered with something that is neither a feed nor an HTML page."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Discovery:
    """What one fetch of a source listed: ``kind`` is ``feed`` or ``page``."""

    kind: str
    entries: tuple[Entry, ...]


def discover(
    body: bytes | str,
    content_type: str | None,
    base_url: str,
    *,
    match: str | re.Pattern[str] | None = None,
    limit: int = MAX_LINKS,
) -> Discovery:
    """The article links of a feed or section page served at ``base_url``;
    NotASourceError when the body is neither."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.lstrip("\ufeff")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    pattern = re.compile(match) if isinstance(match, str) else match
    if _looks_like_feed(mime, text):
        entries = _feed_entries(text, base_url)
        if entries is not None:
            return Discovery(FEED, _kept(entries, pattern, limit))
    if mime in _HTML_TYPES or (mime in _UNKNOWN_TYPES | _FEED_TYPES and _HTML_START.match(text)):
        return Discovery(PAGE, _kept(_page_entries(text, base_url), pattern, limit))
    shown = mime or "no content type"
    raise NotASourceError(base_url, f"neither a feed nor an HTML page ({shown})")


def _looks_like_feed(mime: str, text: str) -> bool:
    head = text[:2048]
    if mime in _FEED_TYPES:
        return not _HTML_START.match(head)
    return mime in _UNKNOWN_TYPES and (bool(_FEED_START.match(head)) or head.startswith("{"))


def _kept(
    entries: Iterator[Entry], pattern: re.Pattern[str] | None, limit: int
) -> tuple[Entry, ...]:
    """Normalised, deduplicated (first sighting wins), matching, at most ``limit``."""
    seen: set[str] = set()
    out: list[Entry] = []
    for entry in entries:
        try:
            link = normalise_url(entry.link)
        except InvalidURLError:
            continue
        if link in seen or (pattern is not None and not pattern.search(link)):
            continue
        seen.add(link)
        out.append(Entry(link, _title(entry.title), entry.guid, entry.published, entry.updated))
        if len(out) >= limit:
            break
    return tuple(out)


def _title(text: str | None) -> str | None:
    if not text:
        return None
    one = " ".join(text.split())
    return one[:MAX_TITLE] or None


# -- feeds ---------------------------------------------------------------------------


def _feed_entries(text: str, base_url: str) -> Iterator[Entry] | None:
    """The entries of a feed; None when ``text`` is not one."""
    if text.startswith("{"):
        return _json_feed_entries(text, base_url)
    parsed = feedparser.parse(
        io.BytesIO(text.encode("utf-8")),  # a stream: feedparser never opens a URL or a file
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": base_url,
        },
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    if not parsed.get("version") and not parsed.get("entries"):
        return None
    return (
        Entry(
            link=urljoin(base_url, str(e.get("link") or "")),
            title=e.get("title"),
            guid=str(e.get("id") or e.get("link") or "") or None,
            # dict.get: FeedParserDict.get("updated_parsed") falls back to published
            published=_iso(dict.get(e, "published_parsed")),
            updated=_iso(dict.get(e, "updated_parsed")),
        )
        for e in parsed.entries
        if e.get("link")
    )


def _json_feed_entries(text: str, base_url: str) -> Iterator[Entry] | None:
    """A JSON Feed (jsonfeed.org, versions 1 and 1.1); feedparser 6 reads none."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        return None
    items = data.get("items")
    return (
        Entry(
            link=urljoin(base_url, str(item.get("url") or item.get("external_url"))),
            title=_str(item.get("title")),
            guid=_str(item.get("id")),
            published=_json_time(item.get("date_published")),
            updated=_json_time(item.get("date_modified")),
        )
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and (item.get("url") or item.get("external_url"))
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(parsed: time.struct_time | None) -> str | None:
    """feedparser's UTC struct_time as ``2026-01-02T09:00:00Z``."""
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None


def _json_time(value: Any) -> str | None:
    """An RFC 3339 time as ``2026-01-02T09:00:00Z`` (UTC); None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- section pages -------------------------------------------------------------------


def _page_entries(text: str, base_url: str) -> Iterator[Entry]:
    """The links of a section page that its structure and paths mark as articles."""
    try:
        doc = lxml.html.document_fromstring(text.encode("utf-8"), parser=_PARSER)
    except (etree.ParserError, ValueError):
        return
    base = _page_base(doc, base_url)
    site = registrable_domain(urlsplit(base_url).hostname or "")
    here = urlsplit(base_url).path.rstrip("/")
    for a in doc.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.lower().startswith(_SKIPPED_SCHEMES):
            continue
        url = urljoin(base, href)
        parts = urlsplit(url)
        if registrable_domain(parts.hostname or "") != site or _in_skipped_container(a):
            continue
        if _is_article(parts.path, parts.query, here, _structural(a)):
            yield Entry(link=url, title="".join(str(t) for t in a.itertext()))


_PARSER = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, no_network=True)


def _page_base(doc: Any, base_url: str) -> str:
    """``<base href>`` when the page has one, else its own URL."""
    for base in doc.iter("base"):
        href = base.get("href")
        if href:
            return urljoin(base_url, str(href).strip())
    return base_url


def _ancestors(a: Any) -> Iterator[Any]:
    node = a.getparent()
    while node is not None:
        yield node
        node = node.getparent()


def _in_skipped_container(a: Any) -> bool:
    for node in _ancestors(a):
        if not isinstance(node.tag, str):
            continue
        if node.tag in _SKIPPED_CONTAINERS or (node.get("role") or "").lower() in _SKIPPED_ROLES:
            return True
        names = f"{node.get('class') or ''} {node.get('id') or ''}".lower()
        if _SKIPPED_CLASSES.intersection(re.split(r"[\s_-]+", names)):
            return True
    return False


def _structural(a: Any) -> bool:
    """Does the page itself present the link as an article (a card, a headline,
    an item of the main list)?"""
    tags = {node.tag for node in _ancestors(a) if isinstance(node.tag, str)}
    return "article" in tags or bool(tags & _HEADINGS) or {"main", "li"} <= tags


def _is_article(path: str, query: str, here: str, structural: bool) -> bool:
    segments = [s for s in path.split("/") if s]
    if not segments:
        return False
    trimmed = path.rstrip("/")
    if trimmed == here or here.startswith(trimmed + "/"):
        return False  # the section itself, or a section above it
    if any(s.lower().rsplit(".", 1)[0] in _NOT_ARTICLES for s in segments):
        return False
    last = segments[-1].lower()
    strong = (
        bool(_DIGITS.search(path) or _DIGITS.search(query))
        or len(_WORDS.split(last)) >= 3
        or (last.endswith(_PAGE_EXTENSIONS) and not last.startswith("index."))
    )
    sluggy = bool(re.search(r"[-_\d.]", last))
    return strong or (structural and len(segments) >= 2 and sluggy)
