"""Export: every stored version as its original bytes, and export -> import round trips."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS
from tests.test_importer import history, open_store, seed
from watcher import api, archive, snapshot
from watcher.cli import main
from watcher.importer import import_paths
from watcher.store import Store
from watcher.urlnorm import normalise_url


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    """The corpus imported into one data folder and exported from it."""
    if not (CORPUS / "pairs").is_dir():
        pytest.skip(f"real-article corpus not found at {CORPUS}")
    home = tmp_path_factory.mktemp("export-source")
    store = open_store(home)
    import_paths(store, home / "archive", [CORPUS / "snapshots", CORPUS / "pairs"], workers=2)
    target = home / "exported"
    assert api.export_archive(store, target) == sum(
        len(store.versions(w.id)) for w in store.list_watches()
    )
    yield store, target
    store.close()


def test_every_version_exports_byte_identical_to_the_imported_file(
    exported: tuple[Store, Path],
) -> None:
    store, target = exported
    mismatched = []
    for path in sorted([*CORPUS.glob("snapshots/*/*.md"), *CORPUS.glob("pairs/*/v*.md")]):
        data = path.read_bytes()
        text = snapshot.file_text(data, str(path))
        snap = snapshot.parse(text)
        content = snapshot.split_capture_time(text)
        watch = store.get_watch(normalise_url(snap.url))
        assert watch is not None and snap.captured_at is not None
        sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
        versions = store.versions(watch.id)
        paths = archive.export_paths(watch.url, [(v.captured_at, v.archive_path) for v in versions])
        (out,) = [
            target / relative
            for v, relative in zip(versions, paths, strict=True)
            if (v.captured_at, v.content_sha256) == (snap.captured_at, sha)
        ]
        version = versions[paths.index(out.relative_to(target))]
        if out.read_bytes() != data:
            mismatched.append(path)
        assert out.stat().st_mtime_ns // 1_000_000 == version.captured_at
    assert mismatched == []


def test_export_then_import_reproduces_versions_and_changes(
    exported: tuple[Store, Path], tmp_path: Path
) -> None:
    store, target = exported
    fresh = open_store(tmp_path / "fresh")
    summary = import_paths(fresh, tmp_path / "fresh" / "archive", [target], workers=1)
    assert summary.rejected == []
    assert history(fresh) == history(store)


def test_daemon_versions_export_as_the_canonical_render(tmp_path: Path) -> None:
    """What the pipeline stores (content_text) comes back as snapshot.render."""
    store = open_store(tmp_path)
    snap = snapshot.parse(seed("https://example.org/a", "<main><p>x</p></main>", 1637030584000))
    watch, _ = store.add_watch(snap.url, site="example.org", now_ms=1)
    content = snapshot.content_text(snap)
    sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
    store.add_version(watch.id, captured_at=1637030584000, content_sha256=sha,
                      content_text=content, http_status=200, final_url=snap.url,
                      title=snap.title, archive_path=None)  # fmt: skip
    assert api.export_archive(store, tmp_path / "out") == 1
    (written,) = (tmp_path / "out").rglob("*.md")
    assert written.read_text(encoding="utf-8") == snapshot.render(snap)


def test_undated_files_survive_the_round_trip(tmp_path: Path) -> None:
    """A file stating no time is dated by its mtime; the export writes that time."""
    source = tmp_path / "src" / "a.md"
    source.parent.mkdir()
    source.write_text(seed("https://example.org/u", "<p>x</p>", None), encoding="utf-8")
    first = open_store(tmp_path / "one")
    import_paths(first, tmp_path / "one" / "archive", [source.parent], workers=1)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["--home", str(tmp_path / "one"), "export", str(out),
                                  "--url", "https://example.org/u"])  # fmt: skip
    assert result.exit_code == 0, result.output
    second = open_store(tmp_path / "two")
    import_paths(second, tmp_path / "two" / "archive", [out], workers=1)
    assert history(second) == history(first)
