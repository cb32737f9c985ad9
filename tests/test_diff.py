"""Classified changes between two versions: built from the seed and real pairs."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import CORPUS, DISPUTED_LABELS
from watcher import snapshot
from watcher.diff import classify, diff_snapshots
from watcher.models import Change, Snapshot, Verdict, change_from_dict, change_to_dict
from watcher.report import render_text

LEAD = "预计将持续数个小时。"
PARA = "<div><p>在开场白中，习近平主席称拜登是“老朋友”。 </p></div>"
MINUTE = 60_000


@pytest.fixture
def seed(seed_path: Path) -> Snapshot:
    return snapshot.read(seed_path)


def _edit(snap: Snapshot, old: str, new: str, **changes: object) -> Snapshot:
    assert old in snap.body, old
    return replace(snap, body=snap.body.replace(old, new, 1), **changes)  # type: ignore[arg-type]


def _kinds(change: Change) -> list[str]:
    return [item.kind for item in change.items]


def test_identical_versions_have_no_change(seed: Snapshot) -> None:
    change = diff_snapshots(seed, seed)
    assert change.items == () and change.verdict is Verdict.NONE


def test_header_only_change_is_noise(seed: Snapshot) -> None:
    later = replace(seed, captured_at=seed.captured_at + 5 * MINUTE)  # type: ignore[operator]
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["header_time"]
    assert change.verdict is Verdict.NOISE


def test_ticking_relative_time_is_noise(seed: Snapshot) -> None:
    later = _edit(seed, "14 分钟前", "1 小时前", captured_at=seed.captured_at + 62 * MINUTE)  # type: ignore[operator]
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["header_time", "relative_time"]
    rel = change.items[1]
    assert (rel.before, rel.after) == ("14 分钟前", "1 小时前")
    assert change.verdict is Verdict.NOISE
    assert "relative timestamp" in change.summary


def test_relative_time_that_jumps_forward_is_news(seed: Snapshot) -> None:
    """Same capture time, but the article now claims to be newer: re-dated."""
    later = _edit(seed, "14 分钟前", "2 分钟前")
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["time"]
    assert change.verdict is Verdict.SIGNIFICANT


def test_one_edited_paragraph_has_an_inline_diff(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, LEAD, "预计将持续三个小时。"))
    assert _kinds(change) == ["paragraph_edited"]
    inline = change.items[0].inline
    assert [op for op in inline if op[0] != "="] == [("-", "数"), ("+", "三")]
    assert change.verdict is Verdict.SIGNIFICANT


def test_paragraph_inserted_after_the_lead_is_one_addition(seed: Snapshot) -> None:
    new_para = "<div><p>白宫发言人随后表示，会晤气氛坦诚。</p></div>"
    lead_end = seed.body.index("</b></p></div>") + len("</b></p></div>")
    later = replace(seed, body=seed.body[:lead_end] + new_para + seed.body[lead_end:])
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["paragraph_added"]
    assert change.items[0].after == "白宫发言人随后表示，会晤气氛坦诚。"


def test_removed_paragraph(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, PARA, ""))
    assert _kinds(change) == ["paragraph_removed"]
    assert change.items[0].before == "在开场白中，习近平主席称拜登是“老朋友”。"


def test_moved_paragraph(seed: Snapshot) -> None:
    without = seed.body.replace(PARA, "", 1)
    anchor = "</b></p></div>"
    at = without.index(anchor) + len(anchor)
    later = replace(seed, body=without[:at] + PARA + without[at:])
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["paragraph_moved"]


def test_changed_headline(seed: Snapshot) -> None:
    change = diff_snapshots(seed, replace(seed, title="拜登与习近平视像会晤结束 双方谈了什么"))
    assert _kinds(change) == ["title"]
    assert change.verdict is Verdict.SIGNIFICANT


def test_swapped_image(seed: Snapshot) -> None:
    later = _edit(seed, "_121571840_hi072001309.jpg", "_999999999_new.jpg")
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["image_changed"]
    assert change.items[0].after["origin_src"].endswith("_999999999_new.jpg")


def test_same_image_behind_another_proxy_is_markup_only(seed: Snapshot) -> None:
    later = replace(
        seed, body=seed.body.replace("https://images.weserv.nl/?url=", "https://wsrv.nl/?url=")
    )
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["markup_only"]
    assert change.verdict is Verdict.NOISE


# -- image identity and photo swaps -----------------------------------------------
BBC_IMG = "ichef.bbci.co.uk/news/640/cpsprodpb/14769/production/_121571838_hi072001304.jpg"
FIGURE_END = "<div><p>习近平首先承认"


def _figure(body: str, img_id: str) -> str:
    """The seed's whole figure (image, credit, caption) holding ``img_id``."""
    at = body.index(img_id)
    start = body.rindex("<div><div><div><div><div data-e2e", 0, at)
    return body[
        start : body.index("</div></div></div></div>", at) + len("</div></div></div></div>")
    ]


def test_same_image_unproxied_at_another_width_is_markup_only(seed: Snapshot) -> None:
    body = seed.body.replace("https://images.weserv.nl/?url=", "https://")
    body = body.replace("/news/640/", "/news/976/").replace("hi072001304.jpg", "hi072001304.webp")
    change = diff_snapshots(seed, replace(seed, body=body))
    assert _kinds(change) == ["markup_only"]
    assert change.verdict is Verdict.NOISE and change.summary == "noise only: markup only"


def test_same_image_at_another_host_with_a_new_alt_names_only_the_alt(seed: Snapshot) -> None:
    later = _edit(
        seed,
        f'alt="对于本次对话会涉及到的领域，拜登着重提到人权、经济，以及确保自由而开放的印太地区。" '
        f'src="https://images.weserv.nl/?url={BBC_IMG}"',
        f'alt="拜登与习近平视频会晤。" src="https://{BBC_IMG.replace("/640/", "/800/")}"',
    )
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["image_changed"]
    assert change.items[0].detail == "alt"


def test_another_picture_at_another_width_is_an_image_change(seed: Snapshot) -> None:
    later = _edit(
        seed,
        "news/640/cpsprodpb/12D1/production/_121571840",
        "news/976/cpsprodpb/12D1/production/_999999999",
    )
    change = diff_snapshots(seed, later)
    assert _kinds(change) == ["image_changed"]
    assert change.items[0].detail == "origin_src"
    assert change.verdict is Verdict.SIGNIFICANT


def test_photo_moved_while_another_took_its_place(seed: Snapshot) -> None:
    """One move plus one new photo, not two changed photos."""
    old_figure = _figure(seed.body, "_121571838")
    new_figure = old_figure.replace(
        "14769/production/_121571838_hi072001304", "1A2B/production/_999999999_new"
    ).replace(
        "对于本次对话会涉及到的领域，拜登着重提到人权、经济，以及确保自由而开放的印太地区。",
        "白宫外景。",
    )
    body = seed.body.replace(old_figure, new_figure)
    anchor = '<div><ul role="list">'
    body = body.replace(anchor, old_figure + anchor, 1)
    change = diff_snapshots(seed, replace(seed, body=body))
    assert sorted(_kinds(change)) == ["image_added", "image_moved"]
    added = next(i for i in change.items if i.kind == "image_added")
    assert added.after["caption"] == "白宫外景。"
    assert "1 image moved" in change.summary and "1 image added" in change.summary


PICTURE = (
    "<p>Lead.</p><figure><picture>"
    "<source type='image/webp' srcset='https://cdn.e.com/540w/{id}.webp'>"
    "<img src='https://cdn.e.com/{id}.jpeg' alt=''></picture>"
    "<figcaption>Protesters in the square.</figcaption></figure><p>After.</p>"
)


def test_swapped_photo_inside_picture_is_news() -> None:
    """libxml2 nests the <img> inside the void <source>: the swap must still be seen."""
    old = Snapshot("https://e.com/a", "T", PICTURE.format(id="42c04cba"), 1)
    change = diff_snapshots(old, replace(old, body=PICTURE.format(id="fe23f84a")))
    assert _kinds(change) == ["image_changed"]
    assert change.items[0].detail == "origin_src"
    assert change.verdict is Verdict.SIGNIFICANT and change.summary == "1 image changed"


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        # another host of the same CDN carrying the same image id
        ("dw/2.md", "api.dw.com/image/", "static.dw.com/image/"),
        ("paopao/1.md", "https://pao-pao.net/sites/", "https://files.pao-pao.net/sites/"),
        # the proxy dropped and another width
        (
            "bbc/2.md",
            "https://images.weserv.nl/?url=ichef.bbci.co.uk/news/640/",
            "https://ichef.bbci.co.uk/news/800/",
        ),
        ("iyouport/1.md", "https://i0.wp.com/www.iyouport.org/", "https://www.iyouport.org/"),
        ("ft/2.md", "/unsafe/1340x754/", "/unsafe/800x450/"),
        # a WordPress size variant, a Drupal image style, a Plone scale
        (
            "cdt/2.md",
            'src="https://chinadigitaltimes.net/chinese/files/2019/01/b站.jpg"',
            'src="https://chinadigitaltimes.net/chinese/files/2019/01/b站-1024x576.jpg"',
        ),
        ("chinafile/1.md", "/styles/large/public/", "/styles/medium/public/"),
        (
            "rfa/1.md",
            "/000_8yb4zp.jpg/@@images/8082e210-6d94-479b-97cb-6793cc092ae4.jpeg",
            "/000_8yb4zp.jpg/image",
        ),
    ],
)
def test_real_page_same_pictures_at_other_addresses_are_markup_only(
    corpus: Path, name: str, old: str, new: str
) -> None:
    before = snapshot.read(corpus / "snapshots" / name)
    assert old in before.body
    change = diff_snapshots(before, replace(before, body=before.body.replace(old, new)))
    assert _kinds(change) == ["markup_only"]
    assert change.verdict is Verdict.NOISE


def test_real_page_photo_swapped_inside_picture_is_news(corpus: Path) -> None:
    """Matters serves each photo as <figure><picture><source…><img>."""
    before = snapshot.read(corpus / "snapshots" / "matters" / "1.md")
    after = replace(
        before,
        body=before.body.replace(
            "42c04cba-099c-4f14-8637-68e73ac010b3", "0badf00d-0000-4000-8000-000000000000"
        ),
    )
    change = diff_snapshots(before, after)
    assert _kinds(change) == ["image_changed"]
    assert change.items[0].location == "#1 image"
    assert change.verdict is Verdict.SIGNIFICANT and change.summary == "1 image changed"


def test_real_page_photo_moved_while_another_took_its_place(corpus: Path) -> None:
    before = snapshot.read(corpus / "snapshots" / "matters" / "1.md")
    start = before.body.index("<figure")
    first = before.body[start : before.body.index("</figure>", start) + len("</figure>")]
    other = first.replace(
        "42c04cba-099c-4f14-8637-68e73ac010b3", "0badf00d-0000-4000-8000-000000000000"
    )
    other = other.replace("〈要求日本歸還古器物（一）〉", "〈另一份檔案〉")
    body = before.body.replace(first, other)
    at = body.rindex("</figure>") + len("</figure>")
    change = diff_snapshots(before, replace(before, body=body[:at] + first + body[at:]))
    assert sorted(_kinds(change)) == ["image_added", "image_moved"]
    moved = next(i for i in change.items if i.kind == "image_moved")
    assert moved.detail is not None and moved.detail.startswith("moved from #1 to #5")


def test_attributes_and_wrappers_only_is_markup_only(seed: Snapshot) -> None:
    later = replace(seed, body=seed.body.replace("<div><p>", '<div class="x"><p style="c">'))
    assert _kinds(diff_snapshots(seed, later)) == ["markup_only"]


def test_changed_link(seed: Snapshot) -> None:
    later = _edit(seed, "chinese-news-59217403", "chinese-news-59999999")
    assert _kinds(diff_snapshots(seed, later)) == ["link_changed"]


def test_english_numbers_stay_whole() -> None:
    base = Snapshot("https://e.com/a", "T", "<p>The fund raised $3,000 on Monday.</p>", 1)
    change = diff_snapshots(base, replace(base, body="<p>The fund raised $3,500 on Monday.</p>"))
    assert [op for op in change.items[0].inline if op[0] != "="] == [("-", "3,000"), ("+", "3,500")]


def test_record_is_json_serialisable(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, LEAD, "预计将持续三个小时。"))
    data = json.loads(json.dumps(change_to_dict(change), ensure_ascii=False))
    assert data["schema"] == 1 and data["verdict"] == "significant"


def _pair(pid: str) -> Change:
    return diff_snapshots(
        snapshot.read(CORPUS / "pairs" / pid / "v1.md"),
        snapshot.read(CORPUS / "pairs" / pid / "v2.md"),
    )


@pytest.mark.parametrize(
    ("pid", "kinds", "verdict"),
    [
        ("a006", ["header_time"], Verdict.NOISE),  # capture time only
        ("a009", ["markup_only"], Verdict.NOISE),  # NBSP in the title
        ("a003", ["boilerplate"], Verdict.NOISE),  # feedx footer added
        ("a014", ["title"], Verdict.SIGNIFICANT),
        ("a049", ["markup_only", "relative_time"], Verdict.NOISE),  # "42 分钟前" -> "3 小时前"
    ],
)
def test_real_pairs(corpus: Path, pid: str, kinds: list[str], verdict: Verdict) -> None:
    change = _pair(pid)
    assert sorted(set(_kinds(change))) == kinds
    assert change.verdict is verdict


def test_every_real_pair_agrees_with_the_labels_on_the_verdict(corpus: Path) -> None:
    labels = json.loads((corpus / "pairs" / "labels.json").read_text(encoding="utf-8"))["pairs"]
    disagreements = [
        pid for pid, label in labels.items() if _pair(pid).significant != label["significant"]
    ]
    assert disagreements == sorted(DISPUTED_LABELS)  # each with its reason in the file


# -- whitespace: spacing a reader does not read is noise, and named -----------------
def _items(change: Change) -> list[tuple[str, bool, str, str]]:
    return [(i.kind, i.significant, i.location, i.detail) for i in change.items]


def test_title_spaced_out_between_chinese_words_is_whitespace_only(seed: Snapshot) -> None:
    change = diff_snapshots(seed, replace(seed, title=seed.title.replace("视像会晤", "视像 会晤")))
    assert _items(change) == [("markup_only", False, "title", "whitespace only: space added")]
    assert change.verdict is Verdict.NOISE and change.summary == "noise only: markup only"


def test_title_nbsp_or_doubled_space_names_the_title_not_the_body(seed: Snapshot) -> None:
    """The body bytes are identical: the reason must not say "body"."""
    later = replace(seed, title=seed.title.replace(" ", "\u00a0 "))
    change = diff_snapshots(seed, later)
    assert _items(change) == [
        ("markup_only", False, "title", "whitespace only: space → no-break space + space")
    ]
    assert "title: whitespace only" in render_text(change)


def test_two_latin_words_joined_in_the_title_are_an_edit() -> None:
    base = Snapshot("https://e.com/a", "Talks over a stop gap", "<p>x</p>", 1)
    change = diff_snapshots(base, replace(base, title="Talks over a stopgap"))
    assert _kinds(change) == ["title"] and change.verdict is Verdict.SIGNIFICANT


def test_paragraph_spaced_out_is_whitespace_only_at_that_block(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, LEAD, "预计将持续 数个小时。"))
    ((kind, significant, location, detail),) = _items(change)
    assert (kind, significant, detail) == ("markup_only", False, "whitespace only: space added")
    assert location.endswith(" paragraph") and location.startswith("#")


def test_nbsp_and_ideographic_spaces_in_the_body_are_whitespace_only(seed: Snapshot) -> None:
    """Folded by the parser (nothing visible changes); the raw body names how."""
    later = _edit(seed, "“老朋友”。 </p>", "“老朋友”。&nbsp;\u3000</p>")
    change = diff_snapshots(seed, later)
    assert _items(change) == [
        (
            "markup_only",
            False,
            "body",
            "whitespace only: space → no-break space + ideographic space",
        )
    ]


def test_nbsp_between_chinese_words_is_whitespace_only_at_that_block(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, "双方进入闭门会议", "双方进入&nbsp;闭门会议"))
    assert [(i.kind, i.detail) for i in change.items] == [
        ("markup_only", "whitespace only: space added")
    ]


def test_a_real_edit_beside_a_respacing_is_one_edit(seed: Snapshot) -> None:
    change = diff_snapshots(seed, _edit(seed, LEAD, "预计将持续 三个小时。"))
    assert _kinds(change) == ["paragraph_edited"]
    assert "预计将持续 三个小时。" in change.items[0].after


def test_two_latin_words_joined_in_a_paragraph_are_an_edit() -> None:
    base = Snapshot("https://e.com/a", "T", "<p>The fund raised money on Monday.</p>", 1)
    change = diff_snapshots(base, replace(base, body="<p>The fund raised money onMonday.</p>"))
    assert _kinds(change) == ["paragraph_edited"]


@pytest.mark.parametrize(
    ("pid", "location", "detail"),
    [
        # the archive's front-matter title lost its leading space; body bytes identical
        ("a001", "front matter title", "whitespace only: space removed"),
        ("a009", "front matter title", "whitespace only: no-break space + space → 2 spaces"),
        ("a011", "front matter title", "whitespace only: no-break space → space ×2"),
        # title line and front matter both doubled a space; the body only ticked "42 分钟前"
        ("a049", "title", "whitespace only: space → 2 spaces"),
    ],
)
def test_real_whitespace_only_differences_name_their_place(
    corpus: Path, pid: str, location: str, detail: str
) -> None:
    change = _pair(pid)
    markup = [(i.location, i.detail) for i in change.items if i.kind == "markup_only"]
    assert markup == [(location, detail)]
    assert change.verdict is Verdict.NOISE
    assert "body: HTML differs" not in render_text(change)


def test_real_heading_spaced_out_beside_real_edits(corpus: Path) -> None:
    """a012: "疫情起源中共外长甩锅重新定性" gained a space; the retitle is still news."""
    change = _pair("a012")
    assert ("markup_only", False, "#21 heading", "whitespace only: space added") in _items(change)
    assert "heading_edited" in _kinds(change) and change.verdict is Verdict.SIGNIFICANT
    assert not any(i.location == "#21 heading" and i.significant for i in change.items)


def test_real_zero_width_spaces_inside_an_edited_paragraph_are_not_shown(corpus: Path) -> None:
    """a025: v2 writes "宣\u200b\u200b称"; the paragraph's only edit is its quotes."""
    change = _pair("a025")
    (item,) = [i for i in change.items if "中共竟宣称《中英联合声明》" in (i.after or "")]
    assert item.kind == "typography"
    assert not any("\u200b" in text for _, text in item.inline)


# -- stamps inside running text are times, judged by the time rules -----------------
def _byline(stamp: str, label: str = "BBC 记者") -> str:
    return f"<div><p>{label} {stamp}</p></div>"


def test_byline_stamp_that_moves_is_a_time_item_not_an_edit(seed: Snapshot) -> None:
    old = _edit(seed, PARA, _byline("2021-11-16T02:43:04Z") + PARA)
    new = _edit(seed, PARA, _byline("2021-11-16T05:10:00Z") + PARA)
    change = diff_snapshots(old, new)
    assert _items(change) == [("time", True, change.items[0].location, "publication time")]
    assert (change.items[0].before, change.items[0].after) == (
        "2021-11-16T02:43:04Z",
        "2021-11-16T05:10:00Z",
    )
    assert change.summary == "time stamp changed"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("2021年11月16日 10:43", "2021年11月16日 11:45"),
        ("Nov 16, 2021", "Nov 17, 2021"),
        ("2021-11-16 10:43", "2021-11-16 11:45"),
    ],
)
def test_updated_stamp_in_a_byline_is_noise(seed: Snapshot, before: str, after: str) -> None:
    old = _edit(seed, PARA, _byline(before, "最近更新：") + PARA)
    new = _edit(seed, PARA, _byline(after, "最近更新：") + PARA)
    change = diff_snapshots(old, new)
    assert _items(change) == [("time", False, change.items[0].location, "updated stamp")]
    assert change.verdict is Verdict.NOISE


def test_stamp_restated_in_another_format_is_noise(seed: Snapshot) -> None:
    old = _edit(seed, PARA, _byline("2021-11-16T02:43:04Z") + PARA)
    new = _edit(seed, PARA, _byline("2021-11-16 02:43:04") + PARA)
    change = diff_snapshots(old, new)
    assert [(i.kind, i.detail) for i in change.items] == [("time", "same time, restated")]
    assert change.verdict is Verdict.NOISE


def test_byline_with_a_new_author_and_stamp_is_one_edit(seed: Snapshot) -> None:
    old = _edit(seed, PARA, _byline("2021-11-16T02:43:04Z", "记者张三") + PARA)
    new = _edit(seed, PARA, _byline("2021-11-16T05:10:00Z", "记者李四") + PARA)
    change = diff_snapshots(old, new)
    assert _kinds(change) == ["paragraph_edited"]


def test_a_date_changed_in_a_sentence_is_still_an_edit() -> None:
    body = "<p>据该报道，张浩的量刑听证会定于2020年8月31日举行。</p>"
    base = Snapshot("https://e.com/a", "T", body, 1)
    change = diff_snapshots(base, replace(base, body=body.replace("8月31日", "9月30日")))
    assert _kinds(change) == ["paragraph_edited"]


@pytest.mark.parametrize(
    ("path", "old", "new", "detail"),
    [
        # Reuters' dateline paragraph "2021-01-22T01:08:23Z": the publication time
        ("reuters/1.md", "2021-01-22T01:08:23Z", "2021-01-22T03:40:00Z", "publication time"),
        # RFI's "17/07/2020 - 12:42"
        ("rfi/1.md", "17/07/2020 - 12:42", "17/07/2020 - 15:05", "publication time"),
        # VOA's "Fri, 26 Jun 2020 14:42:56 GMT" above the video
        (
            "voa/1.md",
            "Fri, 26 Jun 2020 14:42:56 GMT",
            "Fri, 26 Jun 2020 16:05:10 GMT",
            "publication time",
        ),
        # pao-pao (Drupal) "Don Evans 在 星期四, 12/01/2016 - 12:19 提交"
        (
            "paopao/1.md",
            "星期四, 12/01/2016 - 12:19",
            "星期五, 12/02/2016 - 09:05",
            "publication time",
        ),
    ],
)
def test_real_captures_whose_stamp_alone_changed(
    corpus: Path, path: str, old: str, new: str, detail: str
) -> None:
    before = snapshot.read(corpus / "snapshots" / path)
    after = replace(before, body=before.body.replace(old, new))
    change = diff_snapshots(before, after)
    assert {i.kind for i in change.items} == {"time"}
    assert {(i.before, i.after, i.detail) for i in change.items} == {(old, new, detail)}
    assert "paragraph" not in change.summary


# -- a paragraph split or joined; a block that moved ---------------------------------
COUNCIL = "The council met on Monday to discuss the new budget for the city's schools."
MEMBERS = "Several members asked for more money for teachers and fewer new buildings."
VOTE = "A vote is expected next week, the chair said after the meeting."
LINE_BREAKS = re.compile(r"(?:<br ?/?>\s*){2,}")


def _versions(old_body: str, new_body: str) -> Change:
    old = Snapshot("https://e.com/a", "T", old_body, 1)
    return diff_snapshots(old, replace(old, body=new_body))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            f"<p>{COUNCIL}<br><br>{MEMBERS}</p><p>{VOTE}</p>",
            f"<p>{COUNCIL}</p><p>{MEMBERS}</p><p>{VOTE}</p>",
        ),
        (
            f"<p>{COUNCIL}</p><p>{MEMBERS}</p><p>{VOTE}</p>",
            f"<p>{COUNCIL}<br/> <br/>{MEMBERS}</p><p>{VOTE}</p>",
        ),
    ],
    ids=["split", "joined"],
)
def test_paragraph_split_or_joined_with_the_same_words_is_markup_only(old: str, new: str) -> None:
    change = _versions(old, new)
    assert _kinds(change) == ["markup_only"]
    assert change.verdict is Verdict.NOISE and change.summary == "noise only: markup only"


def test_split_plus_a_two_word_edit_is_one_edit() -> None:
    edited = MEMBERS.replace("more money", "higher pay")
    change = _versions(
        f"<p>{COUNCIL}<br><br>{MEMBERS}</p><p>{VOTE}</p>",
        f"<p>{COUNCIL}</p><p>{edited}</p><p>{VOTE}</p>",
    )
    assert _kinds(change) == ["paragraph_edited"]
    [item] = change.items
    assert (item.location, item.detail) == ("#1–#2 paragraph", "one paragraph split into 2")
    changed = [op for op in item.inline if op[0] != "="]
    assert changed == [("-", "more"), ("+", "higher"), ("-", "money"), ("+", "pay")]
    assert change.verdict is Verdict.SIGNIFICANT and change.summary == "1 paragraph edited"


def test_split_plus_an_edit_on_the_seed(seed: Snapshot) -> None:
    split = _edit(seed, "也对世界有责任。", "也对世界有责任。</p><p>")
    change = diff_snapshots(seed, _edit(split, "恪守", "遵守"))
    assert _kinds(change) == ["paragraph_edited"]
    [item] = change.items
    assert (item.location, item.detail) == ("#8–#9 paragraph", "one paragraph split into 2")
    assert [op for op in item.inline if op[0] != "="] == [("-", "恪"), ("+", "遵")]
    assert change.summary == "1 paragraph edited"


def test_paragraphs_joined_plus_an_edit_on_the_seed(seed: Snapshot) -> None:
    joined = _edit(seed, " </p></div><div><p>在开场白中", "<br><br>在开场白中")
    change = diff_snapshots(seed, _edit(joined, "老朋友", "老朋友们"))
    assert _kinds(change) == ["paragraph_edited"]
    [item] = change.items
    assert (item.location, item.detail) == ("#9 paragraph", "2 paragraphs joined into one")
    assert [op for op in item.inline if op[0] != "="] == [("+", "们")]


def test_a_paragraph_added_after_an_edited_one_is_not_a_split() -> None:
    change = _versions(
        f"<p>{COUNCIL}</p><p>{VOTE}</p>",
        f"<p>{COUNCIL.replace('Monday', 'Tuesday')}</p><p>{MEMBERS}</p><p>{VOTE}</p>",
    )
    assert _kinds(change) == ["paragraph_edited", "paragraph_added"]
    assert change.items[0].detail == ""


@pytest.mark.parametrize("name", ["rfa/1.md", "rfa/5.md", "initium/1.md", "weiquanwang/1.md"])
def test_real_page_line_breaks_turned_into_paragraphs_are_markup_only(
    corpus: Path, name: str
) -> None:
    """Real ``<br><br>``-joined paragraphs as ``<p>``s, and back; in rfa/1 a
    photo sits between the pieces of one of them."""
    before = snapshot.read(corpus / "snapshots" / name)
    after = replace(before, body=LINE_BREAKS.sub("</p><p>", before.body))
    assert after.body != before.body
    for change in (diff_snapshots(before, after), diff_snapshots(after, before)):
        assert _kinds(change) == ["markup_only"]
        assert change.verdict is Verdict.NOISE


def test_real_pair_paragraphs_split_around_photos(corpus: Path) -> None:
    """a039 (RFA): v2 split <br>-joined paragraphs into <p>s and changed a few
    words (响应 -> 回应), set a new photo between the pieces of one and moved
    another photo down. Before: 15 paragraphs added, 2 removed."""
    change = _pair("a039")
    splits = [(i.location, i.detail) for i in change.items if "split into" in i.detail]
    assert splits == [
        ("#1–#2 paragraph", "one paragraph split into 2"),
        ("#11–#24 paragraph", "one paragraph split into 8"),
        ("#29–#30 paragraph", "one paragraph split into 2"),
    ]
    long_one = next(i for i in change.items if i.location == "#11–#24 paragraph")
    assert [op for op in long_one.inline if op[0] != "="] == [
        ("+", " "), ("-", "响"), ("+", "回"), ("-", "量"), ("+", "数"), ("-", "响"), ("+", "回"),
    ]  # fmt: skip
    assert _kinds(change).count("paragraph_added") <= 4
    assert _kinds(change).count("paragraph_removed") <= 1
    # the photo moved with the line repeating its caption; the short line
    # "日本人形容香港跟二战前日本一样" it moved past did not move
    moved = [i for i in change.items if i.kind.endswith("_moved")]
    assert moved[0].kind == "image_moved" and moved[0].before.startswith("周庭从小喜爱日本文化")
    assert "paragraph_moved" not in _kinds(change)


def test_a_photo_swapped_with_the_next_paragraph_is_the_photo_moving() -> None:
    """Layout, not news: the story reads the same."""
    photo = (
        "<figure><img src='https://e.com/hall.jpg' alt='The council hall'>"
        "<figcaption>The council hall on Monday.</figcaption></figure>"
    )
    change = _versions(
        f"<p>{COUNCIL}</p>{photo}<p>{MEMBERS}</p><p>{VOTE}</p>",
        f"<p>{COUNCIL}</p><p>{MEMBERS}</p>{photo}<p>{VOTE}</p>",
    )
    assert _kinds(change) == ["image_moved"]
    after = "now after “Several members asked for more…”"
    assert change.items[0].detail == f"moved from #2 to #3, {after}"
    assert change.verdict is Verdict.NOISE and change.summary == "noise only: 1 image moved"


def test_a_paragraph_moved_is_news() -> None:
    change = _versions(
        f"<p>{COUNCIL}</p><p>{MEMBERS}</p><p>{VOTE}</p><p>Short.</p>",
        f"<p>{VOTE}</p><p>{COUNCIL}</p><p>{MEMBERS}</p><p>Short.</p>",
    )
    assert _kinds(change) == ["paragraph_moved"]
    assert change.items[0].detail == "moved from #3 to #1, now first"
    assert change.verdict is Verdict.SIGNIFICANT and change.summary == "1 paragraph moved"


def test_a_photo_moving_with_its_caption_line_is_one_photo_move() -> None:
    """A layout that prints a photo's caption again as a paragraph (RFA): the
    photo and that line moved past a short heading line, which did not move."""
    photo = (
        "<div><img src='https://e.com/hall.jpg' alt='The council hall on Monday.'></div>"
        "<p>The council hall on Monday.</p>"
    )
    heading = "<p><b>What comes next</b></p>"
    change = _versions(
        f"<p>{COUNCIL}</p>{photo}{heading}<p>{MEMBERS}</p>",
        f"<p>{COUNCIL}</p>{heading}{photo}<p>{MEMBERS}</p>",
    )
    assert _kinds(change) == ["image_moved"]
    assert change.items[0].detail == "moved from #2 to #3, now after “What comes next”"
    assert change.verdict is Verdict.NOISE


def test_real_pair_photos_moved_down_not_the_paragraphs_they_passed(corpus: Path) -> None:
    """a023 (Epoch Times): v2 put one photo below the paragraph it preceded and
    another two paragraphs lower. Before, the paragraph was reported as
    "moved from #12 to #12"."""
    change = _pair("a023")
    moved = [(i.kind, i.detail.split(",")[0]) for i in change.items if i.kind.endswith("_moved")]
    assert moved == [
        ("image_moved", "moved from #11 to #13"),
        ("image_moved", "moved from #21 to #24"),
    ]
    # layout, noise: the news is the video and three photos added
    news, noise = change.summary.split(" (noise: ")
    assert news == "1 media changed; 3 images added" and "2 images moved" in noise


def test_a_paragraph_grown_threefold_is_an_edit_not_a_removal() -> None:
    before = "Protests continued outside as officials arrived, and police closed two streets."
    after = "The final figures will be published on the council website later in the week."
    change = _versions(
        f"<p>{COUNCIL}</p><p>{VOTE}</p>",
        f"<p>{before} {MEMBERS} {COUNCIL} {after}</p><p>{VOTE}</p>",
    )
    assert _kinds(change) == ["paragraph_edited"]
    assert {op for op, _ in change.items[0].inline} == {"=", "+"}


def test_real_pair_paragraph_absorbed_into_a_long_one(corpus: Path) -> None:
    """a054 (RFA): v2 wrote one long <br>-joined paragraph around v1's third
    (changing 掌握 to 占): an edit of it, not "added" plus "removed"."""
    change = _pair("a054")
    edited = next(i for i in change.items if i.location == "#3 paragraph")
    assert edited.kind == "paragraph_edited"
    assert [text for op, text in edited.inline if op == "-"] == ["掌握", "。"]
    assert "was #3 paragraph" not in [i.location for i in change.items]


# -- typography: the same words with other quotes, punctuation or widths ---------------
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("他说“这绝不是别人家的问题”。", "他说「这绝不是别人家的问题」。"),
        ("双方进入闭门会议，预计持续三小时", "双方进入闭门会议。预计持续三小时"),
        ("记者 吕熙 责编 胡力汉", "记者：吕熙 责编：胡力汉"),
        ("２０２１年的ＧＤＰ增长", "2021年的GDP增长"),
    ],
    ids=["quotes", "comma-to-stop", "credit-colons", "full-width"],
)
def test_typography_only_is_noise_and_says_what_changed(
    seed: Snapshot, before: str, after: str
) -> None:
    old = _edit(seed, LEAD, before)
    change = diff_snapshots(old, _edit(seed, LEAD, after))
    assert _kinds(change) == ["typography"]
    assert change.verdict is Verdict.NOISE
    assert change.items[0].detail.startswith("typography only")


@pytest.mark.parametrize(
    ("before", "after"),
    [("增长1.5%", "增长15%"), ("气温-5度", "气温5度"), ("共1,000人", "共1000人")],
    ids=["decimal-point", "sign", "thousands"],
)
def test_punctuation_inside_a_number_is_part_of_the_number(
    seed: Snapshot, before: str, after: str
) -> None:
    change = diff_snapshots(_edit(seed, LEAD, before), _edit(seed, LEAD, after))
    assert "paragraph_edited" in _kinds(change) and change.significant


def test_a_house_style_quote_pass_is_typography_not_news(corpus: Path) -> None:
    """a025: 17 paragraphs went from “…” to 「…」; two real edits remain news."""
    change = _pair("a025")
    assert _kinds(change).count("typography") == 17
    assert _kinds(change).count("paragraph_edited") == 2


def test_links_that_differ_only_by_fragment_lead_to_the_same_pages(corpus: Path) -> None:
    """a019: fourteen list links renumbered their #anchors; the pages are the same."""
    change = _pair("a019")
    assert change.verdict is Verdict.NOISE and "link_changed" not in _kinds(change)


# -- undisclosed edits -------------------------------------------------------------
STATED = {"published_time": "2021-11-16T01:00:00Z", "modified_time": "2021-11-16T02:00:00Z"}


def _classified(
    old: Snapshot, new: Snapshot, old_meta: dict[str, str], new_meta: dict[str, str]
) -> Change:
    return classify(old, new, old_metadata=old_meta, new_metadata=new_meta)


def test_an_edit_under_the_same_stated_modified_time_is_undisclosed(seed: Snapshot) -> None:
    change = _classified(seed, _edit(seed, LEAD, "预计将持续三个小时。"), STATED, STATED)
    assert change.undisclosed == "2021-11-16T02:00:00Z"
    assert change.summary == "undisclosed edit: 1 paragraph edited"
    assert change_to_dict(change)["undisclosed"] == "2021-11-16T02:00:00Z"
    text = render_text(change)
    assert "Undisclosed: the text changed, but the page still states 2021-11-16T02:00:00Z" in text


def test_a_new_modified_time_discloses_the_edit(seed: Snapshot) -> None:
    later = {**STATED, "modified_time": "2021-11-16T03:00:00Z"}
    change = _classified(seed, _edit(seed, LEAD, "预计将持续三个小时。"), STATED, later)
    assert change.undisclosed is None
    assert change.summary.startswith("1 paragraph edited")
    assert "undisclosed" not in change_to_dict(change)


@pytest.mark.parametrize(
    "note",
    [
        "<p>更正：本文早前版本误称会晤持续数个小时。</p>",
        "<p>Correction: an earlier version misstated the length.</p>",
        "<p>编者按：本文已更新。</p>",
    ],
)
def test_a_correction_note_discloses_the_edit(seed: Snapshot, note: str) -> None:
    edited = _edit(seed, LEAD, "预计将持续三个小时。" + "</p>" + note.removesuffix("</p>"))
    change = _classified(seed, edited, STATED, STATED)
    assert change.significant
    assert change.undisclosed is None


def test_noise_and_pages_that_state_no_time_are_never_marked(seed: Snapshot) -> None:
    ticked = _edit(seed, "14 分钟前", "1 小时前", captured_at=seed.captured_at + 62 * MINUTE)  # type: ignore[operator]
    assert _classified(seed, ticked, STATED, STATED).undisclosed is None
    edited = _edit(seed, LEAD, "预计将持续三个小时。")
    assert _classified(seed, edited, {}, {}).undisclosed is None  # claims nothing
    only_published = {"published_time": "2021-11-16T01:00:00Z"}
    change = _classified(seed, edited, only_published, only_published)
    assert change.undisclosed == "2021-11-16T01:00:00Z"  # still "as published"


def test_the_flag_survives_the_change_record(seed: Snapshot) -> None:
    change = _classified(seed, _edit(seed, LEAD, "预计将持续三个小时。"), STATED, STATED)
    record = json.loads(json.dumps(change_to_dict(change)))
    assert change_from_dict(record) == change
