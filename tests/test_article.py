"""Snapshot body -> Article blocks, on the seed file and the real corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import corpus_files
from watcher import snapshot
from watcher.article import normalise_text, parse_article
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


def test_byline_stamp_is_masked_in_stable_text() -> None:
    (block,) = _article("<p>Author 2020-07-21T09:01:06Z</p>").blocks
    assert block.text == "Author 2020-07-21T09:01:06Z"
    assert block.stable_text == "Author ⟨time⟩"
    (mention,) = block.times
    assert mention.text == "2020-07-21T09:01:06Z" and mention.granularity == "second"


def test_date_in_a_sentence_stays_text() -> None:
    (block,) = _article("<p>据该报道，张浩的量刑听证会定于2020年8月31日举行。</p>").blocks
    assert block.stable_text == block.text and block.times == ()


def test_time_element_in_a_byline_is_one_mention() -> None:
    (block,) = _article(
        '<p>Updated <time datetime="2020-07-21T09:01:00Z">Jul 21, 2020</time></p>'
    ).blocks
    assert block.stable_text == "Updated ⟨time⟩"
    (mention,) = block.times
    assert mention.datetime_attr == "2020-07-21T09:01:00Z"


@pytest.mark.parametrize(
    ("path", "index", "stable"),
    [
        ("reuters/1.md", 0, "⟨time⟩"),  # 2021-01-22T01:08:23Z
        ("voa/1.md", 0, "⟨time⟩"),  # Fri, 26 Jun 2020 14:42:56 GMT
        ("rfi/1.md", 0, "⟨time⟩"),  # 17/07/2020 - 12:42
        ("paopao/1.md", 0, "Don Evans 在 ⟨time⟩ 提交"),  # 星期四, 12/01/2016 - 12:19
    ],
)
def test_real_bylines_and_datelines_mask_their_stamp(
    corpus: Path, path: str, index: int, stable: str
) -> None:
    block = parse_article(snapshot.read(corpus / "snapshots" / path)).blocks[index]
    assert block.stable_text == stable
    assert [m.relative for m in block.times] == [False]


def test_real_dates_in_prose_and_captions_are_not_masked(corpus: Path) -> None:
    """rfa/1: a photo caption that begins with its date; rfi/3 a hearing's date."""
    for path, text in [
        ("rfa/1.md", "2002年1月6日，美国国会被破坏的情景。（AFP）"),
        ("rfi/3.md", "据该报道，张浩的量刑听证会定于2020年8月31日举行。"),
    ]:
        article = parse_article(snapshot.read(corpus / "snapshots" / path))
        block = next(b for b in article.blocks if b.text == text)
        assert block.stable_text == text


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


PICTURE = (
    "<figure><picture>"
    "<source type='image/webp' media='(min-width: 768px)' srcset='https://cdn.e.com/1080w/p.webp'>"
    "<source srcset='https://cdn.e.com/540w/p.jpeg 540w, https://cdn.e.com/1080w/p.jpeg 1080w'>"
    "{img}</picture><figcaption><span>The caption</span></figcaption></figure>"
    "<p>After the figure.</p>"
)


def test_image_inside_picture_is_read_with_its_caption() -> None:
    """libxml2 nests the <img> inside the (void) <source>; it is still read."""
    blocks = _article(PICTURE.format(img="<img src='https://cdn.e.com/p.jpeg' alt='alt'>")).blocks
    assert [(b.kind, b.text) for b in blocks] == [
        (BlockKind.IMAGE, "The caption"),
        (BlockKind.PARAGRAPH, "After the figure."),
    ]
    image = blocks[0].image
    assert image is not None
    assert (image.src, image.alt, image.caption) == (
        "https://cdn.e.com/p.jpeg",
        "alt",
        "The caption",
    )


@pytest.mark.parametrize(
    ("img", "src"),
    [
        ("<img data-src='https://cdn.e.com/lazy.jpeg'>", "https://cdn.e.com/lazy.jpeg"),
        (
            "<img srcset='https://cdn.e.com/s.jpeg 1x, https://cdn.e.com/s2.jpeg 2x'>",
            "https://cdn.e.com/s.jpeg",
        ),
        (
            "<img src='data:image/gif;base64,R0lGOD' data-src='https://cdn.e.com/real.jpeg'>",
            "https://cdn.e.com/real.jpeg",
        ),
        (
            "<img src='data:image/gif;base64,R0lGOD' data-lazy-src='https://cdn.e.com/wp.jpeg'>",
            "https://cdn.e.com/wp.jpeg",
        ),
        # no address on the <img>: the picture's first <source> names it
        ("<img alt='alt'>", "https://cdn.e.com/1080w/p.webp"),
    ],
)
def test_image_inside_picture_takes_its_address_where_the_page_puts_it(img: str, src: str) -> None:
    (image, _) = _article(PICTURE.format(img=img)).blocks
    assert image.image is not None and image.image.src == src


def test_text_after_a_void_source_or_track_is_not_lost() -> None:
    body = (
        "<div><video title='Clip'><source src='v.mp4' type='video/mp4'><track src='t.vtt'></video>"
        "<audio><source src='a.mp3'></audio>Loose words after.</div><p>Next.</p>"
    )
    blocks = _article(body).blocks
    assert [(b.kind, b.text) for b in blocks] == [
        (BlockKind.MEDIA, "Clip"),
        (BlockKind.MEDIA, ""),
        (BlockKind.PARAGRAPH, "Loose words after."),
        (BlockKind.PARAGRAPH, "Next."),
    ]
    assert [b.media_src for b in blocks[:2]] == ["v.mp4", "a.mp3"]


def test_real_picture_figures_are_images_with_captions(corpus: Path) -> None:
    """Matters wraps every photo in <figure><picture><source…><img>: each is
    read as an image with its caption, not as a bare caption paragraph."""
    article = parse_article(snapshot.read(corpus / "snapshots" / "matters" / "1.md"))
    images = [b.image for b in article.blocks if b.image is not None]
    assert [img.src.rsplit("/", 1)[-1] for img in images] == [
        "42c04cba-099c-4f14-8637-68e73ac010b3.jpeg",
        "fe23f84a-4943-4962-b171-40a4f6dc6b56.jpeg",
    ]
    assert images[0].caption.startswith("〈要求日本歸還古器物（一）〉")
    paragraphs = [b.text for b in article.blocks if b.kind is BlockKind.PARAGRAPH]
    assert not any(p.startswith("〈要求日本歸還古器物") for p in paragraphs)


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
