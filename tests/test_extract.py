"""extract.py on a page rebuilt around the real BBC seed capture, and on odd HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lxml.html
import pytest

from tests.conftest import corpus_files
from watcher.extract import extract, one_line
from watcher.models import PageMetadata

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_f45fe6e83c05ee36.txt"
URL = "https://www.bbc.com/zhongwen/simp/world-59301487"


def seed_body() -> str:
    return next(line for line in SEED.read_text("utf-8").splitlines() if line.startswith("<main"))


def expected_seed_body() -> str:
    """The seed body as extract() writes it.

    The only difference: the capture kept React's camelCase attribute names
    (``dateTime``, ``srcSet``); an HTML parser lower-cases attribute names, as
    the HTML standard requires, so they come back as ``datetime`` and ``srcset``.
    """
    return seed_body().replace(" dateTime=", " datetime=").replace(" srcSet=", " srcset=")


JSON_LD = {
    "@context": "https://schema.org",
    "@graph": [
        {"@type": "WebPage", "name": "not this"},
        {
            "@type": ["ReportageNewsArticle"],
            "headline": "拜登和习近平视像会晤开始  双方在讨论什么",
            "datePublished": "2021-11-16T01:10:00+00:00",
            "dateModified": "2021-11-16T02:00:00+00:00",
            "author": [{"@type": "Person", "name": "BBC News"}, {"name": "中文"}],
        },
    ],
}


def dirty_seed_body() -> str:
    """The seed body with the kind of noise a live page has."""
    body = seed_body()
    body = body.replace(
        '<main role="main">',
        '<main role="main" class="App-main" style="color:red" onclick="track()">'
        "<!-- ad slot --><script>window.dataLayer=[]</script><style>.a{}</style>",
        1,
    )
    body = body.replace("<div>", '<div class="GridItem-sc-12" data-testid="x">', 3)
    body = body.replace("<img ", '<img onerror="this.remove()" class="lazy" ', 1)
    body = body.replace("</main>", "<noscript><img src='pixel.gif'></noscript></main>")
    return body


def bbc_page(body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-Hans"><head><meta charset="utf-8">'
        "<title>拜登和习近平视像会晤开始 - BBC News 中文</title>"
        '<link rel="canonical" href="/zhongwen/simp/world-59301487">'
        '<meta property="og:title" content="拜登和习近平视像会晤开始 双方在讨论什么">'
        '<meta property="og:description" content="美国总统拜登与中国国家主席习近平 开始视频会晤。">'
        '<meta property="article:published_time" content="2021-11-16T01:05:00Z">'
        '<script type="application/ld+json">{"@type": "NewsArticle", broken</script>'
        f'<script type="application/ld+json">{json.dumps(JSON_LD, ensure_ascii=False)}</script>'
        "</head><body><header><nav><a href='/zhongwen/simp'>主页</a></nav></header>"
        f"{body}<footer><p>© 2021 BBC</p></footer></body></html>"
    )


def test_bbc_page_extracts_back_to_the_seed_body() -> None:
    page = extract(bbc_page(dirty_seed_body()), URL + "?at_medium=RSS")
    assert page.body_html == expected_seed_body()


def test_pretty_printed_page_gives_the_same_one_line_body() -> None:
    pretty = dirty_seed_body().replace("><", ">\n    <")
    assert extract(bbc_page(pretty), URL).body_html == expected_seed_body()


def test_bbc_page_metadata() -> None:
    page = extract(bbc_page(dirty_seed_body()), URL + "?at_medium=RSS")
    assert page.url == URL
    assert page.title == "拜登和习近平视像会晤开始 双方在讨论什么"
    assert page.metadata == PageMetadata(
        canonical_url=URL,
        og_title="拜登和习近平视像会晤开始 双方在讨论什么",
        og_description="美国总统拜登与中国国家主席习近平 开始视频会晤。",
        published_time="2021-11-16T01:05:00Z",
        modified_time="2021-11-16T02:00:00+00:00",
        headline="拜登和习近平视像会晤开始 双方在讨论什么",
        author="BBC News, 中文",
        language="zh-Hans",
    )


def page(head: str = "", body: str = "", lang: str = "") -> str:
    return f"<html{lang}><head>{head}</head><body>{body}</body></html>"


@pytest.mark.parametrize(
    ("head", "body", "title"),
    [
        (
            '<meta property="og:title" content=" OG  title "><title>T</title>',
            "<h1>H</h1>",
            "OG title",
        ),
        ("<title>T</title>", "<h1>\n  First <b>h1</b>\n</h1><h1>Second</h1>", "First h1"),
        ("<title> Just\n the   title </title>", "<h1> </h1><p>x</p>", "Just the title"),
        ("", "<p>nothing</p>", ""),
    ],
)
def test_title_precedence(head: str, body: str, title: str) -> None:
    assert extract(page(head, body), "https://example.com/").title == title


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://example.com/canonical", "https://example.com/canonical"),
        ("../news/1", "https://example.com/news/1"),
        ("//cdn.example.com/a", "https://cdn.example.com/a"),
        ("https://www.bbc.com/zhongwen/simp/world-59301487", None),  # another site's article
        ("https://example.com.evil.org/a/b", None),
        ("javascript:void(0)", None),
        ("ftp://example.com/x", None),
        ("", None),
    ],
)
def test_canonical_url(href: str, expected: str | None) -> None:
    url = "https://example.com/a/b?utm=1"
    html = page(f'<link rel="Canonical" href="{href}">', "<main><p>x</p></main>")
    extracted = extract(html, url)
    assert extracted.metadata.canonical_url == expected
    assert extracted.url == (expected or url)


def test_article_is_used_without_main() -> None:
    html = page(body="<nav>menu</nav><article><h1>Head</h1><p>Text</p></article><aside>x</aside>")
    assert (
        extract(html, "https://e.com/").body_html == "<article><h1>Head</h1><p>Text</p></article>"
    )


def test_empty_main_falls_through_to_article() -> None:
    html = page(body="<main><script>x()</script> </main><article><p>Text</p></article>")
    assert extract(html, "https://e.com/").body_html == "<article><p>Text</p></article>"


def test_readability_fallback_without_main_or_article() -> None:
    story = "".join(
        f"<p>Paragraph {i} of the story, with enough words, commas, and sentences. "
        "Readability scores long paragraphs of prose highly.</p>"
        for i in range(8)
    )
    html = page(
        body=(
            '<div class="menu"><a href="/">Home</a> <a href="/world">World</a></div>'
            f'<div class="story-body" style="x">{story}</div>'
            '<div class="footer">Copyright</div>'
        )
    )
    body = extract(html, "https://e.com/").body_html
    assert "Paragraph 0 of the story" in body
    assert "Paragraph 7 of the story" in body
    assert "Copyright" not in body
    assert "class=" not in body
    assert "style=" not in body


def test_scripted_urls_are_removed_media_kept() -> None:
    html = page(
        body=(
            "<main>"
            '<a href="javascript:void(0)" class="share">Share</a>'
            '<a href=" JavaScript:alert(1)">x</a>'
            '<a href="https://example.com/ok" target="_blank" rel="noopener">ok</a>'
            '<iframe src="javascript:alert(1)"></iframe>'
            '<iframe src="https://www.youtube.com/embed/x" width="560" allowfullscreen></iframe>'
            '<video src="v.mp4" poster="p.jpg" controls></video><audio src="a.mp3"></audio>'
            '<embed src="e.swf"><img src="i.jpg" alt="A" onload="x()" data-src="lazy.jpg">'
            '<button onclick="x()">Like</button><form><input name="q"></form>'
            "</main>"
        )
    )
    assert extract(html, "https://e.com/").body_html == (
        "<main><a>Share</a><a>x</a>"
        '<a href="https://example.com/ok">ok</a><iframe></iframe>'
        '<iframe src="https://www.youtube.com/embed/x" width="560" allowfullscreen="">'
        '</iframe><video src="v.mp4" poster="p.jpg" controls=""></video>'
        '<audio src="a.mp3"></audio><embed src="e.swf"/><img src="i.jpg" alt="A"/>'
        "<form></form></main>"
    )


def test_kept_attributes_and_escaping() -> None:
    html = page(
        body=(
            '<main><p id="p1" lang="en" aria-label="a &quot;q&quot;" data-e2e="t" data-x="y">'
            "a &lt;b&gt; &amp; c</p><time datetime='2021-11-16'>x</time><br></main>"
        )
    )
    assert extract(html, "https://e.com/").body_html == (
        '<main><p id="p1" lang="en" aria-label="a &quot;q&quot;" data-e2e="t">'
        'a &lt;b&gt; &amp; c</p><time datetime="2021-11-16">x</time><br/></main>'
    )


@pytest.mark.parametrize(
    "json_ld",
    [
        '{"@type": "NewsArticle", "headline": ',
        "not json at all",
        "",
        "[1, 2, null]",
        '{"@type": 5, "headline": "typed wrong"}',
        '{"@type": "NewsArticle", "headline": ["list"], "author": 7}',
        "[" * 100_000,
    ],
)
def test_malformed_json_ld_is_ignored(json_ld: str) -> None:
    html = page(f'<script type="application/ld+json">{json_ld}</script>', "<main><p>x</p></main>")
    extracted = extract(html, "https://e.com/")
    assert extracted.metadata.headline is None
    assert extracted.metadata.author is None
    assert extracted.body_html == "<main><p>x</p></main>"


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ('"Jane Doe"', "Jane Doe"),
        ('{"@type": "Person", "name": " Jane   Doe "}', "Jane Doe"),
        ('[{"name": "A"}, "B", {"name": "A"}, {"url": "x"}]', "A, B"),
        ("[]", None),
    ],
)
def test_json_ld_author_forms(author: str, expected: str | None) -> None:
    ld = f'[{{"@type": "Article", "headline": "H", "author": {author}}}]'
    html = page(f'<script type="application/ld+json">{ld}</script>')
    metadata = extract(html, "https://e.com/").metadata
    assert metadata.author == expected
    assert metadata.headline == "H"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n ",
        "<",
        "<<<>>>",
        "<html>",
        "<main>",
        "<main></div></span><p>unclosed <b>bold <i>it</main>",
        "a\x00b\x01c",
        '<?xml version="1.0" encoding="utf-8"?><html><body><main><p>x</p></main></body></html>',
        "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 5000 + "</body></html>",
        "<table><tr><td><main><p>in a table</td></tr></table>",
        "\ufeff<main><p>bom</p></main>",
        "<svg><main><p>foreign</p></main></svg>",
    ],
)
def test_odd_html_never_raises(html: str) -> None:
    extracted = extract(html, "https://e.com/")
    assert isinstance(extracted.body_html, str)
    assert "\n" not in extracted.body_html
    assert extracted.url == "https://e.com/"


def test_empty_document_gives_empty_body() -> None:
    extracted = extract("", "https://e.com/")
    assert (extracted.title, extracted.body_html) == ("", "")
    assert extracted.metadata == PageMetadata()


def test_five_megabyte_page() -> None:
    block = '<div class="x" style="y"><p>' + "文字" * 60 + '</p><img src="a.jpg"></div>'
    html = page("<script>" + "var x = 1;" * 200_000 + "</script>", f"<main>{block * 8000}</main>")
    assert len(html.encode()) > 5_000_000
    body = extract(html, "https://e.com/").body_html
    assert body.startswith("<main><div><p>文字")
    assert body.count('<img src="a.jpg"/>') == 8000


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>\n  a\n</p>\n<p>b</p>", "<p>a</p><p>b</p>"),
        ("<p>The quick\n   brown fox</p>", "<p>The quick brown fox</p>"),
        ("<p>中文\n  文字</p>", "<p>中文文字</p>"),
        ("<p>keep  inner  spaces </p>\r\n", "<p>keep  inner  spaces </p>"),
    ],
)
def test_one_line(html: str, expected: str) -> None:
    assert one_line(html) == expected


# --- real captures from the shared corpus (read at run time, never copied) ---


def corpus_bodies() -> list[Path]:
    """Corpus snapshot files (``tests.conftest.CORPUS``); empty when it is absent."""
    return corpus_files("snapshots/*/*.md")


def snapshot_html(path: Path) -> str:
    """The HTML part of a corpus snapshot: what follows the ``------`` line."""
    text = path.read_text("utf-8", errors="replace")
    _, sep, rest = text.partition("\n------\n")
    if not sep:
        _, _, rest = text.partition("\n---\n")
    return rest.strip()


@pytest.mark.skipif(not corpus_bodies(), reason="shared corpus not present")
@pytest.mark.parametrize("path", corpus_bodies(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_capture_round_trips(path: Path) -> None:
    """A real body wrapped in <main> survives extraction with its paragraphs, and
    extracting the result again changes nothing."""
    html = snapshot_html(path)
    wrapped = f"<html><body><header>site</header><main>{html}</main></body></html>"
    first = extract(wrapped, "https://e.com/").body_html
    again = extract(f"<html><body><main>{first[6:-7]}</main></body></html>", "https://e.com/")
    assert again.body_html == first
    assert not re.search(r' (class|style|on\w+)="', first)
    source = lxml.html.fragment_fromstring(html or "<p></p>", create_parent="div")
    result = lxml.html.fragment_fromstring(first or "<p></p>", create_parent="div")
    result_text = "".join(result.text_content().split())
    for paragraph in source.iter("p"):
        assert "".join(paragraph.text_content().split()) in result_text


def test_iframe_fallback_text_stays_raw() -> None:
    """iframe content is raw text to a parser; escaping it would grow on every re-extract."""
    html = page(
        body='<main><iframe src="https://e.com/v"><a href="x?a=1&b=2">v</a></iframe></main>'
    )
    expected = '<main><iframe src="https://e.com/v"><a href="x?a=1&b=2">v</a></iframe></main>'
    first = extract(html, "https://e.com/").body_html
    assert first == expected
    assert extract(page(body=first), "https://e.com/").body_html == expected
