"""Extract stage: page HTML -> article body HTML + what the page says about itself. Pure.

The body is the page's own ``<main>`` (else ``<article>``, else readability's
guess), cleaned of scripts and presentational attributes and serialised on one
line, which is the seed snapshot format. Whatever the input, ``extract``
returns a value: an unusable page gives an empty ``body_html``.

lxml is used directly rather than through BeautifulSoup: it is an order of
magnitude faster on multi-megabyte pages and keeps attributes in source order,
which the seed format relies on. The small serialiser below writes void
elements as ``<img .../>`` like the existing seed captures.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from readability import Document

from watcher.models import ExtractedPage, PageMetadata

log = logging.getLogger(__name__)

# Elements that never carry article content; removed with their children.
DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "link", "meta", "button", "input", "select"}
    | {"textarea", "head", "title", "base"}
)
# Structural attributes kept in the body; everything else (class, style, on*) goes.
KEEP_ATTRIBUTES = frozenset(
    {"href", "src", "srcset", "alt", "title", "datetime", "role", "data-e2e", "id"}
    | {"width", "height", "sizes", "lang", "tabindex", "colspan", "rowspan", "start"}
    | {"poster", "controls", "allowfullscreen", "cite", "type", "media", "dir"}
)
URL_ATTRIBUTES = frozenset({"href", "src", "srcset", "poster", "cite"})
VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
# Their text is raw (never entity-decoded by a parser), so it is written back unescaped.
RAW_TEXT_TAGS = frozenset({"iframe", "noembed", "noframes", "xmp", "plaintext"})
MEDIA_TAGS = ("img", "video", "audio", "iframe", "embed", "object", "picture", "svg")
ARTICLE_TYPES = frozenset(
    {"NewsArticle", "Article", "ReportageNewsArticle", "AnalysisNewsArticle"}
    | {"OpinionNewsArticle", "BlogPosting", "LiveBlogPosting"}
)
_SCRIPT_URL = re.compile(r"^\s*(javascript|vbscript|data\s*:\s*text/html)", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True)
_EMPTY_METADATA = PageMetadata()


def extract(html: str, url: str) -> ExtractedPage:
    """Return the article body and metadata of ``html``, fetched from ``url``."""
    root = _parse(html)
    if root is None:
        return ExtractedPage(title="", url=url, body_html="", metadata=_EMPTY_METADATA)
    metadata = extract_metadata(root, url)
    title = _title(root, metadata)
    body = _body(root, html)
    return ExtractedPage(
        title=title,
        url=metadata.canonical_url or url,
        body_html=serialise(body) if body is not None else "",
        metadata=metadata,
    )


def _parse(html: str) -> lxml.html.HtmlElement | None:
    """Parse leniently; None when there is no document at all."""
    html = _XML_DECLARATION.sub("", html, count=1)
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        log.debug("unparseable page: %s", exc)
        return None


# --- body -------------------------------------------------------------------


def _body(root: lxml.html.HtmlElement, html: str) -> lxml.html.HtmlElement | None:
    """Step 1: choose the content element. Step 2: clean it."""
    for tag in ("main", "article"):
        for candidate in list(root.iter(tag)):
            clean(candidate)
            if _has_content(candidate):
                return candidate
    fallback = _readability_body(html)
    if fallback is None:
        return None
    clean(fallback)
    return fallback if _has_content(fallback) else None


def _has_content(element: lxml.html.HtmlElement) -> bool:
    if element.text_content().strip():
        return True
    return any(True for _ in element.iter(*MEDIA_TAGS))


def _readability_body(html: str) -> lxml.html.HtmlElement | None:
    """readability-lxml's guess at the article, for pages without main/article.

    readability is a heuristic with many failure modes on odd HTML, so any
    error it raises means "no body" rather than a crash.
    """
    try:
        summary = Document(_XML_DECLARATION.sub("", html, count=1)).summary(html_partial=True)
        fragment = lxml.html.fragment_fromstring(summary, create_parent="div", parser=_PARSER)
    except Exception as exc:
        log.debug("readability found no article: %s", exc)
        return None
    # readability wraps its result in <div><body id="readabilityBody">; unwrap the body.
    for wrapper in list(fragment.iter("body")):
        wrapper.drop_tag()
    fragment.attrib.clear()
    return fragment


def clean(element: lxml.html.HtmlElement) -> None:
    """Remove non-content elements and presentational or scripted attributes, in place."""
    doomed = [el for el in element.iter() if not isinstance(el.tag, str) or el.tag in DROP_TAGS]
    for el in doomed:
        if el is not element:
            el.drop_tree()
    for el in element.iter():
        for name in list(el.attrib):
            if not _keep_attribute(name, el.attrib[name]):
                del el.attrib[name]


def _keep_attribute(name: str, value: str) -> bool:
    if name in URL_ATTRIBUTES and _SCRIPT_URL.match(value):
        return False
    return name in KEEP_ATTRIBUTES or name.startswith("aria-")


def serialise(element: lxml.html.HtmlElement) -> str:
    """HTML on one line: each line stripped, lines joined (the seed snapshot format)."""
    parts: list[str] = []
    for event, el in etree.iterwalk(element, events=("start", "end")):
        if event == "start":
            parts.append(_open_tag(el))
            text = el.text or ""
            parts.append(text if el.tag in RAW_TEXT_TAGS else _escape_text(text))
        else:
            if el.tag not in VOID_TAGS:
                parts.append(f"</{el.tag}>")
            if el is not element:
                parts.append(_escape_text(el.tail or ""))
    return one_line("".join(parts))


def _open_tag(el: lxml.html.HtmlElement) -> str:
    attrs = "".join(f' {name}="{_escape_attribute(value)}"' for name, value in el.items())
    return f"<{el.tag}{attrs}{'/' if el.tag in VOID_TAGS else ''}>"


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;")


def one_line(html: str) -> str:
    """Strip every line and join them.

    Lines are joined with nothing, except that a space is kept where a line
    break separated two words of non-CJK text ("quick\\nbrown"), so English
    prose is not glued together; between tags or CJK characters nothing is
    inserted, as a browser would render it.
    """
    out: list[str] = []
    for raw in _LINE_BREAK.split(html):
        line = raw.strip()
        if not line:
            continue
        if out and _space_between(out[-1][-1], line[0]):
            out.append(" ")
        out.append(line)
    return "".join(out)


def _space_between(before: str, after: str) -> bool:
    if before == ">" or after == "<":
        return False
    return not (_is_wide(before) and _is_wide(after))


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


# --- metadata ---------------------------------------------------------------


def extract_metadata(root: lxml.html.HtmlElement, url: str) -> PageMetadata:
    """What the page declares in <head> and JSON-LD; missing values are None."""
    meta = _meta_properties(root)
    article = _json_ld_article(root)
    return PageMetadata(
        canonical_url=_canonical(root, url),
        og_title=meta.get("og:title"),
        og_description=meta.get("og:description"),
        published_time=meta.get("article:published_time") or _ld_text(article, "datePublished"),
        modified_time=meta.get("article:modified_time") or _ld_text(article, "dateModified"),
        headline=_ld_text(article, "headline"),
        author=_ld_author(article),
        language=_normalise_space(root.get("lang")) if root.tag == "html" else None,
    )


def _title(root: lxml.html.HtmlElement, metadata: PageMetadata) -> str:
    """og:title, else the first <h1>, else <title>."""
    if metadata.og_title:
        return metadata.og_title
    for tag in ("h1", "title"):
        for el in root.iter(tag):
            text = _normalise_space(el.text_content())
            if text:
                return text
    return ""


def _canonical(root: lxml.html.HtmlElement, url: str) -> str | None:
    for link in root.iter("link"):
        if "canonical" not in (link.get("rel") or "").lower().split():
            continue
        href: str = (link.get("href") or "").strip()  # HtmlElement is Any in lxml-stubs
        if not href:
            continue
        resolved = urljoin(url, href)
        parts = urlsplit(resolved)
        if parts.scheme in ("http", "https") and parts.netloc:
            return resolved
    return None


def _meta_properties(root: lxml.html.HtmlElement) -> dict[str, str]:
    """First non-empty content of each <meta property|name>, keys lower-cased."""
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = _normalise_space(meta.get("content"))
        if key and content and key not in found:
            found[key] = content
    return found


def _json_ld_article(root: lxml.html.HtmlElement) -> dict[str, Any] | None:
    """The first JSON-LD object typed as a news article; malformed blocks are skipped."""
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):
            continue
        for item in _json_ld_items(data):
            if _is_article(item):
                return item
    return None


def _json_ld_items(data: Any) -> Iterator[dict[str, Any]]:
    """Objects at the top level, in top-level lists, and in ``@graph``."""
    pending = [data]
    while pending:
        item = pending.pop(0)
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            yield item
            graph = item.get("@graph")
            if isinstance(graph, list):
                pending.extend(graph)


def _is_article(item: dict[str, Any]) -> bool:
    kind = item.get("@type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    return any(isinstance(k, str) and k in ARTICLE_TYPES for k in kinds)


def _ld_text(article: dict[str, Any] | None, key: str) -> str | None:
    value = article.get(key) if article else None
    return _normalise_space(value) if isinstance(value, str) else None


def _ld_author(article: dict[str, Any] | None) -> str | None:
    """An author name, or several joined by ", "."""
    value = article.get("author") if article else None
    people = value if isinstance(value, list) else [value]
    names: list[str] = []
    for person in people:
        name = person.get("name") if isinstance(person, dict) else person
        text = _normalise_space(name) if isinstance(name, str) else None
        if text and text not in names:
            names.append(text)
    return ", ".join(names) or None


def _normalise_space(text: str | None) -> str | None:
    """Collapse runs of whitespace; None for missing or blank text."""
    if text is None:
        return None
    return " ".join(text.split()) or None
