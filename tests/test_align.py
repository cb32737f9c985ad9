"""Block alignment: a split or merged paragraph is one pair, on synthetic and real pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import corpus_files
from watcher import snapshot
from watcher.align import Pair, align
from watcher.article import parse_article
from watcher.models import Block, Snapshot

A = "The council met on Monday to discuss the new budget for the city's schools."
B = "Several members asked for more money for teachers and fewer new buildings."
C = "A vote is expected next week, the chair said after the meeting."
IMG = "<img src='https://e.com/hall.jpg' alt='The council hall'>"


def _blocks(body: str) -> tuple[Block, ...]:
    return parse_article(Snapshot("https://e.com/a", "T", body, 1)).blocks


def test_a_paragraph_split_at_a_double_line_break_is_one_pair() -> None:
    old = _blocks(f"<p>{A}<br><br>{B}</p><p>{C}</p>")
    new = _blocks(f"<p>{A}</p><p>{B}</p><p>{C}</p>")
    assert align(old, new) == [Pair(0, 0, True, 1.0, (0,), (0, 1)), Pair(1, 2, True)]


def test_paragraphs_joined_with_line_breaks_are_one_pair() -> None:
    old = _blocks(f"<p>{C}</p><p>{A}</p><p>{B}</p>")
    new = _blocks(f"<p>{C}</p><p>{A}<br>{B}</p>")
    assert align(old, new) == [Pair(0, 0, True), Pair(1, 1, True, 1.0, (1, 2), (1,))]


def test_a_split_and_an_edit_is_one_pair_that_is_not_the_same() -> None:
    old = _blocks(f"<p>{A}<br><br>{B}</p>")
    new = _blocks(f"<p>{A}</p><p>{B.replace('more money', 'higher pay')}</p>")
    [pair] = align(old, new)
    assert (pair.old_run, pair.new_run, pair.same) == ((0,), (0, 1), False)
    assert 0.9 < pair.similarity < 1


def test_a_split_around_an_unchanged_picture() -> None:
    """``<p>A<br><img><br>B</p>`` became ``<p>A</p><img><p>B</p>``: the picture
    is unchanged, so no gap between unchanged blocks holds both pieces."""
    old = _blocks(f"<p>{A}<br>{IMG}<br>{B}</p>")  # the text block, then the picture
    new = _blocks(f"<p>{A}</p>{IMG}<p>{B}</p>")
    assert align(old, new) == [Pair(0, 0, True, 1.0, (0,), (0, 2)), Pair(1, 1, True)]


def test_a_split_with_a_new_paragraph_between_its_pieces() -> None:
    inserted = "Reporters were not allowed into the room."
    old = _blocks(f"<p>{A}<br><br>{B}</p><p>{C}</p>")
    new = _blocks(f"<p>{A}</p><p>{inserted}</p><p>{B}</p><p>{C}</p>")
    pairs = align(old, new)
    assert Pair(0, 0, True, 1.0, (0,), (0, 2)) in pairs
    assert Pair(None, 1, False) in pairs


def test_an_added_paragraph_after_an_edited_one_is_not_a_split() -> None:
    old = _blocks(f"<p>{A}</p><p>{C}</p>")
    new = _blocks(f"<p>{A.replace('Monday', 'Tuesday')}</p><p>{B}</p><p>{C}</p>")
    pairs = align(old, new)
    assert [(p.old, p.new, p.grouped) for p in pairs] == [
        (0, 0, False),
        (None, 1, False),
        (1, 2, False),
    ]


@pytest.mark.parametrize("v1", corpus_files("pairs/*/v1.md"), ids=lambda p: p.parent.name)
def test_real_pairs_cover_every_block_once_in_reading_order(v1: Path) -> None:
    old = parse_article(snapshot.read(v1)).blocks
    new = parse_article(snapshot.read(v1.with_name("v2.md"))).blocks
    pairs = align(old, new)
    olds = [i for p in pairs for i in (p.old_run or ([] if p.old is None else [p.old]))]
    news = [j for p in pairs for j in (p.new_run or ([] if p.new is None else [p.new]))]
    assert sorted(olds) == list(range(len(old)))
    assert sorted(news) == list(range(len(new)))
    firsts = [p.new for p in pairs if p.new is not None]
    assert firsts == sorted(firsts)
