"""Extract stage: page HTML -> article body HTML + what the page says about itself. Pure.

The body is the page's own ``<main>`` (else ``<article>``, else readability's
guess), or what the site's ``body`` rule selects, after its ``ignore`` blocks
are removed (:mod:`watcher.siterules`); it is cleaned of scripts and
presentational attributes and serialised on one line, the seed snapshot format. Whatever the input, ``extract``
returns a value: an unusable page gives an empty ``body_html``.

URLs are judged as a browser reads them (:mod:`watcher.safeurl`): a
``java&#x09;script:`` or ``&#x01;javascript:`` link loses its href like a
plain ``javascript:`` one, and ``data:`` survives only as a picture's source.

lxml is used directly rather than through BeautifulSoup: it is an order of
magnitude faster on multi-megabyte pages and keeps attributes in source order,
which the seed format relies on. The small serialiser below writes void
elements as ``<img .../>`` like the existing seed captures.

Hostile pages are bounded here: a page nested deeper than libxml2 reads
(2048 levels, even with ``huge_tree``; past it the rest of the page is
silently dropped) is flattened first (:func:`flatten`); titles and metadata
values are capped (a 1 MB ``<title>``); NUL characters are dropped and lone
surrogates (JSON-LD ``"\\ud800"``) become U+FFFD; a canonical URL counts only
on the page's own site, so a page cannot claim another site's article.
"""

from __future__ import annotations

import html as html_mod
import json
import logging
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree
from readability import Document

from watcher import siterules, tree
from watcher.config import SiteRules
from watcher.imageid import registrable_domain
from watcher.models import ExtractedPage, PageMetadata
from watcher.safeurl import SCRIPT_SCHEMES, scheme

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
# Where a data: URL can only be a picture (never a document that runs script).
IMAGE_URL_TAGS = frozenset({"img", "source", "video"})
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
# What serialisation may turn into a leading space: one_line() strips Unicode
# whitespace at line ends and joins lines with " ", which a browser strips.
_LEADING_SPACE = re.compile(r"^[\x00-\x20\s]+")
_SRCSET_SPLIT = re.compile(r"[\s,]+")
_DATA_IMAGE = re.compile(r"data:image/", re.IGNORECASE)
_ARIA_ATTRIBUTE = re.compile(r"aria-[a-z0-9_-]+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_EMPTY_METADATA = PageMetadata()
TITLE_MAX = 300  # characters; a longer title is cut, with an ellipsis
METADATA_MAX = 2000  # characters of any other metadata value
# A page past libxml2's depth limit is flattened (see flatten): runs of start
# tags keep RUN_KEEP elements at each end; then wrapper elements deeper than
# FLAT_DEPTH are left out (their content kept), and every element deeper than
# HARD_DEPTH, below the 256 levels readability's own parser reads.
RUN_KEEP = 8
FLAT_DEPTH = 128
HARD_DEPTH = 240
WRAPPER_TAGS = frozenset({"div", "span", "section", "font", "center", "aside", "header"})
STRUCTURE_TAGS = frozenset({"html", "head", "body", "main", "article"})  # never left out
REFRESH_FOLLOW_S = 5.0  # a meta refresh sooner than this is a redirect
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_NOSCRIPT = re.compile(r"<noscript\b.*?</noscript\s*>", re.IGNORECASE | re.DOTALL)
_REFRESH = re.compile(r"""http-equiv\s*=\s*["']?\s*refresh\b""", re.IGNORECASE)
_CONTENT = re.compile(r"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_REFRESH_VALUE = re.compile(
    r"""^\s*(\d*\.?\d*)\s*[;,]?\s*(?:url\s*=\s*)?(["']?)(.*?)\2?\s*$""", re.IGNORECASE | re.DOTALL
)
_local = threading.local()


def extract(html: str, url: str, rules: SiteRules | None = None) -> ExtractedPage:
    """Return the article body and metadata of ``html``, fetched from ``url``.

    ``rules`` (the site's ``[sites."host"]`` selectors) shape the body only:
    the title and metadata still come from the whole page."""
    html = _clean_input(html)
    root = _parse(html)
    if root is not None and _too_deep():
        html = flatten(html)
        root = _parse(html)
    if root is None:
        return ExtractedPage(title="", url=url, body_html="", metadata=_EMPTY_METADATA)
    metadata = extract_metadata(root, url)
    title = _title(root, metadata)
    if rules is not None and siterules.fingerprint(rules):
        body, metadata = _ruled_body(root, html, url, rules, metadata)
    else:
        body = _body(root, html)
    return ExtractedPage(
        title=title,
        url=metadata.canonical_url or url,
        body_html=serialise(body) if body is not None else "",
        metadata=metadata,
    )


def _clean_input(html: str) -> str:
    """No XML declaration (lxml refuses one in a str); no NUL (a browser
    ignores it) and no lone surrogate (U+FFFD), which no database stores."""
    html = _XML_DECLARATION.sub("", html, count=1)
    if "\x00" not in html and _encodable(html):
        return html  # the common case, found without the regex (slow on a long page)
    return _NOT_TEXT.sub(_replacement, html)


def _encodable(text: str) -> bool:
    """No lone surrogate in ``text`` (UTF-8 refuses them)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replacement(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def _parser() -> etree.HTMLParser:
    """One parser per thread (an lxml parser serialises the threads sharing
    it, and its error log tells this thread's parse). lxml's own parser, not
    lxml.html's: plain elements, without a Python class lookup per element
    touched (see watcher.tree)."""
    parser: etree.HTMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            remove_comments=True, remove_pis=True, huge_tree=True
        )
    return parser


def _parse(html: str) -> etree._Element | None:
    """Parse leniently; None when there is no document at all."""
    if not html.strip():
        return None
    try:
        root = etree.fromstring(html, parser=_parser())
    except (etree.ParserError, ValueError) as exc:
        log.debug("unparseable page: %s", exc)
        return None
    if root is None:
        log.debug("unparseable page: Document is empty")
    return root


def _too_deep() -> bool:
    """The last parse in this thread stopped at libxml2's depth limit."""
    return any("Excessive depth" in error.message for error in _parser().error_log)


# --- deep documents -----------------------------------------------------------


def flatten(html: str) -> str:
    """``html`` nested shallowly enough for libxml2 and readability.

    Nesting that deep is a run of start tags with nothing between them
    (``<div><div><div>...``): of each run only the first and last RUN_KEEP
    elements are kept, so the structure next to the content stays as it was.
    Whatever is still deeper loses its wrapper elements past FLAT_DEPTH and
    every element past HARD_DEPTH. Text, entities and the markup kept are
    written back as they were.
    """
    flattener = _Flattener()
    flattener.feed(html)
    flattener.close()
    flattener.flush()
    return "".join(flattener.out)


class _Flattener(HTMLParser):
    """A streaming re-serialiser (Python's tokenizer has no depth limit)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.run: list[tuple[str, str]] = []  # (tag, raw text) of start tags in a row
        self.open: list[tuple[str, bool]] = []  # (tag, written) of each open element
        self.counts: Counter[str] = Counter()  # open elements by tag
        self.depth = 0  # written elements open

    def flush(self) -> None:
        """Decide on the run of start tags that just ended, and write it."""
        run, self.run = self.run, []
        for index, (tag, raw) in enumerate(run):
            chained = RUN_KEEP <= index < len(run) - RUN_KEEP
            limit = FLAT_DEPTH if tag in WRAPPER_TAGS else HARD_DEPTH
            written = (tag in STRUCTURE_TAGS or not chained) and self.depth < limit
            self.open.append((tag, written))
            self.counts[tag] += 1
            if written:
                self.depth += 1
                self.out.append(raw)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or f"<{tag}>"
        if tag in VOID_TAGS:
            self.flush()
            self.out.append(raw)
        else:
            self.run.append((tag, raw))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.flush()
        self.out.append(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self.flush()
        if not self.counts[tag]:
            self.out.append(f"</{tag}>")  # a stray end tag: the parser ignores it
            return
        while True:  # elements left open inside this one close with it
            name, written = self.open.pop()
            self.counts[name] -= 1
            self.depth -= written
            if name == tag:
                break
        if written:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.run and not data.strip():
            return  # whitespace inside a run of start tags
        self.flush()
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.flush()
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.flush()
        self.out.append(f"&#{name};")

    def handle_decl(self, decl: str) -> None:
        self.flush()
        self.out.append(f"<!{decl}>")

    def unknown_decl(self, data: str) -> None:
        self.flush()
        self.out.append(f"<![{data}]>")


# --- meta refresh -------------------------------------------------------------


def refresh_target(html: str, url: str) -> str | None:
    """Where a ``<meta http-equiv="refresh">`` sends the reader within
    REFRESH_FOLLOW_S seconds: a redirect made in HTML. None when there is no
    such refresh, or it reloads the page itself. One inside <noscript> is for
    browsers without scripts: a browser that runs them never follows it."""
    for tag in _META_TAG.findall(_NOSCRIPT.sub("", html[:65_536])):
        content = _CONTENT.search(tag)
        if not _REFRESH.search(tag) or content is None:
            continue
        value = html_mod.unescape(next(g for g in content.groups() if g is not None))
        match = _REFRESH_VALUE.match(value)
        if match is None or not match.group(3).strip():
            continue
        delay = float(match.group(1)) if match.group(1).strip(".") else 0.0
        target = urljoin(url, match.group(3).strip())
        if delay <= REFRESH_FOLLOW_S and urlsplit(target).scheme in ("http", "https"):
            return None if target == url else target
    return None


# --- body -------------------------------------------------------------------


def _body(root: etree._Element, html: str) -> etree._Element | None:
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


def _ruled_body(
    root: etree._Element, html: str, url: str, rules: SiteRules, metadata: PageMetadata
) -> tuple[etree._Element | None, PageMetadata]:
    """The body as the site's rules say, and the metadata noting them.

    A body rule that matches nothing (a redesign) falls back to the usual
    choice, with a warning and a note in the metadata, rather than an empty
    article."""
    applied = siterules.apply(root, rules)
    unmatched = applied.unmatched
    body = _rule_body(applied.body) if applied.body else None
    if applied.body and body is None:
        unmatched = ", ".join(rules.body)  # it matched only empty elements
    if unmatched is not None:
        log.warning("%s: body rule %r matched nothing; extracted as usual", url, unmatched)
    if body is None:
        # readability reads the page's text: give it the page without the ignored blocks
        page = lxml.html.tostring(root, encoding="unicode") if applied.removed else html
        body = _body(root, page)
    noted = replace(metadata, site_rules=rules.fingerprint, body_rule_unmatched=unmatched)
    return body, noted


def _rule_body(elements: tuple[etree._Element, ...]) -> etree._Element | None:
    """The elements a body rule chose, cleaned; several go into one <div> in
    document order. None when they hold nothing."""
    if len(elements) == 1:
        body = elements[0]
    else:
        body = etree.Element("div")
        for element in elements:
            element.tail = None  # the text after it is not part of it
            body.append(element)
    clean(body)
    return body if _has_content(body) else None


def _has_content(element: etree._Element) -> bool:
    if tree.text_content(element).strip():
        return True
    return any(True for _ in element.iter(*MEDIA_TAGS))


def _readability_body(html: str) -> etree._Element | None:
    """readability-lxml's guess at the article, for pages without main/article.

    readability is a heuristic with many failure modes on odd HTML, so any
    error it raises means "no body" rather than a crash.
    """
    try:
        summary = Document(html).summary(html_partial=True)
        fragment: etree._Element = lxml.html.fragment_fromstring(
            summary, create_parent="div", parser=_parser()
        )
    except Exception as exc:
        log.debug("readability found no article: %s", exc)
        return None
    # readability wraps its result in <div><body id="readabilityBody">; unwrap the body.
    for wrapper in list(fragment.iter("body")):
        tree.drop_tag(wrapper)
    fragment.attrib.clear()
    return fragment


def clean(element: etree._Element) -> None:
    """Remove non-content elements and presentational or scripted attributes, in place."""
    doomed = [el for el in element.iter() if not isinstance(el.tag, str) or el.tag in DROP_TAGS]
    for el in doomed:
        if el is not element:
            tree.drop_tree(el)
    for el in element.iter():
        attrib = cast("MutableMapping[str, str]", el.attrib)  # str: an HTML parser's tree
        for name in list(attrib):
            if not _keep_attribute(el.tag, name, attrib[name]):
                del attrib[name]


def _keep_attribute(tag: str, name: str, value: str) -> bool:
    if name in URL_ATTRIBUTES and not _safe_url(tag, name, value):
        return False
    return name in KEEP_ATTRIBUTES or bool(_ARIA_ATTRIBUTE.fullmatch(name))


def _safe_url(tag: str, name: str, value: str) -> bool:
    """No script URL however spelled, and data: only where it can be nothing but
    an image; each candidate of a srcset is checked."""
    candidates = _SRCSET_SPLIT.split(value) if name == "srcset" else [value]
    for candidate in candidates:
        url = _LEADING_SPACE.sub("", candidate)
        found = scheme(url)
        if found in SCRIPT_SCHEMES:
            return False
        if found == "data" and not (tag in IMAGE_URL_TAGS and _DATA_IMAGE.match(url)):
            return False
    return True


def serialise(element: etree._Element) -> str:
    """HTML on one line: each line stripped, lines joined (the seed snapshot format)."""
    parts: list[str] = []
    for event, el in etree.iterwalk(element, events=("start", "end")):
        if event == "start":
            parts.append(_open_tag(el))
            parts.append(_element_text(el))
        else:
            if el.tag not in VOID_TAGS:
                parts.append(f"</{el.tag}>")
            if el is not element:
                parts.append(_escape_text(el.tail or ""))
    return one_line("".join(parts))


def _element_text(el: etree._Element) -> str:
    """Escaped text; raw for raw-text elements, unless it holds what a browser
    could read as their end tag (then escaped: shown as text, never markup)."""
    text: str = el.text or ""
    if el.tag not in RAW_TEXT_TAGS or f"</{el.tag}" in text.lower():
        return _escape_text(text)
    return text


def _open_tag(el: etree._Element) -> str:
    items = cast("list[tuple[str, str]]", el.items())  # str: an HTML parser's tree
    attrs = "".join(f' {name}="{_escape_attribute(value)}"' for name, value in items)
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


def extract_metadata(root: etree._Element, url: str) -> PageMetadata:
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


def _title(root: etree._Element, metadata: PageMetadata) -> str:
    """og:title, else the first <h1>, else <title>; at most TITLE_MAX characters."""
    if metadata.og_title:
        return _cut(metadata.og_title, TITLE_MAX)
    for tag in ("h1", "title"):
        for el in root.iter(tag):
            text = _normalise_space(tree.text_content(el))
            if text:
                return _cut(text, TITLE_MAX)
    return ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _canonical(root: etree._Element, url: str) -> str | None:
    for link in root.iter("link"):
        if "canonical" not in (link.get("rel") or "").lower().split():
            continue
        href: str = (link.get("href") or "").strip()  # HtmlElement is Any in lxml-stubs
        if not href:
            continue
        resolved = urljoin(url, href)
        parts = urlsplit(resolved)
        if parts.scheme in ("http", "https") and parts.netloc and _same_site(resolved, url):
            return resolved
    return None


def _same_site(a: str, b: str) -> bool:
    """Both URLs on one registrable domain (a page may name its own site's
    address for itself, never another site's article)."""
    host_a, host_b = urlsplit(a).hostname or "", urlsplit(b).hostname or ""
    return registrable_domain(host_a) == registrable_domain(host_b)


def _meta_properties(root: etree._Element) -> dict[str, str]:
    """First non-empty content of each <meta property|name>, keys lower-cased."""
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = _normalise_space(meta.get("content"))
        if key and content and key not in found:
            found[key] = content
    return found


def _json_ld_article(root: etree._Element) -> dict[str, Any] | None:
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
    """Collapse runs of whitespace; None for missing or blank text. Bounded
    (METADATA_MAX), without NUL or lone surrogates (JSON-LD escapes them in)."""
    if text is None:
        return None
    text = _NOT_TEXT.sub(_replacement, text[: METADATA_MAX * 4])
    return _cut(" ".join(text.split()), METADATA_MAX) or None
