"""Import: URL identity, the corpus (folders and pairs), git history, idempotence, resuming."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS, DISPUTED_LABELS
from watcher import importer, report, snapshot
from watcher.cli import main
from watcher.errors import InvalidURLError
from watcher.importer import Importer, ImportSummary, import_paths
from watcher.models import change_from_dict
from watcher.store import Store, Transaction, VersionRecord, WatchState, upgrade
from watcher.urlnorm import normalise_url

BODY = "<main><p>第一段。</p><p>Second paragraph, unchanged.</p></main>"
EDITED = "<main><p>第一段（更正）。</p><p>Second paragraph, unchanged.</p></main>"
INSERTED = (
    "<main><p>第一段（更正）。</p><p>新增一段。</p><p>Second paragraph, unchanged.</p></main>"
)


# -- helpers ------------------------------------------------------------------------
def seed(url: str, body: str, epoch: int | None, title: str = "标题") -> str:
    return snapshot.render_header(title, url, epoch) + body + "\n"


def open_store(tmp_path: Path) -> Store:
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path}/watcher.db"
    upgrade(url)
    return Store.open(url)


def history(store: Store) -> dict[str, Any]:
    """Everything an import decides, comparable between two data folders."""
    out: dict[str, Any] = {}
    for summary in store.list_watches():
        versions = store.versions(summary.id)
        seqs = {v.id: v.seq for v in versions}
        changes = [
            (seqs[c.old_version_id], seqs[c.new_version_id or 0], c.verdict.value, c.kinds)
            for c in store.changes(summary.id)
        ]
        keys = [(v.seq, v.captured_at, v.content_sha256) for v in versions]
        out[summary.url] = (str(summary.state), keys, changes)
    return out


def git(repo: Path, *args: str, when: int = 0) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_AUTHOR_DATE": f"{when} +0000",
        "GIT_COMMITTER_DATE": f"{when} +0000",
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout


# -- URL identity ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://WWW.BBC.com:443/zhongwen/simp/world-1/", "https://www.bbc.com/zhongwen/simp/world-1"),
        ("http://example.org:80", "http://example.org/"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("https://x.org/a?utm_source=rss&utm_medium=feed&id=3#comments", "https://x.org/a?id=3"),
        ("https://x.org/a?fbclid=abc&gclid=1&spm=a.b.c", "https://x.org/a"),
        ("https://x.org/a?from=rss", "https://x.org/a"),
        ("https://x.org/a?from=timeline&isappinstalled=0", "https://x.org/a?isappinstalled=0"),
        ("https://x.org/search?from=2020-01-01", "https://x.org/search?from=2020-01-01"),
        ("https://www.bbc.com/news/x?at_medium=RSS&at_campaign=KARANGA", "https://www.bbc.com/news/x"),
        ("https://x.org/a?b=1&a=2", "https://x.org/a?b=1&a=2"),
    ],
)  # fmt: skip
def test_url_normalisation(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


def test_only_web_urls_identify_articles() -> None:
    with pytest.raises(InvalidURLError):
        normalise_url("ftp://x.org/a")


# -- content without / with the capture time -------------------------------------------
@pytest.mark.parametrize("pattern", ["snapshots/*/*.md", "pairs/*/v*.md"])
def test_every_corpus_file_round_trips_through_split_and_join(corpus: Path, pattern: str) -> None:
    """What export writes for an imported file is the file (LF line endings)."""
    for path in sorted(corpus.glob(pattern)):
        text = snapshot.file_text(path.read_bytes(), str(path))
        captured = snapshot.parse(text).captured_at or 1_600_000_000_000
        content = snapshot.split_capture_time(text)
        assert "<!--" not in content.split("\n", 12)[0] or content == text
        assert snapshot.join_capture_time(content, captured) == text, path
        assert snapshot.split_capture_time(snapshot.join_capture_time(content, 7)) == content


def test_daemon_content_joins_to_the_canonical_render() -> None:
    snap = snapshot.parse(seed("https://x.org/a", BODY, 1637030584000))
    content = snapshot.content_text(snap)
    assert snapshot.split_capture_time(snapshot.render(snap)) == content
    assert snapshot.join_capture_time(content, 1637030584000) == snapshot.render(snap)


# -- the corpus -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_import(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, ImportSummary]]:
    if not (CORPUS / "pairs").is_dir():
        pytest.skip(f"real-article corpus not found at {CORPUS}")
    home = tmp_path_factory.mktemp("corpus-import")
    store = open_store(home)
    paths = [CORPUS / "snapshots", CORPUS / "pairs"]
    summary = import_paths(store, home / "archive", paths, workers=2)  # a real worker pool
    yield store, summary
    store.close()


def test_corpus_imports_every_file(corpus_import: tuple[Store, ImportSummary]) -> None:
    store, summary = corpus_import
    files = len(list((CORPUS / "snapshots").glob("*/*.md"))) + len(
        list(CORPUS.glob("pairs/*/v*.md"))
    )
    assert summary.files == files
    assert summary.rejected == []
    assert summary.versions_added == files - summary.already_present
    assert all(w.state == WatchState.PAUSED for w in store.list_watches())


def test_each_pair_is_two_versions_with_the_labelled_verdict(
    corpus_import: tuple[Store, ImportSummary],
) -> None:
    store, _ = corpus_import
    labels = json.loads((CORPUS / "pairs" / "labels.json").read_text(encoding="utf-8"))["pairs"]
    wrong = []
    for pid, label in labels.items():
        old, new = (_key(CORPUS / "pairs" / pid / f"{v}.md") for v in ("v1", "v2"))
        watch = store.get_watch(old[0])
        assert watch is not None and old[0] == new[0], pid
        versions = {(v.captured_at, v.content_sha256): v for v in store.versions(watch.id)}
        v1, v2 = versions[old[1:]], versions[new[1:]]
        # Versions go in stated-time order: in 4 pairs (a042, a052-a054) v2's
        # epoch is earlier than v1's, so their change runs v2 -> v1.
        ends = {v1.id, v2.id}
        (change,) = [
            c for c in store.changes(watch.id) if {c.old_version_id, c.new_version_id} == ends
        ]
        if (change.verdict.value == "significant") != label["significant"]:
            wrong.append(pid)
    assert wrong == sorted(DISPUTED_LABELS)


def test_imported_archive_files_are_the_source_files(
    corpus_import: tuple[Store, ImportSummary], tmp_path: Path
) -> None:
    """A version people read (a002's v2: an edit) has its source file in the
    archive byte for byte; a noise-only one (a001's v2: markup and capture
    time) is in the database alone, as the daemon keeps it (export writes it)."""
    store, _ = corpus_import
    home = Path(str(store.engine.url.database)).parent
    path = CORPUS / "pairs" / "a002" / "v2.md"
    version = _version_of(store, path)
    assert version.archive_path is not None
    assert (home / "archive" / version.archive_path).read_bytes() == path.read_bytes()
    noise = _version_of(store, CORPUS / "pairs" / "a001" / "v2.md")
    assert noise.archive_path is None
    [change] = [c for c in store.changes(noise.watch_id) if c.new_version_id == noise.id]
    assert change.verdict.value == "noise"
    assert store.deliveries(change_id=change.id) == []  # no report files either


def _version_of(store: Store, path: Path) -> VersionRecord:
    url, captured, sha = _key(path)
    watch = store.get_watch(url)
    assert watch is not None
    (version,) = [
        v for v in store.versions(watch.id) if (v.captured_at, v.content_sha256) == (captured, sha)
    ]
    return version


def _key(path: Path) -> tuple[str, int, str]:
    text = snapshot.file_text(path.read_bytes(), str(path))
    snap = snapshot.parse(text)
    content = snapshot.split_capture_time(text)
    assert snap.captured_at is not None
    sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return normalise_url(snap.url), snap.captured_at, sha


# -- git history ------------------------------------------------------------------------
URL = "https://News.example.org/world/story-1/?utm_source=rss"
UNDATED = "https://news.example.org/world/undated"
T0 = 1_700_000_000  # seconds


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """History: edits, a rename with the same URL, a file without an epoch line
    (dated by its commits), an unreadable and a malformed file, and a revert."""
    repo = tmp_path / "repo"
    (repo / "articles").mkdir(parents=True)
    git(repo, "init", "-q")
    art = repo / "articles" / "story.md"
    art.write_text(seed(URL, BODY, T0 * 1000 + 500), encoding="utf-8")
    (repo / "articles" / "undated.md").write_text(seed(UNDATED, BODY, None), encoding="utf-8")
    (repo / "articles" / "bad.md").write_bytes(b"<!--1-->\n[t](https://x.org/)\n------\n\n\xff\xfe")
    (repo / "articles" / "notes.md").write_text("just some notes\n", encoding="utf-8")
    (repo / "README.rst").write_text("not imported\n", encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first", when=T0 + 10)
    art.write_text(seed(URL, EDITED, (T0 + 3600) * 1000), encoding="utf-8")
    git(repo, "commit", "-qam", "edit", when=T0 + 3610)
    git(repo, "mv", "articles/story.md", "articles/story-renamed.md")
    renamed = repo / "articles" / "story-renamed.md"
    renamed.write_text(seed(URL, INSERTED, (T0 + 7200) * 1000), encoding="utf-8")
    (repo / "articles" / "undated.md").write_text(seed(UNDATED, EDITED, None), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "rename + insert", when=T0 + 7210)
    renamed.write_text(seed(URL, BODY, (T0 + 10800) * 1000), encoding="utf-8")
    git(repo, "commit", "-qam", "revert", when=T0 + 10810)
    return repo


def test_git_history_becomes_versions_and_changes(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    store = open_store(tmp_path)
    summary = import_paths(store, tmp_path / "archive", [repo], git=True, workers=1)

    assert sorted(r.source.rsplit(":", 1)[1] for r in summary.rejected) == [
        "articles/bad.md",
        "articles/notes.md",
    ]
    assert any("UTF-8" in r.reason for r in summary.rejected)
    assert summary.undated == 2
    watch = store.get_watch("https://news.example.org/world/story-1")
    assert watch is not None and watch.state == WatchState.PAUSED
    versions = store.versions(watch.id)
    assert [v.captured_at for v in versions] == [
        T0 * 1000 + 500, (T0 + 3600) * 1000, (T0 + 7200) * 1000, (T0 + 10800) * 1000
    ]  # fmt: skip
    changes = store.changes(watch.id)
    assert [c.kinds for c in changes] == [
        ("header_time", "paragraph_edited"),
        ("header_time", "paragraph_added"),
        ("header_time", "paragraph_edited", "paragraph_removed", "reverted"),
    ]
    assert changes[-1].reverted_to_version_id == versions[0].id
    undated = store.get_watch(UNDATED)
    assert undated is not None
    assert [v.captured_at for v in store.versions(undated.id)] == [
        (T0 + 10) * 1000, (T0 + 7210) * 1000
    ]  # fmt: skip
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    archived = sorted((tmp_path / "archive").rglob("*.md"))
    assert len(archived) == 6


def test_git_history_keeps_commit_order_when_a_newer_capture_states_an_earlier_time(
    tmp_path: Path,
) -> None:
    """A feed archive rewrote its capture with a rounded, earlier time: the
    paragraph was added (commit order), not removed (stated-time order)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    art = repo / "story.md"
    art.write_text(seed(URL, EDITED, T0 * 1000 + 59_000), encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first", when=T0 + 60)
    art.write_text(seed(URL, INSERTED, T0 * 1000), encoding="utf-8")  # rounded down
    git(repo, "commit", "-qam", "update", when=T0 + 3660)
    store = open_store(tmp_path / "data")

    summary = import_paths(store, tmp_path / "archive", [repo], git=True, workers=1)

    watch = store.get_watch(normalise_url(URL))
    assert watch is not None
    [change] = store.changes(watch.id)
    assert "paragraph_added" in change.kinds and "paragraph_removed" not in change.kinds
    [note] = summary.order_notes
    assert note.source.endswith(":story.md") and "earlier time than version 1" in note.reason


def test_a_folder_import_orders_by_stated_time_and_reports_ties(tmp_path: Path) -> None:
    folder = tmp_path / "archive-in"
    folder.mkdir()
    (folder / "b.md").write_text(seed(URL, EDITED, T0 * 1000), encoding="utf-8")
    (folder / "a.md").write_text(seed(URL, BODY, T0 * 1000), encoding="utf-8")  # same time
    (folder / "c.md").write_text(seed(URL, INSERTED, T0 * 1000 - 5000), encoding="utf-8")
    store = open_store(tmp_path / "data")

    summary = import_paths(store, tmp_path / "archive", [folder], workers=1)

    watch = store.get_watch(normalise_url(URL))
    assert watch is not None
    versions = store.versions(watch.id)
    assert [v.captured_at for v in versions] == [T0 * 1000 - 5000, T0 * 1000, T0 * 1000]
    [tie] = summary.order_notes
    assert tie.source.endswith("b.md") and "same time as version 2" in tie.reason
    result = CliRunner().invoke(
        main, ["--home", str(tmp_path / "cli"), "import", str(folder)], catch_exceptions=False
    )
    assert "order:" in result.output and "kept in path order" in result.output


def test_imported_changes_name_the_stated_time_not_a_capture_time(tmp_path: Path) -> None:
    folder = tmp_path / "archive-in"
    folder.mkdir()
    (folder / "1.md").write_text(seed(URL, BODY, T0 * 1000), encoding="utf-8")
    (folder / "2.md").write_text(seed(URL, EDITED, T0 * 1000 + 3_600_000), encoding="utf-8")
    store = open_store(tmp_path / "data")
    import_paths(store, tmp_path / "archive", [folder], workers=1)
    watch = store.get_watch(normalise_url(URL))
    assert watch is not None
    [change] = store.changes(watch.id)
    assert change.summary == "1 paragraph edited (noise: stated time changed)"
    record = report.render_markdown(change_from_dict(change.record))
    assert "**Stated time before:**" in record and "Captured" not in record


def test_path_glob_limits_the_files(repo: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    summary = import_paths(
        store, tmp_path / "archive", [repo], git=True, globs=["articles/story*.md"], workers=1
    )
    assert (summary.files, summary.versions_added, summary.rejected) == (4, 4, [])


def test_cli_import_git_reports_rejected_files_and_exits_0(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(
        main, ["--home", str(home), "import", "--git", str(repo), "--watch"]
    )
    assert result.exit_code == 0, result.output
    assert "6 versions and 4 changes added" in result.output
    assert "2 rejected" in result.output
    assert "articles/bad.md: not UTF-8 text" in result.output
    assert "2 files state no time: dated by their commit time" in result.output
    store = Store.open(f"sqlite:///{home}/watcher.db")
    assert {str(w.state) for w in store.list_watches()} == {"active"}
    store.close()


# -- idempotence and resuming ---------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three articles with a few versions each, one file without a time, one broken."""
    root = tmp_path / "folder"
    for n in range(3):
        url = f"https://example.org/a/{n}"
        for i, body in enumerate((BODY, EDITED, INSERTED)):
            path = root / f"site-{n}" / f"{i}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(seed(url, body, (T0 + 600 * i) * 1000 + n), encoding="utf-8")
    undated = root / "undated.txt"
    undated.write_text(seed("https://example.org/undated", BODY, None), encoding="utf-8")
    os.utime(undated, (T0, T0))
    (root / "broken.md").write_text("[no rule](https://example.org/x)\n", encoding="utf-8")
    return root


def test_reimport_adds_nothing(store: Store, folder: Path, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL (the shared ``store`` fixture)."""
    first = import_paths(store, tmp_path / "archive", [folder], workers=1)
    before = history(store)
    assert (first.versions_added, first.changes_added, len(first.rejected)) == (10, 6, 1)
    os.utime(folder / "undated.txt", (T0 + 99, T0 + 99))  # a copy would change the mtime
    second = import_paths(store, tmp_path / "archive", [folder], workers=1)
    assert (second.versions_added, second.changes_added, second.already_present) == (0, 0, 10)
    assert history(store) == before


def test_new_captures_are_appended_and_older_ones_refused(folder: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    import_paths(store, tmp_path / "archive", [folder], workers=1)
    (folder / "site-0" / "3.md").write_text(
        seed("https://example.org/a/0", BODY, (T0 + 5000) * 1000), encoding="utf-8"
    )
    (folder / "site-1" / "old.md").write_text(
        seed("https://example.org/a/1", INSERTED, (T0 - 5000) * 1000), encoding="utf-8"
    )
    summary = import_paths(store, tmp_path / "archive", [folder], workers=1)
    assert summary.versions_added == 1
    watch = store.get_watch("https://example.org/a/0")
    assert watch is not None
    last = store.changes(watch.id)[-1]
    assert (
        "reverted" in last.kinds and last.reverted_to_version_id == store.versions(watch.id)[0].id
    )
    assert [r.source.endswith("old.md") for r in summary.rejected if "before" in r.reason] == [True]


class Interrupt(Exception):
    pass


class StopAfter:
    """A progress sink that interrupts the import after ``n`` committed files."""

    def __init__(self, n: int) -> None:
        self.left = n

    def phase(self, name: str, total: int) -> None:
        self.importing = name == "importing"

    def advance(self, n: int = 1) -> None:
        if self.importing:
            self.left -= n
            if self.left <= 0:
                raise Interrupt


def test_interrupted_import_resumes_to_the_same_end_state(folder: Path, tmp_path: Path) -> None:
    clean = open_store(tmp_path / "clean")
    Importer(clean, tmp_path / "clean" / "archive", workers=1).run(importer.folder_sources(folder))

    store = open_store(tmp_path / "resumed")
    interrupted = Importer(
        store, tmp_path / "a", workers=1, progress=StopAfter(4), batch_articles=1
    )
    with pytest.raises(Interrupt):
        interrupted.run(importer.folder_sources(folder))
    partial = history(store)
    assert 0 < len(partial) < len(history(clean))
    resumed = Importer(store, tmp_path / "a", workers=1).run(importer.folder_sources(folder))
    assert resumed.already_present == sum(len(v[1]) for v in partial.values())
    assert history(store) == history(clean)


def test_a_failure_inside_a_transaction_leaves_no_half_article(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = open_store(tmp_path / "clean")
    Importer(clean, tmp_path / "clean" / "archive", workers=1).run(importer.folder_sources(folder))
    store = open_store(tmp_path / "resumed")
    calls = {"n": 0}
    original = Transaction.add_change

    def failing(self: Transaction, *args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # the first change of the second article
            raise Interrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Transaction, "add_change", failing)
    with pytest.raises(Interrupt):
        Importer(store, tmp_path / "a", workers=1, batch_articles=1).run(
            importer.folder_sources(folder)
        )
    monkeypatch.setattr(Transaction, "add_change", original)
    partial, complete = history(store), history(clean)
    assert 0 < len(partial) < len(complete)
    assert all(partial[url] == complete[url] for url in partial)  # whole articles only
    Importer(store, tmp_path / "a", workers=1).run(importer.folder_sources(folder))
    assert history(store) == history(clean)
