"""Classified changes between two versions: built from the seed and real pairs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from watcher import snapshot
from watcher.diff import diff_snapshots
from watcher.models import Change, Snapshot, Verdict
from watcher.report import change_to_dict

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
        ("a003", ["paragraph_added"], Verdict.SIGNIFICANT),
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
    assert disagreements == []
