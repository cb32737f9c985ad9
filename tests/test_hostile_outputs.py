"""Hostile content in everything watcher writes (issue 10).

Archived pages carry script in every form a browser honours: ``<script>``,
``on*`` handlers, ``javascript:``/``vbscript:``/``data:`` URLs in all the
spellings a browser still reads as such (``java&#x09;script:``, a leading
``&#x01;``, ``&colon;``), ``<iframe>``, ``<svg onload>``, ``<base href>``,
``<meta http-equiv=refresh>``, CSS ``url(javascript:…)``; in the body, the
title and the URL. They reach the outputs two ways: through the real daemon
pipeline (fetch, extract, store, diff, notify writes reports and the site),
and stored directly as an importer stores files it did not extract.

Every output is then read back: HTML (reports, site pages, the feed's HTML
content, the Markdown reports rendered by a CommonMark renderer with raw HTML
allowed) is parsed with lxml and searched for executable constructs, which
must number zero; the Atom feed carries no bidi override or control
character; archive bodies carry no scripted URL however it is spelled; and a
real Chromium opens every page and must see no dialog and no navigation.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import re
import shutil
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import lxml.html
import pytest
from lxml import etree
from markdown_it import MarkdownIt

from tests.support.browser import launched_chromium
from tests.support.clock import Clock
from tests.support.newsroom import Newsroom, serve
from tests.test_report import _item, make_change
from tests.test_site import hostile_history, make_settings, run_pass, store_history
from watcher import api, report
from watcher import snapshot as snapshot_mod
from watcher.extract import extract
from watcher.models import Snapshot, change_from_dict
from watcher.outputs import site
from watcher.outputs.atom import FeedEntry, FeedInfo, render_atom

# -- the hostile content -------------------------------------------------------------

# Every one calls alert(), so a browser that ran one shows a dialog.
SCRIPTED_URLS = (
    "javascript:alert(101)",
    "java\tscript:alert(102)",
    "\x01javascript:alert(103)",
    "jav\nascript:alert(104)",
    " \x0c JaVaScRiPt:alert(105)",
    "vbscript:msgbox(106)",
    "data:text/html,<script>alert(107)</script>",
    "data:image/svg+xml,<svg onload=alert(108)>",
)
# The same and more, as written in a page's HTML: the parser decodes the entities.
SCRIPTED_HREFS = (
    "javascript:alert(111)",
    "java&#x09;script:alert(112)",
    "&#x01;javascript:alert(113)",
    "jav&#x0A;ascript:alert(114)",
    "&#x20;&#x0C;&#x1F;JaVaScRiPt:alert(115)",
    "javascript&colon;alert(116)",
    "&#106;avascript:alert(117)",
    "java&Tab;script:alert(118)",
    "java&NewLine;script:alert(119)",
    "  JAVASCRIPT:alert(120)",
    "vbscript:msgbox(121)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxMjIpPC9zY3JpcHQ+",
    "data:image/svg+xml,&lt;svg onload=alert(123)&gt;",
    "&#x0A;javascript:alert(124)",
    "\u3000\njavascript:alert(125)",
)
MARKUP = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '<svg onload="alert(3)"><a href="javascript:alert(4)"><text>t</text></a></svg>',
    '<iframe src="javascript:alert(5)" srcdoc="<script>alert(6)</script>"></iframe>',
    '<base href="javascript:alert(7)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(8)">',
    '<a href="javascript:alert(9)" onclick="alert(10)">x</a>',
    '<p style="background:url(javascript:alert(11))">css</p>',
    '<object data="javascript:alert(12)"></object><embed src="javascript:alert(13)">',
    '<form action="javascript:alert(14)"><button formaction="javascript:alert(15)">b</button>',
    "[x](javascript:alert(16)) ![x](javascript:alert(17)) <javascript:alert(18)>",
    '"><script>alert(19)</script>',
    "'onmouseover='alert(20)'",
    "\u202egnp.exe\u202c \u2066iso\u2069 \x1b[31mred\x1b[0m \x07\x85\x9b",
)
HOSTILE_TEXT = " ".join(MARKUP)
# What executes when an importer stores a page unextracted: raw elements.
RAW_CONSTRUCTS = (
    "<script>alert(31)</script>"
    '<img src="x" onerror="alert(32)"><svg onload="alert(33)"><rect/></svg>'
    '<iframe src="javascript:alert(34)"></iframe><iframe srcdoc="&lt;script&gt;alert(35)&lt;/script&gt;"></iframe>'
    '<base href="javascript:alert(36)//"><meta http-equiv="refresh" content="0;url=javascript:alert(37)">'
    '<p style="background:url(javascript:alert(38))" onmouseover="alert(39)">Styled paragraph text here.</p>'
    '<object data="javascript:alert(40)"></object><embed src="java&#x09;script:alert(41)">'
    '<form action="javascript:alert(42)"><button formaction="javascript:alert(43)">go</button></form>'
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(44)">m</maction></math>'
)  # fmt: skip
HOSTILE_URLS = (
    'https://news.example/a?q="><script>alert(51)</script>&x=\u202e',
    "java\tscript:alert(52)",
    "[x](javascript:alert(53))",
)


def hostile_links(hrefs: Collection[str], text: str) -> str:
    return "".join(f'<p><a href="{href}">{text} {i}</a></p>' for i, href in enumerate(hrefs))


def hostile_figure(src: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{src}" alt="{html.escape(alt)}" srcset="{src} 2x">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def hostile_main(version: int) -> str:
    """A news page's <main>: real paragraphs, every construct raw and as text."""
    said = "said" if version == 1 else "denied"
    return (
        "<main><article>"
        f"<h1>{html.escape(HOSTILE_TEXT)}</h1>"
        f"<p>The minister {said} the talks went well, {html.escape(HOSTILE_TEXT)}.</p>"
        f"<p>Second paragraph, version {version}: {html.escape(MARKUP[version % len(MARKUP)])}"
        " and more words so it reads as a paragraph.</p>"
        f"{RAW_CONSTRUCTS}"
        f"{hostile_links(SCRIPTED_HREFS[version % 2 :: 2], 'link ' + str(version))}"
        + hostile_figure(SCRIPTED_HREFS[version], HOSTILE_TEXT, f"Caption {version} {HOSTILE_TEXT}")
        + "<p>他说，会晤气氛“坦诚而富有建设性”。</p>"
        "</article></main>"
    )


def stored_body(version: int) -> str:
    """A body as an importer stores it: whatever the file held, unextracted."""
    said = "said" if version == 1 else "denied"
    links = "".join(
        f'<p><a href="{html.escape(u)}">link {i} {html.escape(HOSTILE_TEXT)}</a></p>'
        for i, u in enumerate(SCRIPTED_URLS[version % 2 :: 2])
    )
    return (
        "<main>"
        f"<p>The minister {said} {html.escape(HOSTILE_TEXT)} in the capital today.</p>"
        f"<p>Unchanged paragraph {html.escape(HOSTILE_TEXT)} stays the same.</p>"
        f"{RAW_CONSTRUCTS}{links}"
        + hostile_figure(
            html.escape(SCRIPTED_URLS[version]), HOSTILE_TEXT, f"{version} {HOSTILE_TEXT}"
        )
        + "</main>"
    )


# -- reading outputs as a browser would ----------------------------------------------------

SCRIPTED_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "data"})
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "poster", "data", "background", "cite", "ping"}
    | {"lowsrc", "dynsrc", "codebase", "longdesc", "manifest", "icon", "xlink:href"}
    | {"to", "from", "values", "by"}  # SVG animation of an href
)
EMBEDDING_TAGS = frozenset(
    {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal"}
)
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)


def browser_url(value: str) -> str:
    """An attribute's URL as WHATWG URL parsing reads it: C0 controls and spaces
    stripped from both ends, every tab and newline removed."""
    return _TAB_OR_NEWLINE.sub("", value.strip(_C0_AND_SPACE))


def scheme(value: str) -> str:
    """The scheme a browser sees, lower-case; "" for a relative URL."""
    match = _SCHEME.match(browser_url(value))
    return match.group(1).lower() if match else ""


def _css_scripted(css: str) -> bool:
    if "expression(" in css.lower().replace(" ", ""):
        return True
    return any(scheme(m.group(2)) in SCRIPTED_SCHEMES for m in _CSS_URL.finditer(css))


def _attribute_constructs(tag: str, name: str, value: str) -> list[str]:
    name = name.lower()
    if name.startswith("on"):
        return [f"<{tag} {name}> handler"]
    if name == "srcdoc":
        return [f"<{tag} srcdoc>"]
    if name == "style" and _css_scripted(value):
        return [f"<{tag} style> scripted url()"]
    if name in ("srcset", "imagesrcset"):
        candidates = re.split(r"[\s,]+", value)
        return [f"<{tag} {name}={c!r}>" for c in candidates if scheme(c) in SCRIPTED_SCHEMES]
    if (name in URL_ATTRIBUTES or name.endswith(":href")) and scheme(value) in SCRIPTED_SCHEMES:
        return [f"<{tag} {name}={value!r}>"]
    return []


def executable_constructs(markup: str, *, allowed_scripts: Collection[str] = ()) -> list[str]:
    """Every construct in ``markup`` that could run script or navigate by itself."""
    if not markup.strip():
        return []
    root = lxml.html.document_fromstring(markup)
    found: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag == "script" and (el.text or "") in allowed_scripts and not el.attrib:
            continue
        if tag in EMBEDDING_TAGS:
            found.append(f"<{tag}> element")
        if tag == "meta" and (el.get("http-equiv") or "").strip().lower() == "refresh":
            found.append("<meta http-equiv=refresh>")
        if tag == "style" and _css_scripted(el.text or ""):
            found.append("<style> scripted url()")
        for name, value in el.items():
            found += _attribute_constructs(tag, name, value)
    return found


_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_html(markdown: str) -> str:
    """A Markdown report as a renderer that passes raw HTML through would show it."""
    return _MARKDOWN.render(markdown)


def markdown_links_and_images(markdown: str) -> list[str]:
    """Links and images the renderer made, except the http(s) autolinks reports write."""
    tree = lxml.html.document_fromstring(markdown_html(markdown) or "<p></p>")
    made = [f"<img src={img.get('src')!r}>" for img in tree.iter("img")]
    for a in tree.iter("a"):
        href = a.get("href") or ""
        autolink = a.text_content().lower().startswith(("http://", "https://"))
        if scheme(href) not in ("http", "https") or not autolink:
            made.append(f"<a href={href!r}>{a.text_content()}</a>")
    return made


# -- the outputs ----------------------------------------------------------------------------


@dataclass
class Outputs:
    """Everything written or rendered, by a name that says where it came from."""

    root: Path
    html: dict[str, str] = field(default_factory=dict)
    markdown: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    json: dict[str, str] = field(default_factory=dict)
    feeds: dict[str, str] = field(default_factory=dict)
    archive_bodies: dict[str, str] = field(default_factory=dict)
    pages: list[Path] = field(default_factory=list)  # HTML files for the browser, under root


def _pipeline_history(home: Path) -> Any:
    """The real daemon against a newsroom whose page is hostile, edited twice."""
    settings = make_settings(home)
    clock = Clock(1_700_000_000_000)
    room = Newsroom(title=HOSTILE_TEXT, main=hostile_main(1))
    with serve(room) as url:
        room.url = url
        store = api.open_store(settings)
        try:
            api.add_watches(store, [url], now=clock())
            run_pass(settings, store, clock)
            for version in (2, 3):
                clock.advance(62)
                room.main = hostile_main(version)
                room.title = f"{MARKUP[version]} {HOSTILE_TEXT}"
                run_pass(settings, store, clock)
        finally:
            store.close()
    return settings


def _store_history(store: Any) -> None:
    """Versions stored directly, as an importer stores files: bodies unextracted,
    titles and URLs whatever the files said."""
    url = "https://news.example/world/imported"
    start = 1_700_200_000_000
    titles = ("Calm title", HOSTILE_TEXT, f"\u202e{HOSTILE_TEXT}", MARKUP[10])
    urls = (url, *HOSTILE_URLS)
    snaps = [
        Snapshot(url=u, title=t, body=stored_body(n + 1), captured_at=start + n * 600_000)
        for n, (u, t) in enumerate(zip(urls, titles, strict=True))
    ]
    store_history(store, url, snaps)
    hostile_history(store, "https://news.example/world/hostile", 1_700_300_000_000)


def _collect(settings: Any, root: Path) -> Outputs:
    out = Outputs(root)
    store = api.open_store(settings)
    try:
        _store_history(store)
        site.build_site(store, root / "site", tz="Asia/Shanghai")
        changes = [c for w in store.list_watches() for c in store.changes(w.id)]
    finally:
        store.close()
    rendered = root / "rendered"
    rendered.mkdir()
    for record in changes:
        change = change_from_dict(record.record)
        name = f"change-{record.id}"
        out.html[f"{name}.html"] = report.render(change, "html", tz="Asia/Shanghai")
        out.html[f"{name} fragment"] = report.render_html_fragment(change)
        out.markdown[f"{name}.md"] = report.render(change, "md")
        out.text[f"{name}.txt"] = report.render(change, "text")
        out.text[f"{name}.txt (colour)"] = report.render(change, "text", color=True)
        out.json[f"{name}.json"] = report.render(change, "json")
        (rendered / f"{name}.html").write_text(out.html[f"{name}.html"], "utf-8")
    for path in sorted((root / "site").rglob("*")):
        name = "site/" + path.relative_to(root / "site").as_posix()
        if path.suffix == ".html":
            out.html[name] = path.read_text("utf-8")
        elif path.suffix == ".atom":
            out.feeds[name] = path.read_text("utf-8")
    for path in sorted(settings.reports_dir.rglob("*")):
        name = "reports/" + path.relative_to(settings.reports_dir).as_posix()
        if path.suffix == ".html":
            out.html[name] = path.read_text("utf-8")
        elif path.suffix == ".md":
            out.markdown[name] = path.read_text("utf-8")
    bodies = root / "archive-bodies"
    bodies.mkdir()
    for n, path in enumerate(sorted(settings.archive_dir.rglob("*.md"))):
        body = snapshot_mod.read(path).body
        out.archive_bodies[path.relative_to(settings.archive_dir).as_posix()] = body
        (bodies / f"{n}.html").write_text(f"<!DOCTYPE html><title>{n}</title>{body}", "utf-8")
    # The feed's entries carry HTML as escaped text: what a feed reader shows.
    for name, feed in list(out.feeds.items()):
        for n, content in enumerate(
            etree.fromstring(feed.encode()).iterfind(f"{ATOM}entry/{ATOM}content")
        ):
            out.html[f"{name} entry {n} content"] = content.text or ""
    out.pages = sorted(
        p
        for folder in ("site", "rendered", "archive-bodies")
        for p in (root / folder).rglob("*.html")
    ) + sorted((root / "site").glob("*.atom"))
    reports = root / "reports"
    shutil.copytree(settings.reports_dir, reports)
    out.pages += sorted(reports.rglob("*.html"))
    return out


ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    home = tmp_path_factory.mktemp("hostile-home")
    settings = _pipeline_history(home)
    return _collect(settings, tmp_path_factory.mktemp("hostile-out"))


# -- the outputs hold no executable construct ------------------------------------------------


def test_the_hostile_content_reached_every_kind_of_output(outputs: Outputs) -> None:
    """Guards the other tests: they scan outputs that really carry the attack."""
    assert len(outputs.archive_bodies) == 3  # three pipeline versions
    assert sum(name.startswith("reports/") for name in outputs.html) >= 2
    assert {"site/index.html", "site/recent.html"} <= outputs.html.keys()
    pages = [name for name in outputs.html if name.startswith("site/articles/")]
    assert sum(re.fullmatch(r"site/articles/\d+\.html", name) is not None for name in pages) == 3
    assert any(re.fullmatch(r"site/articles/\d+/v\d+\.html", name) for name in pages)
    assert len(outputs.markdown) >= 8 and outputs.feeds
    shown = "".join(outputs.html.values())
    assert html.escape("<script>alert(1)</script>") in shown  # as text
    bodies = "".join(outputs.archive_bodies.values())
    assert "link 2 0" in bodies and html.escape(MARKUP[1], quote=False) in bodies
    titles = [t for t in re.findall(r"<h1>(.*?)</h1>", shown) if "alert(" in t]
    assert titles, "no hostile title reached a page heading"


def test_no_html_output_has_an_executable_construct(outputs: Outputs) -> None:
    # the site's own scripts, admitted by hash in each page's CSP
    allowed = {site.TIME_JS, site.TIME_JS + site._INDEX_JS}
    found = {
        name: hits
        for name, markup in outputs.html.items()
        if (hits := executable_constructs(markup, allowed_scripts=allowed))
    }
    assert len(outputs.html) >= 20
    assert found == {}


def test_the_detector_finds_what_the_hostile_content_carries() -> None:
    """The same scan on the raw attack finds every kind of construct."""
    found = " ".join(executable_constructs(RAW_CONSTRUCTS + "".join(MARKUP)))
    for construct in ("<script>", "onerror", "onload", "<iframe>", "srcdoc", "<base>",
                      "refresh", "style> scripted", "<object>", "<embed>", "action=",
                      "formaction=", "xlink:href"):  # fmt: skip
        assert construct in found
    hrefs = "".join(f'<a href="{h}">x</a>' for h in SCRIPTED_HREFS)
    assert len(executable_constructs(hrefs)) == len(SCRIPTED_HREFS) - 1  # not the U+3000 one


def test_markdown_reports_make_no_link_image_or_html_from_content(outputs: Outputs) -> None:
    for name, markdown in outputs.markdown.items():
        assert markdown_links_and_images(markdown) == [], name
        assert executable_constructs(markdown_html(markdown)) == [], name


@pytest.mark.parametrize(
    "hostile",
    [
        "[x](javascript:alert(1))",
        "![x](javascript:alert(1))",
        "![x](https://img.example/a.jpg)",
        '<img src=x onerror="alert(1)">',
        "<javascript:alert(1)>",
        "<https://evil.example/>",
        "[x]: javascript:alert(1)\n\n[x]",
        "&#106;avascript:alert(1) &lt;script&gt;",
        "\\[x\\](javascript:alert(1))",
        "`x` <script>alert(1)</script> ~~x~~ **y**",
    ],
)
def test_markdown_escapes_links_images_html_and_autolinks(hostile: str) -> None:
    change = make_change(
        _item("paragraph_edited", location=hostile, before=hostile, after=f"{hostile}!",
              inline=(("-", hostile), ("+", hostile + "!"))),
        _item("url", location="url", before=hostile, after=hostile.replace("1", "2")),
        _item("image_added", location="#2 image", after={"src": hostile, "alt": hostile,
                                                         "caption": hostile}),
        _item("link_changed", location="#3 links", before=[],
              after=[{"href": hostile, "text": hostile}]),
    )  # fmt: skip
    change = dataclasses.replace(change, title_after=hostile, url=hostile)
    markdown = report.render(change, "md")
    assert markdown_links_and_images(markdown) == []
    assert executable_constructs(markdown_html(markdown)) == []
    shown = lxml.html.document_fromstring(markdown_html(markdown)).text_content()
    assert hostile.replace("\n", " ") in shown  # shown as written, not obeyed


def test_text_and_json_reports_carry_no_terminal_or_bidi_control(outputs: Outputs) -> None:
    controls = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    for name, text in outputs.text.items():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", text) if "colour" in name else text
        assert not controls.search(plain), name
    for name, data in outputs.json.items():
        assert isinstance(json.loads(data), dict), name


def test_the_feed_carries_no_bidi_override_or_control_character(outputs: Outputs) -> None:
    unsafe = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
    for name, feed in outputs.feeds.items():
        tree = etree.fromstring(feed.encode())
        texts = [el.text or "" for el in tree.iter(f"{ATOM}title", f"{ATOM}summary", f"{ATOM}id")]
        links = [el.get("href") or "" for el in tree.iter(f"{ATOM}link")]
        assert any("alert(" in t for t in texts), "the hostile titles are in the feed"
        for value in texts + links:
            assert not unsafe.search(value), (name, value)
        for link in links:
            assert scheme(link) in ("", "http", "https"), (name, link)


@pytest.mark.parametrize(
    "url",
    [*SCRIPTED_URLS, "java&#x09;script:x", "\u202ehttps://a.example/", "https://a.example/\u202e"],
)
def test_reports_link_no_url_a_browser_would_not_follow_as_http(url: str) -> None:
    assert report.html_link(url).startswith('<span class="url">')


def test_reports_link_the_url_a_browser_would_follow() -> None:
    link = report.html_link(" \x01https://a.example/a\tb\n ")
    assert link.startswith('<a href="https://a.example/ab" ')


def test_feed_titles_summaries_and_links_lose_bidi_overrides_and_controls() -> None:
    info = FeedInfo(
        id="tag:w",
        title="Feed\u202e title",
        self_link="\x01https://w.example/feed.atom",
        alternate_link="java\tscript:alert(1)",
    )
    entry = FeedEntry(
        id="tag:w:1",
        title="\u202egnp.exe\u202c \u2066t\u2069\x1b\x85\x9b\x07",
        updated_ms=0,
        link="https://w.example/a\u202e#\tx",
        summary="sum\u200fmary\x00\x0b",
    )
    feed = etree.fromstring(render_atom(info, [entry]).encode())
    titles = [el.text for el in feed.iter(f"{ATOM}title")]
    assert titles == ["Feed title", "gnp.exe t"]
    assert [el.text for el in feed.iter(f"{ATOM}summary")] == ["summary"]
    links = [el.get("href") for el in feed.iter(f"{ATOM}link")]
    assert links == ["https://w.example/feed.atom", "", "https://w.example/a#x"]


# -- archive bodies: the extract sanitiser ---------------------------------------------------


def body_urls(body: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every URL-bearing attribute in a stored body."""
    if not body:
        return []
    tree = lxml.html.fragment_fromstring(body, create_parent="div")
    return [
        (str(el.tag), name, value)
        for el in tree.iter()
        if isinstance(el.tag, str)
        for name, value in el.items()
        if name in URL_ATTRIBUTES or name.endswith("srcset")
    ]


# Where a data: URL can only be a picture: archive bodies keep data:image there.
IMAGE_TAGS = ("img", "source", "video")


def scripted_in_body(tag: str, name: str, value: str) -> bool:
    values = re.split(r"[\s,]+", value) if name.endswith("srcset") else [value]
    for candidate in values:
        found = scheme(candidate)
        # A data: image is only an image where the element can show nothing else.
        if found == "data" and tag in IMAGE_TAGS and "data:image/" in candidate.lower():
            continue
        if found in SCRIPTED_SCHEMES:
            return True
        # One-line serialisation may turn leading Unicode space into a space.
        if browser_url(candidate).lstrip().lower().startswith(("javascript:", "vbscript:")):
            return True
    return False


@pytest.mark.parametrize("href", SCRIPTED_HREFS)
@pytest.mark.parametrize(
    "element",
    [
        '<a href="{u}">link text</a>',
        '<iframe src="{u}"></iframe>',
        '<embed src="{u}">',
        '<img src="https://img.example/a.jpg" srcset="{u} 2x">',
        '<video src="{u}" poster="{u}"></video>',
        '<blockquote cite="{u}">quoted</blockquote>',
        '<svg><a href="{u}"><text>t</text></a></svg>',
    ],
)
def test_no_spelling_of_a_scripted_url_survives_extraction(href: str, element: str) -> None:
    page = (
        "<html><head><title>t</title></head><body><main><p>Article text that is long enough.</p>"
        f"<p>{element.format(u=href)}</p></main></body></html>"
    )
    body = extract(page, "https://news.example/a").body_html
    stored = snapshot_mod.parse(
        snapshot_mod.render(Snapshot("https://news.example/a", "t", body, 1))
    ).body
    assert stored == body
    assert [u for u in body_urls(stored) if scripted_in_body(*u)] == []
    # Frames and players are kept as article content, and data: pictures as pictures.
    found = executable_constructs(stored.replace("<iframe", "<x-if").replace("<embed", "<x-e"))
    assert [f for f in found if "data:image/" not in f] == []


def test_archive_bodies_written_by_the_pipeline_carry_no_scripted_url(outputs: Outputs) -> None:
    for name, body in outputs.archive_bodies.items():
        assert [u for u in body_urls(body) if scripted_in_body(*u)] == [], name
        found = executable_constructs(body)
        # Embedded frames and players are article content; what they load is not scripted.
        assert [f for f in found if f not in ("<iframe> element", "<embed> element",
                                               "<object> element")] == [], name  # fmt: skip


# -- in a real browser ------------------------------------------------------------------------

# Every element with a URL attribute, as the browser itself resolves it.
_BROWSER_SCAN = """() => {
  const bad = [];
  const schemes = ["javascript:", "vbscript:", "data:"];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) { bad.push(el.tagName + " " + name); continue; }
      if (!["href", "src", "action", "formaction", "poster", "cite", "xlink:href"].includes(name)) continue;
      let protocol = "";
      try { protocol = new URL(attr.value, document.baseURI).protocol; } catch (e) { continue; }
      const image = el.tagName === "IMG" && protocol === "data:" && /^\\s*data:image\\//i.test(attr.value);
      if (schemes.includes(protocol) && !image) bad.push(el.tagName + " " + name + "=" + attr.value);
    }
  }
  return bad;
}"""

_CLICK_UNSAFE_LINKS = """() => {
  for (const a of document.querySelectorAll("a[href]")) {
    if (a.protocol !== "http:" && a.protocol !== "https:") a.click();
  }
}"""


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".atom": "application/xml",
    }

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def browser(outputs: Outputs) -> Iterator[Any]:
    """Depends on ``outputs`` so the pipeline's asyncio.run() is done before
    Playwright's sync API starts its event loop in this thread."""
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def origin(outputs: Outputs) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(outputs.root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_opens_every_page_without_a_dialog_or_navigation(
    outputs: Outputs, browser: Any, origin: str
) -> None:
    dialogs: list[str] = []
    navigations: list[str] = []
    foreign: list[str] = []
    context = browser.new_context(service_workers="block")

    def route(r: Any) -> None:
        if r.request.url.startswith(origin + "/"):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    tab = context.new_page()
    tab.on("dialog", lambda d: (dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
    tab.on("framenavigated", lambda f: f == tab.main_frame and navigations.append(f.url))
    bad: dict[str, list[str]] = {}
    try:
        assert len(outputs.pages) >= 15
        for path in outputs.pages:
            url = f"{origin}/{path.relative_to(outputs.root).as_posix()}"
            navigations.clear()
            response = tab.goto(url, wait_until="load")
            assert response is not None and response.status == 200, url
            tab.wait_for_load_state("networkidle")
            tab.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            if path.suffix == ".html" and (found := tab.evaluate(_BROWSER_SCAN)):
                bad[url] = found
            tab.evaluate(_CLICK_UNSAFE_LINKS)  # what a reader clicking them would run
            tab.wait_for_load_state("load")
            assert tab.url == url and set(navigations) == {url}, (url, navigations)
    finally:
        context.close()
    assert dialogs == []
    assert foreign == []
    # Embedded players in archive bodies are content; nothing scripted is.
    assert bad == {}
