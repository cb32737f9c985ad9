"""The seed file format: writer/reader round trip and real-world variants."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import CORPUS, corpus_files
from watcher import snapshot
from watcher.errors import SnapshotFormatError
from watcher.models import Snapshot, TimeSource

PLAIN_READER = re.compile(r"\[([\s\S]*?)\]\(")

TITLES = [
    "拜登和习近平视像会晤开始 双方在讨论什么",
    "[財經] 疫情衝擊縮減 6月景氣燈號續亮趨弱黃藍燈",
    "專門投資台捷企業 龔明鑫：可思考共同募集基金[影]",
    "a](b) tricky ](( title",
    "ends with bracket]",
    "back\\slash \\( and \\\\ and trailing \\",
    "]( at start",
    "emoji 🎉 and nbsp\u00a0inside",
]


@pytest.mark.parametrize("title", TITLES)
def test_render_then_parse_gives_back_the_same_snapshot(title: str) -> None:
    snap = Snapshot(url="https://example.com/a_(b) c", title=title, body="<p>x</p>", captured_at=1)
    text = snapshot.render(snap)
    assert snapshot.parse(text) == snap
    assert snapshot.render(snapshot.parse(text)) == text


@pytest.mark.parametrize("title", TITLES)
def test_written_titles_stay_readable_by_a_plain_regex_reader(title: str) -> None:
    text = snapshot.render(Snapshot(url="https://e.com/", title=title, body="", captured_at=1))
    match = PLAIN_READER.search(text)
    assert match is not None
    assert snapshot.unescape_title(match.group(1)) == title


def test_titles_without_brackets_are_written_verbatim() -> None:
    assert snapshot.escape_title("[財經] 標題 (更新)") == "[財經] 標題 (更新)"


def test_seed_file_renders_back_byte_for_byte(seed_path: Path) -> None:
    snap = snapshot.read(seed_path)
    assert snap.captured_at == 1637030584000
    assert snap.title == "拜登和习近平视像会晤开始 双方在讨论什么"
    assert snap.url == "https://www.bbc.com/zhongwen/simp/world-59301487"
    assert snap.body.startswith('<main role="main">') and snap.body.endswith("</main>")
    assert snapshot.render(snap) == seed_path.read_text(encoding="utf-8")


def _canonical_corpus_files() -> list[Path]:
    index = CORPUS / "snapshots" / "index.json"
    if not index.exists():
        return []
    entries = json.loads(index.read_text(encoding="utf-8"))
    return [CORPUS / e["file"] for e in entries if e["epoch_comment"] and not e["front_matter"]]


@pytest.mark.parametrize("path", _canonical_corpus_files(), ids=lambda p: p.parent.name + p.name)
def test_canonical_corpus_files_render_byte_for_byte(path: Path) -> None:
    assert snapshot.render(snapshot.read(path)) == path.read_text(encoding="utf-8")


def test_every_corpus_file_reads_or_fails_with_a_clear_error(corpus: Path) -> None:
    files = corpus_files("snapshots/*/*.md") + corpus_files("pairs/*/v*.md")
    assert len(files) > 100
    for path in files:
        try:
            snap = snapshot.read(path)
        except SnapshotFormatError as exc:
            assert str(path) in str(exc)
        else:
            assert snap.url and snap.title


FRONT = """---
layout: post
title: "美国大选：特朗普移送医院 拜登检测结果阴性"
date: 2020-10-02T21:03:16.000Z
author: BBC
from: http://www.bbc.com/zhongwen/simp/world-54382923
tags: [ BBC ]
---
"""


def test_front_matter_is_kept_and_the_epoch_wins() -> None:
    text = FRONT + "<!--1601672596000-->\n[T](http://x.com/a)\n------\n\n<div>\n<p>a</p>\n</div>\n"
    snap = snapshot.parse(text)
    assert snap.captured_at == 1601672596000
    assert snap.time_source is TimeSource.EPOCH
    assert snap.front_matter["author"] == "BBC"
    assert snap.front_matter["from"] == "http://www.bbc.com/zhongwen/simp/world-54382923"
    assert snap.body == "<div>\n<p>a</p>\n</div>"


def test_broken_epoch_falls_back_to_front_matter_date() -> None:
    snap = snapshot.parse(FRONT + "<!--NaN-->\n[T](http://x.com/a)\n------\n\n<p>a</p>\n")
    assert snap.time_source is TimeSource.FRONT_MATTER
    assert snap.captured_at == 1601672596000


def test_front_matter_without_seed_header_uses_its_title_and_from() -> None:
    snap = snapshot.parse(FRONT + "<article>\n <p>hello</p>\n</article>\n")
    assert snap.title == "美国大选：特朗普移送医院 拜登检测结果阴性"
    assert snap.url == "http://www.bbc.com/zhongwen/simp/world-54382923"
    assert snap.body.startswith("<article>")


def test_dateline_variant_gives_the_time() -> None:
    text = (
        "[老鱼锐评](https://cdt.net/a)\n------\n日期：Thu, 18 Jun 2020 21:44:14 +0000\n\n<p>x</p>"
    )
    snap = snapshot.parse(text)
    assert snap.time_source is TimeSource.DATELINE
    assert snap.dateline == "Thu, 18 Jun 2020 21:44:14 +0000"
    assert snap.captured_at == 1592516654000
    assert snap.body == "<p>x</p>"


def test_no_time_anywhere_is_unknown_not_invented() -> None:
    snap = snapshot.parse("[T](https://e.com/)\n------\n\n<p>x</p>\n")
    assert snap.captured_at is None
    assert snap.time_source is TimeSource.UNKNOWN
    assert not snapshot.render(snap).startswith("<!--")


def test_crlf_and_bom_are_accepted() -> None:
    text = "\ufeff<!--5-->\r\n[T](https://e.com/)\r\n------\r\n\r\n<p>x</p>\r\n"
    snap = snapshot.parse(text)
    assert (snap.captured_at, snap.title, snap.body) == (5, "T", "<p>x</p>")


def test_multiline_title_and_url_with_parentheses_and_spaces() -> None:
    text = "<!--5-->\n[first line\n second](https://e.com/wiki/A_(b) c)\n------\n\n<p>x</p>\n"
    snap = snapshot.parse(text)
    assert snap.title == "first line second"
    assert snap.url == "https://e.com/wiki/A_(b) c"


def test_empty_body() -> None:
    snap = snapshot.parse("<!--5-->\n[T](https://e.com/)\n------\n\n")
    assert snap.body == ""
    assert snapshot.parse(snapshot.render(snap)) == snap


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("<!--5-->\nno link here\n------\n", "expected a title link"),
        ("<!--5-->\n[T](https://e.com/)\n\n<p>x</p>", "no '------' line"),
        ("<!--5-->\n[T]()\n------\n\n", "empty URL"),
        ("---\ntitle: x\n", "never closed"),
    ],
)
def test_malformed_input_raises_one_clear_error(text: str, reason: str) -> None:
    with pytest.raises(SnapshotFormatError, match=reason) as info:
        snapshot.parse(text, source="bad.md")
    assert str(info.value).startswith("bad.md")


def test_non_utf8_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "gbk.md"
    path.write_bytes("<!--5-->\n[标题](https://e.com/)\n------\n\n".encode("gbk"))
    with pytest.raises(SnapshotFormatError, match="not UTF-8"):
        snapshot.read(path)


def test_content_text_ignores_capture_time() -> None:
    a = Snapshot(url="u", title="t", body="<p>x</p>", captured_at=1)
    b = Snapshot(url="u", title="t", body="<p>x</p>", captured_at=2)
    assert snapshot.content_text(a) == snapshot.content_text(b)


# -- stated times: bounded, and reading: only regular files of bounded size ----------
HEAD = "[T](https://e.com/a)\n------\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<!--99999999999999999-->\n" + HEAD, "epoch comment is after the year 9999"),
        ("<!--" + "9" * 5000 + "-->\n" + HEAD, "epoch comment is after the year 9999"),
        ("---\ndate: 1900-01-01\n---\n" + HEAD, "front matter date is before 1970"),
        ("---\ndate: 0001-01-01T00:00:00+14:00\n---\n" + HEAD, "before 1970"),
        ("---\ndate: 9999-12-31T23:59:59-12:00\n---\n" + HEAD, "after the year 9999"),
        ("---\ntitle: T\nfrom: https://e.com/a\ndate: 1960-01-01\n---\n<p>x</p>\n", "before 1970"),
        (HEAD + "日期：Mon, 1 Jan 1900 00:00:00 +0000\n", "日期 line is before 1970"),
    ],
)
def test_a_time_outside_1970_to_9999_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(SnapshotFormatError, match=reason) as info:
        snapshot.parse(text, source="far.md")
    assert str(info.value).startswith("far.md") and "out of range" in str(info.value)


def test_the_bounds_themselves_are_times() -> None:
    for ms in (snapshot.MIN_TIME_MS, snapshot.MAX_TIME_MS):
        assert snapshot.parse(f"<!--{ms}-->\n{HEAD}").captured_at == ms
        assert snapshot.parse(f"<!--{ms:020d}-->\n{HEAD}").captured_at == ms  # leading zeros


@pytest.mark.parametrize(
    "text",
    [
        "<!--²-->\n" + HEAD,  # isdigit() but not a number int() takes
        HEAD + "日期：Fri, 31 Dec 99999999999999999999 23:59:59 +0000\n",  # OverflowError
        "---\ndate: -0001-01-01\n---\n" + HEAD,
    ],
)
def test_an_unreadable_time_is_unknown_not_a_crash(text: str) -> None:
    assert snapshot.parse(text).captured_at is None


def test_versions_stored_before_the_bounds_still_read_and_export() -> None:
    """Content with a pre-1970 front matter date, as an older import stored it."""
    content = "---\ndate: 1900-01-01\n---\n" + HEAD + "\n<p>x</p>\n"
    assert snapshot.stored(content, 5).captured_at == 5
    stated = -2208988800000
    assert snapshot.join_capture_time(content, stated) == content
    assert snapshot.split_capture_time(f"<!--{'9' * 5000}-->\n" + HEAD) == HEAD


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null"])
def test_only_regular_files_are_read(special: str) -> None:
    with pytest.raises(SnapshotFormatError, match="not a regular file but a character device"):
        snapshot.read(special)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("opening a FIFO for reading waits for a writer forever")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(SnapshotFormatError, match="not a regular file but a FIFO"):
            snapshot.read(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path, seed_path: Path) -> None:
    big = tmp_path / "big.md"
    with big.open("wb") as handle:
        handle.truncate(150 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(SnapshotFormatError, match=r"150.0 MB is over the 10.0 MB limit"):
        snapshot.read(big)
    size = seed_path.stat().st_size
    assert snapshot.read_bytes(seed_path, max_bytes=size) == seed_path.read_bytes()
    assert snapshot.read_bytes(seed_path, limit=10) == seed_path.read_bytes()[:10]
    with pytest.raises(SnapshotFormatError, match="over the"):
        snapshot.read_bytes(seed_path, max_bytes=size - 1)


def test_within_a_folder_links_out_of_it_and_dotdot_are_refused(tmp_path: Path) -> None:
    tree, outside = tmp_path / "tree", tmp_path / "secret.md"
    (tree / "sub").mkdir(parents=True)
    outside.write_text("root:$6$not-for-import\n", encoding="utf-8")
    (tree / "in.md").write_text("inside\n", encoding="utf-8")
    (tree / "out.md").symlink_to(outside)
    (tree / "sub" / "in-link.md").symlink_to(tree / "in.md")
    root = str(tree)
    with pytest.raises(SnapshotFormatError, match="symbolic link out of") as info:
        snapshot.read_bytes(tree / "out.md", within=root)
    assert "root:" not in str(info.value)
    with pytest.raises(SnapshotFormatError, match=r"'\.\.' part"):
        snapshot.read_bytes(f"{root}/sub/../in.md", within=root)
    assert snapshot.read_bytes(tree / "sub" / "in-link.md", within=root) == b"inside\n"


def test_a_rejection_quotes_at_most_a_few_characters_of_the_file() -> None:
    with pytest.raises(SnapshotFormatError) as info:
        snapshot.parse("root:$6$abcdefghijklmnopqrstuvwxyz0123456789:19000:0:99999:7:::\n")
    assert "abcdefghijklmnop" not in str(info.value)
