"""The on-disk archive layout and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher import archive
from watcher.errors import StoreError

URL = "https://www.bbc.com/zhongwen/simp/world-59301487"


def test_layout_is_readable_and_sorted_by_time() -> None:
    first = archive.version_path(URL, 1637030584000)
    later = archive.version_path(URL, 1637034304000)
    assert first.parts[0] == "www.bbc.com"
    assert first.parts[1].startswith("zhongwen-simp-world-59301487-")
    assert first.name == "2021-11-16T02-43-04.000Z.md"
    assert sorted([later, first]) == [first, later]


def test_similar_urls_get_different_folders() -> None:
    assert archive.article_dir(URL) != archive.article_dir(URL + "?page=2")
    assert archive.article_dir(URL) != archive.article_dir(URL.replace("https", "http"))


def test_hostile_urls_stay_inside_the_archive() -> None:
    path = archive.article_dir("https://evil.example/../../etc/passwd")
    assert ".." not in path.parts and not path.is_absolute()


def test_write_atomic_leaves_no_temporary_files(tmp_path: Path) -> None:
    rel = archive.version_path(URL, 1)
    archive.write_atomic(tmp_path, rel, "one\n")
    archive.write_atomic(tmp_path, rel, "two\n")
    assert (tmp_path / rel).read_text(encoding="utf-8") == "two\n"
    assert [p.name for p in (tmp_path / rel).parent.iterdir()] == [rel.name]


def test_unwritable_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot write"):
        archive.write_atomic(blocker, Path("a/b.md"), "x")
