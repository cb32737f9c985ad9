"""Import of hostile archives (issue 10): a bad file is rejected with its reason,
never crashes or hangs the run, never reads outside the imported tree, and a
repository's own git config never runs a command."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner

from watcher import importer, snapshot
from watcher.cli import main
from watcher.importer import ImportSummary, import_paths
from watcher.settings import Settings
from watcher.store import Store, upgrade

T0 = 1_700_000_000_000
BODY = "<main><p>第一段。</p></main>"
SECRET = "root:$6$hostile-import-secret:19000:0:99999:7:::"


def seed(url: str, epoch: int | str | None, body: str = BODY) -> str:
    head = "" if epoch is None else f"<!--{epoch}-->\n"
    return f"{head}[标题]({url})\n------\n\n{body}\n"


def open_store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path}/watcher.db"
    upgrade(url)
    return Store.open(url)


class Hung(Exception):  # not an OSError, which the code under test handles
    """The code under test did not return in time."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened for reading waits for a writer)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_import(
    tmp_path: Path, *paths: Path, git: bool = False, max_bytes: int = snapshot.MAX_FILE_BYTES
) -> tuple[Store, ImportSummary]:
    store = open_store(tmp_path)
    with deadline(60):
        summary = import_paths(
            store, tmp_path / "archive", list(paths), git=git, workers=1, max_bytes=max_bytes
        )
    return store, summary


def reasons(summary: ImportSummary) -> dict[str, str]:
    return {Path(r.source.rsplit(":", 1)[-1]).name: r.reason for r in summary.rejected}


# -- times ---------------------------------------------------------------------------
def test_an_out_of_range_time_rejects_that_file_only(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "good.md").write_text(seed("https://example.org/good", T0), encoding="utf-8")
    (tree / "far.md").write_text(seed("https://example.org/far", 99999999999999999))
    (tree / "digits.md").write_text(seed("https://example.org/digits", "9" * 5000))
    (tree / "old.md").write_text(
        "---\ndate: 1900-01-01\n---\n" + seed("https://example.org/o", None)
    )
    (tree / "late.md").write_text(
        "---\ndate: 9999-12-31T23:59:59-12:00\n---\n" + seed("https://example.org/l", None)
    )
    undated = tree / "undated.md"
    undated.write_text(seed("https://example.org/undated", None), encoding="utf-8")
    os.utime(undated, (-86400, -86400))  # 1969: no time stated, and the fallback is out of range
    store, summary = run_import(tmp_path, tree)

    assert summary.versions_added == 1
    assert [w.url for w in store.list_watches()] == ["https://example.org/good"]
    got = reasons(summary)
    assert set(got) == {"far.md", "digits.md", "old.md", "late.md", "undated.md"}
    assert got["far.md"] == "the epoch comment is after the year 9999: out of range"
    assert got["old.md"] == "the front matter date is before 1970: out of range"
    assert got["late.md"] == "the front matter date is after the year 9999: out of range"
    assert got["undated.md"] == "states no time, and its modification time is out of range"


def test_cli_import_of_a_far_future_file_exits_0_and_says_why(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "far.md").write_text(seed("https://example.org/far", 99999999999999999))
    (tree / "good.md").write_text(seed("https://example.org/good", T0), encoding="utf-8")
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "import", str(tree)])
    assert result.exit_code == 0, result.output
    assert "far.md: the epoch comment is after the year 9999: out of range" in result.output
    assert "1 versions and 0 changes added" in result.output


# -- files that are not plain files inside the tree ----------------------------------
@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    """A tree with a FIFO, links to /dev/zero, to a secret and to a valid seed
    outside it, a 150 MB file, a link inside the tree, and one good file."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    outside.mkdir()
    (tree / "good.md").write_text(seed("https://example.org/good", T0), encoding="utf-8")
    (tree / "also-good.md").symlink_to(tree / "good.md")  # inside: read (the same version)
    os.mkfifo(tree / "fifo.md")
    (tree / "zero.md").symlink_to("/dev/zero")
    (outside / "shadow").write_text(SECRET + "\n", encoding="utf-8")
    (tree / "shadow.md").symlink_to(outside / "shadow")
    (outside / "elsewhere.md").write_text(seed("https://example.org/elsewhere", T0))
    (tree / "elsewhere.md").symlink_to(outside / "elsewhere.md")
    (tree / "sub").mkdir()
    (tree / "sub" / "up.md").symlink_to("../../outside/elsewhere.md")
    (tree / "linked-dir").symlink_to(outside)  # links to folders are not followed
    with (tree / "big.md").open("wb") as handle:
        handle.truncate(150 * 1024 * 1024)
    return tree


def test_only_regular_files_inside_the_tree_are_imported(
    hostile_tree: Path, tmp_path: Path
) -> None:
    store, summary = run_import(tmp_path, hostile_tree)

    assert [w.url for w in store.list_watches()] == ["https://example.org/good"]
    assert (summary.versions_added, summary.already_present) == (1, 1)
    assert reasons(summary) == {
        "big.md": "file of 150.0 MB is over the 10.0 MB limit: not read",
        "elsewhere.md": "a symbolic link out of the imported folder: not read",
        "fifo.md": "not a regular file but a FIFO: not read",
        "shadow.md": "a symbolic link out of the imported folder: not read",
        "up.md": "a symbolic link out of the imported folder: not read",
        "zero.md": "a symbolic link out of the imported folder: not read",
    }


def test_the_cli_never_prints_a_file_from_outside_the_tree(
    hostile_tree: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with deadline(60):
        result = CliRunner().invoke(main, ["--home", str(home), "import", str(hostile_tree)])
    assert result.exit_code == 0, result.output
    assert "6 rejected" in result.output
    assert "hostile-import-secret" not in result.output and "root:" not in result.output
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert b"hostile-import-secret" not in stored


def test_the_size_limit_is_the_fetch_limit_and_can_be_set(tmp_path: Path) -> None:
    assert Settings.from_env({}).max_body == snapshot.MAX_FILE_BYTES
    tree = tmp_path / "tree"
    tree.mkdir()
    text = seed("https://example.org/a", T0)
    (tree / "a.md").write_text(text, encoding="utf-8")
    _, summary = run_import(tmp_path, tree, max_bytes=len(text.encode()) - 1)
    assert list(reasons(summary).values()) == [
        f"file of {len(text.encode())} bytes is over the {len(text.encode()) - 1} bytes limit: "
        "not read"
    ]


# -- watcher show ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zero.md", "not a regular file but a character device"),
        ("fifo.md", "not a regular file but a FIFO"),
        ("big.md", "file of 150.0 MB is over the 10.0 MB limit"),
    ],
)
def test_show_refuses_what_is_not_a_small_regular_file_in_one_line(
    hostile_tree: Path, tmp_path: Path, name: str, reason: str
) -> None:
    with deadline(30):
        result = CliRunner().invoke(
            main, ["--home", str(tmp_path / "home"), "show", str(hostile_tree / name)]
        )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and reason in result.output


# -- git: the repository's config runs nothing -----------------------------------------
def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}  # fmt: skip
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True, input=stdin)  # fmt: skip
    return done.stdout.strip()


def marker_script(tmp_path: Path) -> tuple[Path, Path]:
    """A program that leaves a marker file when it runs."""
    marker, script = tmp_path / "MARKER", tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\necho 0\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return marker, script


def one_commit_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.md").write_text(seed("https://example.org/g", T0), encoding="utf-8")
    git(repo, "add", "a.md")
    git(repo, "commit", "-qm", "a")
    return repo


def test_git_import_does_not_run_the_repositorys_fsmonitor(tmp_path: Path) -> None:
    repo = one_commit_repo(tmp_path)
    marker, script = marker_script(tmp_path)
    git(repo, "config", "core.fsmonitor", str(script))
    git(repo, "config", "core.hooksPath", str(tmp_path))
    git(repo, "config", "core.pager", str(script))
    git(repo, "config", "diff.external", str(script))
    _, summary = run_import(tmp_path, repo, git=True)
    assert summary.versions_added == 1
    assert not marker.exists()


def test_git_import_does_not_run_the_repositorys_signature_checker(tmp_path: Path) -> None:
    """``log.showSignature`` makes ``git log`` run ``gpg.program`` on every
    signed commit, whatever --format says."""
    repo = one_commit_repo(tmp_path)
    commit = git(repo, "cat-file", "commit", "HEAD")
    header, _, message = commit.partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n x\n -----END PGP SIGNATURE-----"
    signed = git(repo, "hash-object", "-t", "commit", "-w", "--stdin",
                 stdin=f"{header}\n{signature}\n\n{message}\n")  # fmt: skip
    git(repo, "update-ref", "HEAD", signed)
    marker, script = marker_script(tmp_path)
    git(repo, "config", "log.showSignature", "true")
    git(repo, "config", "gpg.program", str(script))
    _, summary = run_import(tmp_path, repo, git=True)
    assert summary.versions_added == 1
    assert not marker.exists()


def test_git_import_does_not_lazily_fetch_through_the_repositorys_transport(
    tmp_path: Path,
) -> None:
    """A partial clone fetches a missing blob from its promisor remote, over
    ``core.sshCommand``: the blob is reported missing instead."""
    repo = one_commit_repo(tmp_path)
    blob = git(repo, "rev-parse", "HEAD:a.md")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    marker, script = marker_script(tmp_path)
    for key, value in [("core.repositoryformatversion", "1"),
                       ("extensions.partialClone", "origin"),
                       ("remote.origin.url", "ssh://example.invalid/repo"),
                       ("remote.origin.promisor", "true"),
                       ("core.sshCommand", str(script))]:  # fmt: skip
        git(repo, "config", key, value)
    _, summary = run_import(tmp_path, repo, git=True)
    assert summary.versions_added == 0 and "missing" in summary.rejected[0].reason
    assert not marker.exists()


def test_every_git_run_disables_what_can_run_a_command() -> None:
    command = importer._git("repo")
    for setting in ("core.fsmonitor=false", "core.hooksPath=/dev/null", "core.pager=cat",
                    "log.showSignature=false", "protocol.allow=never"):  # fmt: skip
        assert command[command.index(setting) - 1] == "-c"
    env = importer._git_env()
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_PAGER"] == "cat"


def test_git_blobs_over_the_limit_and_dotdot_paths_are_refused(tmp_path: Path) -> None:
    repo = one_commit_repo(tmp_path)
    big = seed("https://example.org/big", T0, "<main><p>" + "x" * 5000 + "</p></main>")
    (repo / "big.md").write_text(big, encoding="utf-8")
    (repo / "z.md").write_text(seed("https://example.org/z", T0), encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "big")
    # a tree no checkout can make: sub/../x.md
    blob = git(repo, "hash-object", "-w", "--stdin", stdin=seed("https://example.org/x", T0))
    inner = git(repo, "mktree", stdin=f"100644 blob {blob}\tx.md\n")
    dotdot = git(repo, "mktree", stdin=f"040000 tree {inner}\t..\n")
    top = git(repo, "ls-tree", "HEAD") + f"\n040000 tree {dotdot}\tsub\n"
    commit = git(repo, "commit-tree", git(repo, "mktree", stdin=top), "-p", "HEAD", "-m", "..")
    git(repo, "update-ref", "HEAD", commit)

    store, summary = run_import(tmp_path, repo, git=True, max_bytes=1000)
    assert {r.source.rsplit(":", 1)[1]: r.reason for r in summary.rejected} == {
        "big.md": f"file of {len(big.encode())} bytes is over the 1000 bytes limit: not read",
        "sub/../x.md": "a path with a '..' part: not read",
    }
    # the blob after the refused one is read intact: the reader stayed in step
    assert {w.url for w in store.list_watches()} == {
        "https://example.org/g",
        "https://example.org/z",
    }


def test_a_commit_time_out_of_range_rejects_an_undated_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.md").write_text(seed("https://example.org/u", None), encoding="utf-8")
    git(repo, "add", "a.md")
    env = {**os.environ, "GIT_COMMITTER_DATE": "@300000000000 +0000"}  # the year 11476
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qm", "far"], env=env, check=True)  # fmt: skip
    _, summary = run_import(tmp_path, repo, git=True)
    assert [r.reason for r in summary.rejected] == [
        "states no time, and its commit time is out of range"
    ]


# -- archive paths from hostile URLs ---------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/../../../../etc/passwd",
        "https://evil.example/%2e%2e/%2e%2e/%2e%2e/etc/cron.d/x",
        "https://evil.example/..%2f..%2f..%2fetc%2fpasswd",
        "https://evil.example/a/..\\..\\..\\windows",
        "https://evil.example/?q=/../../../etc",
        "https://../a",
        "https://evil.example/%00/..",
    ],
)
def test_archive_paths_from_hostile_urls_stay_inside_the_archive(tmp_path: Path, url: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.md").write_text(seed(url, T0), encoding="utf-8")
    _, summary = run_import(tmp_path, tree)
    archive = (tmp_path / "archive").resolve()
    written = [p.resolve() for p in tmp_path.rglob("*.md") if tree not in p.parents]
    assert summary.versions_added + len(summary.rejected) == 1
    assert len(written) == summary.versions_added
    assert all(archive in p.parents for p in written)
