"""Snapshot body -> Article blocks, on the seed file and the real corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import corpus_files
from watcher import snapshot
from watcher.article import normalise_text, origin_url, parse_article
from watcher.models import Article, BlockKind, Snapshot


@pytest.fixture
def seed_article(seed_path: Path) -> Article:
    return parse_article(snapshot.read(seed_path))


def _article(body: str, captured_at: int | None = 1637030584000) -> Article:
    return parse_article(
        Snapshot(url="https://e.com/a", title="T", body=body, captured_at=captured_at)
    )


def test_seed_has_the_expected_blocks(seed_article: Article) -> None:
    kinds = Counter(b.kind for b in seed_article.blocks)
    assert kinds[BlockKind.PARAGRAPH] == 14
    assert kinds[BlockKind.HEADING] == 2
    assert kinds[BlockKind.LIST_ITEM] == 4
    assert kinds[BlockKind.LINK_LIST] == 1
    headings = [b.text for b in seed_article.blocks if b.kind is BlockKind.HEADING]
    assert headings == ["拜登和习近平在开场白说了什么？", "会晤的目标与期待"]


def test_seed_images_have_origin_src_caption_and_credit(seed_article: Article) -> None:
    images = [b.image for b in seed_article.blocks if b.image]
    assert len(images) == 4
    captioned = [img for img in images if img.caption]
    assert len(captioned) == 3
    assert all(img.credit == "Reuters" for img in images)
    first = images[0]
    assert first.origin_src == (
        "https://ichef.bbci.co.uk/news/640/cpsprodpb/0D9D/production/_121558430_hi072001180.jpg"
    )
    assert first.src.startswith("https://images.weserv.nl/?url=")
    assert first.caption.startswith("美国总统拜登与中国国家主席习近平")
    # captions are folded into the image, not repeated as paragraphs
    paragraphs = [b.text for b in seed_article.blocks if b.kind is BlockKind.PARAGRAPH]
    assert "本次会晤由拜登总统发起，双方的开场白向外界公开，之后双方进入闭门会议。" in paragraphs
    assert (
        paragraphs.count("本次会晤由拜登总统发起，双方的开场白向外界公开，之后双方进入闭门会议。")
        == 1
    )


def test_seed_related_links(seed_article: Article) -> None:
    (related,) = [b for b in seed_article.blocks if b.kind is BlockKind.LINK_LIST]
    assert related.links[0].href == "https://www.bbc.com/zhongwen/simp/chinese-news-59217403"
    assert related.links[0].text.startswith("美国国家安全顾问苏利文")


def test_seed_time_element_resolved_against_epoch(seed_article: Article) -> None:
    block = seed_article.blocks[0]
    assert block.kind is BlockKind.TIME and block.text == "14 分钟前"
    (mention,) = block.times
    assert mention.datetime_attr == "2021-11-16"
    centre = (mention.start_ms + mention.end_ms) // 2  # type: ignore[operator]
    assert centre == 1637030584000 - 14 * 60_000  # 02:29:04 UTC
    assert mention.end_ms - mention.start_ms == 2 * 60_000  # type: ignore[operator]


def test_ad_slot_and_empty_divs_are_dropped_but_counted(seed_article: Article) -> None:
    assert seed_article.dropped_boilerplate >= 1
    assert all("广告" not in b.text for b in seed_article.blocks)


def test_text_is_normalised() -> None:
    assert normalise_text("a\u00a0 b\u3000c\u200b d\n") == "a b c d"
    article = _article("<p>  Hello,\u00a0world\u3000again </p>")
    assert article.blocks[0].text == "Hello, world again"


def test_relative_phrase_in_a_paragraph_is_masked_in_stable_text() -> None:
    (block,) = _article("<p>最近更新： 14 分钟前</p>").blocks
    assert block.stable_text == "最近更新： ⟨time⟩"
    assert block.times[0].granularity == "minute"


@pytest.mark.parametrize(
    ("src", "origin"),
    [
        ("https://images.weserv.nl/?url=ichef.bbci.co.uk/a.jpg", "https://ichef.bbci.co.uk/a.jpg"),
        (
            "https://x.com/_next/image?url=https%3A%2F%2Fcdn.x.com%2Fb.png&w=640",
            "https://cdn.x.com/b.png",
        ),
        ("https://cdn.x.com/c.png", "https://cdn.x.com/c.png"),
    ],
)
def test_proxy_urls_are_unwrapped(src: str, origin: str) -> None:
    assert origin_url(src) == origin


def test_figure_caption_list_quote_media_and_links() -> None:
    body = (
        "<article><h1>Head</h1><p>Lead with <a href='/x'>a link</a>.</p>"
        "<figure><img src='a.jpg' alt='alt'><figcaption>The caption</figcaption></figure>"
        "<blockquote><p>Quoted words</p></blockquote><ul><li>one</li><li>two</li></ul>"
        "<iframe src='https://www.youtube.com/embed/x' title='Video'></iframe></article>"
    )
    kinds = [(b.kind, b.text) for b in _article(body).blocks]
    assert kinds == [
        (BlockKind.HEADING, "Head"),
        (BlockKind.PARAGRAPH, "Lead with a link."),
        (BlockKind.IMAGE, "The caption"),
        (BlockKind.QUOTE, "Quoted words"),
        (BlockKind.LIST_ITEM, "one"),
        (BlockKind.LIST_ITEM, "two"),
        (BlockKind.MEDIA, "Video"),
    ]
    assert _article(body).blocks[1].links[0].href == "/x"


def test_short_article_is_not_swallowed_as_a_figure() -> None:
    blocks = _article(
        "<div><img src='a.jpg'><p>The only paragraph of a short post.</p></div>"
    ).blocks
    assert [b.kind for b in blocks] == [BlockKind.IMAGE, BlockKind.PARAGRAPH]


def test_loose_text_in_divs_becomes_paragraphs() -> None:
    blocks = _article("<div>\nfirst line<br>second</div>").blocks
    assert [b.text for b in blocks] == ["first line second"]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "<p>",
        "<div><<<>>></div>",
        "<script>x</script>",
        "<!DOCTYPE html><script>x</script>",
        "\x00",
        "<p>a\x00b</p>",
        "<?xml version='1.0' encoding='utf-8'?>",
        "<div>a" * 5000,
        "<blockquote>a<p>x</p>" * 5000,
        "<ul><li>a<ul>" * 5000,
        "<span>" * 100_000,
        "<img src='http://[not-an-ip]/?url=x'>",
    ],
)
def test_odd_bodies_never_raise(body: str) -> None:
    assert isinstance(_article(body), Article)


def test_text_between_child_elements_is_kept_in_order() -> None:
    blocks = _article("<div>a<b>b</b>c<div>d</div>e<!-- x -->f<i>g</i></div>").blocks
    assert [b.text for b in blocks] == ["abc", "d", "efg"]


def test_deep_nesting_keeps_the_text_and_what_follows() -> None:
    body = "<div>" * 5000 + "deep" + "</div>" * 5000 + "<p>after</p>"
    assert [b.text for b in _article(body).blocks] == ["deep", "after"]
    # Past the nesting the walker follows, the rest is read as one paragraph.
    blocks = _article("<div>a" * 3000).blocks
    assert sum(b.text.count("a") for b in blocks) == 3000


def test_xml_declaration_and_lone_surrogate_still_parse() -> None:
    assert [b.text for b in _article("<?xml version='1.0' encoding='utf-8'?><p>x</p>").blocks] == [
        "x"
    ]
    assert [b.text for b in _article("<p>a\udcff b</p><p>after</p>").blocks] == ["a? b", "after"]


def test_doctype_is_not_text() -> None:
    assert _article("<!DOCTYPE html><script>x</script>").blocks == ()


def test_five_megabyte_body() -> None:
    body = "<div>" + ("<p>" + "词 word " * 120 + "</p>") * 6000 + "</div>"
    assert len(body) > 5_000_000
    assert len(_article(body).blocks) == 6000


def test_ruby_annotation_is_text_but_not_link_text() -> None:
    (block,) = _article("<p><a href='/r'>漢<ruby>字<rt>zi</rt></ruby></a></p>").blocks
    assert block.text == "漢字zi"
    assert block.links[0].text == "漢字"


def test_every_corpus_snapshot_parses(corpus: Path) -> None:
    empty = []
    for path in corpus_files("snapshots/*/*.md"):
        article = parse_article(snapshot.read(path))
        if not article.blocks:
            empty.append(path.name)
    assert len(empty) <= 2  # some YouTube captures have an empty body
