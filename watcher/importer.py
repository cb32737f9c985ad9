"""Import seed-format archives (folder trees or git history) as versions and changes.

Two passes, so memory stays flat however many files there are:

1. *Headers.* Every file's first :data:`HEAD_BYTES` are read to learn its
   article (the normalised URL, :mod:`watcher.urlnorm`) and its capture time.
   Only a small :class:`Header` per file is kept.
2. *Articles.* One article at a time: its files are read in full, parsed and
   diffed in capture-time order (in a pool of worker processes when there
   are many), and the main process writes the archive files, then the
   watch, versions and changes in ONE transaction per article. An
   interrupted import therefore leaves whole articles or nothing, and a
   second run skips what is already there.

Ordering: a folder's files by the time each states (epoch line, front
matter ``date``, ``日期：`` line; in feed-derived archives often the feed's
publication date, so reports call it the *stated* time), ties in path order;
git history by commit order, because a newer capture can state an earlier,
rounded time. A file that states no time is dated by its modification time
(folders) or its commit time (git). The summary counts undated files and
lists ties and times that go backwards.

Idempotence key: (normalised URL, captured_at, sha256 of the content), where
the content is the file text without its capture-time line (see
:func:`watcher.snapshot.split_capture_time`). For a file dated by its modification time the
key is (URL, content hash) alone, because copying a folder changes mtimes.
Re-importing adds nothing.

Stored content is the file text (line endings normalised to LF, BOM
dropped) minus the epoch line, so front matter survives and
:func:`watcher.snapshot.join_capture_time` rebuilds the imported file byte for
byte on export. Like the daemon's, the archive folder gets a file only for
the versions people read (:func:`watcher.archive.has_file`): a version whose
change was noise is in the database alone, and exported from it like every
other. Changes are computed exactly as the daemon computes them,
from the stored content with ``captured_at`` (:func:`watcher.diff.classify`),
so an export re-imported elsewhere gives the same changes.

Versions older than the newest version already stored for a URL cannot be
placed in its history (``seq`` is append-only); they are reported as
rejected with that reason.

Archives may be hostile; a bad file is rejected with its reason, never stops
the run. Only regular files of at most ``max_bytes`` (10 MB, the fetch cap)
are read, never a FIFO or device, a path with a ``..`` part, or a symbolic
link out of the imported folder (:func:`watcher.snapshot.read_bytes`); a
stated time outside 1970..9999 is refused (:data:`watcher.snapshot.MAX_TIME_MS`);
and git runs with a config under which nothing the repository names is
executed (:data:`_GIT_SAFE_CONFIG`).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import multiprocessing
import os
import re
import subprocess
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from watcher import archive
from watcher import snapshot as snapshot_mod
from watcher.article import parse_article
from watcher.boilerplate import THRESHOLD, Boilerplate, fingerprints, host_of, story
from watcher.config import REPORTS_CHANNEL
from watcher.diff import Revert, classify
from watcher.errors import SnapshotFormatError, WatcherError
from watcher.models import Article, Change, Snapshot, TimeBasis
from watcher.notify import routing
from watcher.store import OutboxEntry, Store, Transaction, WatchState, now_ms
from watcher.urlnorm import normalise_url

log = logging.getLogger(__name__)

HEAD_BYTES = 16 * 1024
DEFAULT_GLOBS: tuple[str, ...] = ("**/*.md", "**/*.txt")
#: Below this many files a worker pool costs more than it saves.
POOL_THRESHOLD = 64
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
#: A batch (one transaction, one disk flush) ends at this many versions or articles.
BATCH_VERSIONS = 200
BATCH_ARTICLES = 50


# -- values passed between the passes --------------------------------------------
@dataclass(frozen=True, slots=True)
class Source:
    """Where one file version lives: a path, or a blob in a git repository."""

    label: str
    fallback_ms: int  # mtime or commit time: the date of a file that states none
    order: int  # ties between equal times keep walk / commit order
    path: str | None = None
    repo: str | None = None
    blob: str | None = None
    root: str | None = None  # the folder ``path`` was found in: it may not lead out
    max_bytes: int = snapshot_mod.MAX_FILE_BYTES
    refused: str | None = None  # why it is not read at all (reported as rejected)


@dataclass(frozen=True, slots=True)
class Header:
    source: Source
    url: str  # normalised
    captured_at: int
    undated: bool  # time taken from Source.fallback_ms


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file that was not imported, and why."""

    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Base:
    """The newest stored version of an article, which new versions diff against."""

    content: str
    captured_at: int
    page_metadata: dict[str, Any]
    seq: int
    basis: TimeBasis


@dataclass(frozen=True, slots=True)
class _Task:
    url: str
    sources: tuple[Source, ...]
    known: frozenset[tuple[int, str]]
    seq_by_sha: dict[str, int]  # stored content -> the newest version holding it
    news_seqs: frozenset[int]  # versions reached by a significant change
    base: _Base | None
    boilerplate: frozenset[str] = frozenset()  # the host's learned fingerprints


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One new version, parsed and diffed against its predecessor in a worker."""

    source: str
    captured_at: int
    content: str
    sha: str
    title: str
    url: str
    change: Change | None
    reverted_to: int | None  # seq of the older version whose content this is again


@dataclass(frozen=True, slots=True)
class _ArticleResult:
    url: str
    versions: tuple[_Prepared, ...]
    rejected: tuple[Rejected, ...]
    skipped: int
    order_notes: tuple[Rejected, ...] = ()
    fingerprints: frozenset[str] = frozenset()  # of every new version, for the sightings
    story: str | None = None  # the story its newest version tells (boilerplate.story)


@dataclass
class ImportSummary:
    """What an import did; the CLI prints it."""

    files: int = 0
    articles: int = 0
    versions_added: int = 0
    changes_added: int = 0
    already_present: int = 0
    watches_created: int = 0
    undated: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    #: Versions whose place in history their stated time did not settle: the
    #: same time as the version before (a tie, kept in path order) or, in git
    #: history, an earlier time than the commit before (kept in commit order).
    order_notes: list[Rejected] = field(default_factory=list)


class Progress(Protocol):
    """Progress reporting for the two passes (the CLI draws tqdm bars)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


# -- finding files ----------------------------------------------------------------
def glob_regex(patterns: Sequence[str]) -> re.Pattern[str]:
    """Match repository-relative POSIX paths against globs (``**`` spans folders)."""
    parts = []
    for pattern in patterns:
        out, i = [], 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            elif pattern.startswith("**", i):
                out.append(".*")
                i += 2
            elif pattern[i] == "*":
                out.append("[^/]*")
                i += 1
            elif pattern[i] == "?":
                out.append("[^/]")
                i += 1
            else:
                out.append(re.escape(pattern[i]))
                i += 1
        parts.append("".join(out))
    return re.compile("(?:" + "|".join(parts) + r")\Z")


def folder_sources(root: Path, globs: Sequence[str] = DEFAULT_GLOBS) -> Iterator[Source]:
    """Matching files under ``root`` in sorted order; hidden folders (.git) skipped.

    Symbolic links to folders are not followed; each file is checked when
    read (:func:`watcher.snapshot.read_bytes`): only regular files inside
    ``root`` are read. ``root`` itself, named by the user, may be a link.
    """
    matcher = glob_regex(globs)
    if not root.is_dir():  # one file named; read_bytes refuses a FIFO or device
        yield Source(str(root), _mtime_ms(root), 0, path=str(root))
        return
    order = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for name in sorted(files):
            path = base / name
            relative = path.relative_to(root).as_posix()
            if name.startswith(".") or not matcher.match(relative):
                continue
            yield Source(str(path), _mtime_ms(path), order, path=str(path), root=str(root))
            order += 1


def _mtime_ms(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns // 1_000_000
    except OSError:
        return 0  # read() reports the problem


def git_sources(repo: Path, globs: Sequence[str] = DEFAULT_GLOBS) -> Iterator[Source]:
    """Every committed version of every matching file, oldest commit first.

    ``git log --raw`` lists the blob each commit wrote; a blob seen before
    (a rename, a re-commit of the same bytes) is the same capture and is
    listed once, at its first commit.
    """
    matcher = glob_regex(globs)
    command = [*_git(repo), "log", "-z", "--reverse", "--raw", "--no-renames", "--no-abbrev",
               "--no-show-signature", "--no-ext-diff", "--no-textconv", "--no-color",
               "--format=%x01%H %ct", "--", *(f":(glob){g}" for g in globs)]  # fmt: skip
    try:
        proc = subprocess.run(command, capture_output=True, check=False, env=_git_env())
    except OSError as exc:
        raise WatcherError(f"cannot run git: {exc.strerror}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise WatcherError(
            f"{repo}: not a readable git repository ({detail[-1] if detail else ''})"
        )
    seen: set[str] = set()
    commit, when, order = "", 0, 0
    tokens = proc.stdout.split(b"\0")
    i = 0
    while i < len(tokens):
        token = tokens[i].lstrip(b"\n")
        i += 1
        if token.startswith(b"\x01"):
            sha, _, stamp = token[1:].decode().partition(" ")
            commit, when = sha, int(stamp) * 1000
        elif token.startswith(b":") and i < len(tokens):
            path = tokens[i].decode("utf-8", "surrogateescape")
            i += 1
            meta = token[1:].decode().split()
            mode, blob, status = meta[1], meta[3], meta[4]
            if status not in ("A", "M", "T") or not mode.startswith("100") or blob in seen:
                continue
            if not matcher.match(path):
                continue
            seen.add(blob)
            label = f"{repo}@{commit[:10]}:{path}"
            refused = "a path with a '..' part: not read" if ".." in path.split("/") else None
            yield Source(label, when, order, repo=str(repo), blob=blob, refused=refused)
            order += 1


#: Given to every git run: nothing a repository's own config names is executed
#: (an fsmonitor, hooks, a pager, an external diff or textconv, a signature
#: checker, the transport of a partial clone's lazy fetch), and the root
#: commit's files are always listed. No system or user config is read either
#: (:func:`_git_env`).
_GIT_PROTOCOLS = ("ext", "fd", "file", "git", "ssh", "http", "https", "ftp", "ftps")
_GIT_SAFE_CONFIG: tuple[str, ...] = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "diff.external=",
    "log.showSignature=false",
    "log.showRoot=true",
    "protocol.allow=never",
    *(f"protocol.{name}.allow=never" for name in _GIT_PROTOCOLS),
)


def _git(repo: Path | str) -> list[str]:
    config = [arg for setting in _GIT_SAFE_CONFIG for arg in ("-c", setting)]
    return ["git", "--no-pager", *config, "-C", str(repo)]


def _git_env() -> dict[str, str]:
    """This environment without its GIT_* variables, plus: no system or
    global config, no prompts, no pager, no lazy fetch of a partial clone's
    missing objects (protocol.allow=never stops it too), no optional locks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ATTR_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        GIT_NO_LAZY_FETCH="1",
        GIT_OPTIONAL_LOCKS="0",
    )
    return env


# -- reading (in worker processes or in-process) -----------------------------------
class _GitReader:
    """One ``git cat-file --batch`` per repository and process: fast blob reads."""

    def __init__(self, repo: str) -> None:
        self.proc = subprocess.Popen(
            [*_git(repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_git_env(),
        )

    def read(self, blob: str, label: str, max_bytes: int) -> bytes:
        """The blob's bytes; SnapshotFormatError past ``max_bytes`` (read
        through and dropped in small pieces, never held)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(blob.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3:
            raise OSError(f"git cat-file: {b' '.join(header).decode()}")
        size = int(header[2])
        if size > max_bytes:
            for left in range(size + 1, 0, -_CHUNK):
                self.proc.stdout.read(min(left, _CHUNK))
            raise SnapshotFormatError(label, snapshot_mod.too_large(size, max_bytes))
        data = self.proc.stdout.read(size)
        self.proc.stdout.read(1)
        return data

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


_CHUNK = 1 << 20
_readers: dict[str, _GitReader] = {}


def _close_readers() -> None:
    while _readers:
        _readers.popitem()[1].close()


atexit.register(_close_readers)


def _read(source: Source, limit: int | None = None) -> tuple[bytes, bool]:
    """The file's bytes (at most ``limit``) and whether they are all of it."""
    if source.refused is not None:
        raise SnapshotFormatError(source.label, source.refused)
    try:
        if source.path is not None:
            data = snapshot_mod.read_bytes(
                source.path, limit=limit, max_bytes=source.max_bytes, within=source.root
            )
            return data, limit is None or len(data) < limit
        assert source.repo is not None and source.blob is not None
        reader = _readers.get(source.repo) or _readers.setdefault(
            source.repo, _GitReader(source.repo)
        )
        return reader.read(source.blob, source.label, source.max_bytes), True
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SnapshotFormatError(source.label, f"cannot read file: {reason}") from exc


def read_header(source: Source) -> Header | Rejected:
    """Pass 1: the article and time of one file, from its first bytes."""
    try:
        data, complete = _read(source, HEAD_BYTES)
        snap = _parse_head(data, complete, source.label)
        if snap is None:
            data, _ = _read(source)
            snap = snapshot_mod.parse(
                snapshot_mod.file_text(data, source.label), source=source.label
            )
        url = normalise_url(snap.url)
    except WatcherError as exc:
        return Rejected(source.label, _reason(exc))
    undated = snap.captured_at is None
    captured = source.fallback_ms if snap.captured_at is None else snap.captured_at
    if not snapshot_mod.MIN_TIME_MS <= captured <= snapshot_mod.MAX_TIME_MS:
        what = "commit time" if source.blob else "modification time"
        return Rejected(source.label, f"states no time, and its {what} is out of range")
    return Header(source, url, captured, undated)


def _parse_head(data: bytes, complete: bool, label: str) -> Snapshot | None:
    """Parse a file's first bytes; None when the cut may have hidden the header."""
    try:
        text = snapshot_mod.file_text(data, label)
    except SnapshotFormatError:
        if complete:
            raise
        return None  # maybe a character cut in two: read the whole file
    try:
        return snapshot_mod.parse(text, source=label)
    except SnapshotFormatError:
        if complete:
            raise
        return None


@dataclass
class _Chain:
    """An article's history as a worker extends it: the version the next one
    is diffed against, and what revert detection needs to know."""

    previous: tuple[Snapshot, Article, dict[str, Any], TimeBasis] | None
    seq: int
    known: set[tuple[int, str]]
    seq_by_sha: dict[str, int]
    news: set[int]  # versions reached by a significant change
    boilerplate: Boilerplate

    @classmethod
    def of(cls, task: _Task) -> _Chain:
        previous = None
        if task.base is not None:
            snap = snapshot_mod.stored(task.base.content, task.base.captured_at)
            previous = (snap, parse_article(snap), task.base.page_metadata, task.base.basis)
        seq = task.base.seq if task.base else 0
        known, seq_by_sha, news = set(task.known), dict(task.seq_by_sha), set(task.news_seqs)
        return cls(previous, seq, known, seq_by_sha, news, Boilerplate.of(task.boilerplate))

    def revert(self, sha: str) -> Revert | None:
        """The older version (not the previous one) whose content this is again."""
        older = self.seq_by_sha.get(sha)
        if older is None or older == self.seq:
            return None
        return Revert(older, undoes_news=any(older < n <= self.seq for n in self.news))

    def classify(self, current: Snapshot, article: Article, revert: Revert | None) -> Change | None:
        if self.previous is None:
            return None
        old, old_article, old_metadata, basis = self.previous
        return classify(
            old,
            current,
            old_metadata=old_metadata,
            new_metadata={},
            old_article=old_article,
            new_article=article,
            revert=revert,
            basis=(basis, TimeBasis.STATED),
            boilerplate=self.boilerplate,
        )

    def append(self, current: Snapshot, article: Article, sha: str, change: Change | None) -> None:
        self.seq += 1
        self.known.add((current.captured_at or 0, sha))
        self.seq_by_sha[sha] = self.seq
        if change is not None and change.significant:
            self.news.add(self.seq)
        self.previous = (current, article, {}, TimeBasis.STATED)


def prepare_article(task: _Task) -> _ArticleResult:
    """Pass 2 for one article: read, parse and classify each new version in order."""
    chain = _Chain.of(task)
    versions: list[_Prepared] = []
    rejected: list[Rejected] = []
    notes: list[Rejected] = []
    seen: set[str] = set()
    told: str | None = None
    skipped = 0
    for source in task.sources:
        try:
            data, _ = _read(source)
            text = snapshot_mod.file_text(data, source.label)
            snap = snapshot_mod.parse(text, source=source.label)
            content = snapshot_mod.split_capture_time(text)
            undated = snap.captured_at is None
            captured = source.fallback_ms if snap.captured_at is None else snap.captured_at
            sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
            if (captured, sha) in chain.known or (undated and sha in chain.seq_by_sha):
                skipped += 1
                continue
            if source.blob is None and task.base is not None and captured < task.base.captured_at:
                rejected.append(_too_old(source.label, task.url, task.base.seq))
                continue
            current = snapshot_mod.stored(content, captured, source.label)
            article = parse_article(current)  # parsed once, reused as the next "old"
            revert = chain.revert(sha)
            change = chain.classify(current, article, revert)
            seen |= fingerprints(article)
            told = story(article)
        except WatcherError as exc:
            rejected.append(Rejected(source.label, _reason(exc)))
            continue
        except Exception as exc:  # a parser bug must not stop the import: report it
            log.exception("cannot import %s", source.label)
            rejected.append(Rejected(source.label, f"internal error: {exc!r}"[:200]))
            continue
        if chain.previous is not None and (
            note := _order_note(source, captured, chain.previous[0], chain.seq)
        ):
            notes.append(note)
        chain.append(current, article, sha, change)
        reverted = revert.seq if revert else None
        prepared = _Prepared(
            source.label, captured, content, sha, snap.title, snap.url, change, reverted
        )
        versions.append(prepared)
    return _ArticleResult(
        task.url, tuple(versions), tuple(rejected), skipped, tuple(notes), frozenset(seen), told
    )


def learn_article(source: Source) -> tuple[str | None, frozenset[str]]:
    """The learning pass's look at one article: the story its newest file
    tells and that file's fingerprints. A file that cannot be read counts for
    nothing here; pass 2 reports it."""
    try:
        data, _ = _read(source)
        text = snapshot_mod.file_text(data, source.label)
        article = parse_article(snapshot_mod.parse(text, source.label))
    except Exception:  # reported with its reason by prepare_article
        return None, frozenset()
    return story(article), frozenset(fingerprints(article))


def _order_note(source: Source, captured: int, previous: Snapshot, seq: int) -> Rejected | None:
    """Why this version's stated time did not place it after version ``seq``."""
    if captured == previous.captured_at:
        return Rejected(source.label, f"states the same time as version {seq}")
    if captured < (previous.captured_at or 0):
        return Rejected(source.label, f"states an earlier time than version {seq} before it")
    return None


def _reason(exc: WatcherError) -> str:
    if isinstance(exc, SnapshotFormatError):
        return exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"
    return str(exc)


# -- the import -------------------------------------------------------------------
@dataclass
class Importer:
    """Import sources into ``store`` and the archive under ``archive_dir``.

    New watches are PAUSED (history kept, never checked) unless ``watch``,
    which also resumes paused watches among the imported URLs.
    """

    store: Store
    archive_dir: Path
    watch: bool = False
    workers: int = 2
    progress: Progress | None = None
    clock: Callable[[], int] = now_ms
    batch_versions: int = BATCH_VERSIONS
    batch_articles: int = BATCH_ARTICLES
    summary: ImportSummary = field(default_factory=ImportSummary)
    _batch: list[tuple[_Task, _ArticleResult]] = field(default_factory=list, init=False)
    _batch_versions: int = field(default=0, init=False)
    _learned: dict[str, frozenset[str]] = field(default_factory=dict, init=False)

    def run(self, sources: Iterable[Source]) -> ImportSummary:
        source_list = list(sources)
        self.summary.files = len(source_list)
        use_pool = self.workers > 1 and len(source_list) >= POOL_THRESHOLD
        pool = _pool(self.workers) if use_pool else None
        try:
            articles = self._headers(source_list, pool)
            self.summary.articles = len(articles)
            self._learned = self._learn(articles, pool)
            self._articles(articles, pool)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            _close_readers()
        return self.summary

    # pass 1b
    def _learn(
        self, articles: dict[str, list[Header]], pool: Pool | None
    ) -> dict[str, frozenset[str]]:
        """Site boilerplate learned from the imported set itself, before anything
        is classified: each article's newest file counts once per host; a host
        with fewer than THRESHOLD articles here can only add what is stored."""
        by_host: dict[str, list[Source]] = {}
        for url, headers in articles.items():
            newest = max(headers, key=_order_key).source
            by_host.setdefault(host_of(url), []).append(newest)
        todo = [(host, found) for host, found in by_host.items() if len(found) >= THRESHOLD]
        self._phase("learning site boilerplate", sum(len(found) for _, found in todo))
        learned: dict[str, frozenset[str]] = {}
        for host, found in todo:
            stories: defaultdict[str, set[str]] = defaultdict(set)
            seen = (
                pool.imap(learn_article, found, chunksize=16) if pool else map(learn_article, found)
            )
            for n, (told, fps) in enumerate(seen):
                key = told or f"article:{n}"  # no text: stands for itself
                for fp in fps:
                    stories[fp].add(key)
                self._advance(1)
            learned[host] = frozenset(fp for fp, keys in stories.items() if len(keys) >= THRESHOLD)
        for host in by_host:
            stored = self.store.boilerplate_fingerprints(host, THRESHOLD)
            learned[host] = learned.get(host, frozenset()) | stored
        return learned

    # pass 1
    def _headers(self, sources: list[Source], pool: Pool | None) -> dict[str, list[Header]]:
        self._phase("reading headers", len(sources))
        results = (
            pool.imap(read_header, sources, chunksize=32) if pool else map(read_header, sources)
        )
        articles: dict[str, list[Header]] = {}
        for result in results:
            if isinstance(result, Rejected):
                self.summary.rejected.append(result)
            else:
                self.summary.undated += result.undated
                articles.setdefault(result.url, []).append(result)
            self._advance(1)
        return articles

    # pass 2
    def _articles(self, articles: dict[str, list[Header]], pool: Pool | None) -> None:
        self._phase("importing", sum(len(h) for h in articles.values()))
        window: deque[tuple[_Task, AsyncResult[_ArticleResult]]] = deque()
        # Deep enough that the workers keep parsing while this process writes a
        # batch (a few hundred KB of results per slot; memory stays flat).
        limit = 32 * self.workers
        for url, headers in articles.items():
            task = self._task(url, headers)
            if pool is None:
                self._store(task, prepare_article(task))
                continue
            window.append((task, pool.apply_async(prepare_article, (task,))))
            while len(window) >= limit:
                done, result = window.popleft()
                self._store(done, result.get())
        while window:
            done, result = window.popleft()
            self._store(done, result.get())
        self._flush()

    def _task(self, url: str, headers: list[Header]) -> _Task:
        """What a worker needs: the files in order, and what is already stored."""
        headers.sort(key=_order_key)
        sources = tuple(h.source for h in headers)
        learned = self._learned.get(host_of(url), frozenset())
        watch = self.store.get_watch(url)
        stored = self.store.versions(watch.id) if watch is not None else []
        if not stored:
            return _Task(url, sources, frozenset(), {}, frozenset(), None, learned)
        latest = stored[-1]
        known = frozenset((v.captured_at, v.content_sha256) for v in stored)
        seq_by_sha = {v.content_sha256: v.seq for v in stored}  # in order: the newest wins
        seqs = {v.id: v.seq for v in stored}
        news = frozenset(
            seqs[c.new_version_id]
            for c in self.store.changes(stored[0].watch_id)
            if c.new_version_id in seqs and c.verdict == "significant"
        )
        text = self.store.version_text(latest.id)
        base = _Base(text, latest.captured_at, latest.page_metadata, latest.seq, latest.time_basis)
        return _Task(url, sources, known, seq_by_sha, news, base, learned)

    def _store(self, task: _Task, result: _ArticleResult) -> None:
        self.summary.rejected.extend(result.rejected)
        self.summary.order_notes.extend(result.order_notes)
        self.summary.already_present += result.skipped
        self._batch.append((task, result))
        self._batch_versions += len(result.versions)
        if self._batch_versions >= self.batch_versions or len(self._batch) >= self.batch_articles:
            self._flush()

    def _flush(self) -> None:
        """Files first, then one transaction for the batch's articles.

        The batch's archive files are written without a sync each, then synced
        together (files and their folders) before the transaction that records
        them commits: a version in the database always has its file on disk.
        """
        batch, self._batch, self._batch_versions = self._batch, [], 0
        written = [(task, result, _archive_paths(task, result)) for task, result in batch
                   if result.versions]  # fmt: skip
        files: list[Path] = []
        for _, result, paths in written:
            for version, relative in zip(result.versions, paths, strict=True):
                if relative is None:  # noise only: in the database alone
                    continue
                text = snapshot_mod.join_capture_time(version.content, version.captured_at)
                files.append(archive.write_atomic(self.archive_dir, relative, text, durable=False))
        archive.sync(files)
        if written:
            with self.store.transaction() as tx:
                for task, result, paths in written:
                    self._write_article(tx, task, result, paths)
        for task, result in batch:
            if not result.versions:
                self._set_state(task.url)
        self._advance(sum(len(task.sources) for task, _ in batch))

    def _write_article(
        self, tx: Transaction, task: _Task, result: _ArticleResult, paths: list[Path | None]
    ) -> None:
        watch, created = tx.add_watch(
            task.url, site=urlsplit(task.url).hostname or "", now_ms=self.clock()
        )
        self.summary.watches_created += created
        if created and not self.watch:
            tx.set_state(task.url, WatchState.PAUSED)
        elif self.watch and watch.state == WatchState.PAUSED:
            tx.set_state(task.url, WatchState.ACTIVE)
        tx.record_sightings(host_of(task.url), watch.id, result.fingerprints, result.story)
        stored = [] if created else tx.versions(watch.id)
        ids = {v.seq: v.id for v in stored}
        previous = stored[-1] if stored else None
        for prepared, relative in zip(result.versions, paths, strict=True):
            version = tx.add_version(
                watch.id,
                seq=previous.seq + 1 if previous else 1,
                captured_at=prepared.captured_at,
                content_sha256=prepared.sha,
                content_text=prepared.content,
                http_status=None,
                final_url=prepared.url,
                title=prepared.title,
                archive_path=relative.as_posix() if relative is not None else None,
            )
            self.summary.versions_added += 1
            ids[version.seq] = version.id
            if previous is not None and prepared.change is not None:
                reverted = ids.get(prepared.reverted_to) if prepared.reverted_to else None
                tx.add_change(
                    prepared.change,
                    watch_id=watch.id,
                    old_version_id=previous.id,
                    new_version_id=version.id,
                    reverted_to_version_id=reverted,
                    created_at=prepared.captured_at,
                    # history: the reports of news are owed, but it notifies no one
                    deliveries=(
                        (OutboxEntry(REPORTS_CHANNEL, prepared.captured_at),)
                        if routing.owes_reports(prepared.change.verdict.value)
                        else ()
                    ),
                )
                self.summary.changes_added += 1
            previous = version

    def _set_state(self, url: str) -> None:
        """``--watch`` on an article already fully imported still starts watching it."""
        if not self.watch:
            return
        watch = self.store.get_watch(url)
        if watch is not None and watch.state == WatchState.PAUSED:
            self.store.set_state(url, WatchState.ACTIVE)

    def _phase(self, name: str, total: int) -> None:
        if self.progress is not None:
            self.progress.phase(name, total)

    def _advance(self, n: int) -> None:
        if self.progress is not None and n:
            self.progress.advance(n)


def _order_key(header: Header) -> tuple[int, int]:
    # Git history is the order captures were made: a newer capture may state
    # an earlier (rounded, or feed) time. Folders have no order but the times.
    return (0 if header.source.blob else header.captured_at, header.source.order)


def _too_old(label: str, url: str, seq: int) -> Rejected:
    return Rejected(
        label,
        f"captured before the newest stored version of {url} (version {seq}); "
        "history is appended in time order",
    )


def _archive_paths(task: _Task, result: _ArticleResult) -> list[Path | None]:
    """The archive layout's path of each new version, None for a version that
    gets no file (:func:`watcher.archive.has_file`: its change was noise, as
    for the daemon). Archives may hold two captures stamped with the same
    millisecond, which the daemon never makes: the second gets ``….v2.md``."""
    taken = Counter(captured for captured, _ in task.known)
    paths: list[Path | None] = []
    for version in result.versions:
        earlier = taken[version.captured_at]
        taken[version.captured_at] += 1
        verdict = version.change.verdict.value if version.change is not None else None
        paths.append(
            archive.version_path(task.url, version.captured_at, earlier)
            if archive.has_file(verdict)
            else None
        )
    return paths


def _pool(workers: int) -> Pool:
    """Worker processes that never touch the database (forkserver: no inherited
    connections)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def import_paths(
    store: Store,
    archive_dir: Path,
    paths: Sequence[Path],
    *,
    git: bool = False,
    globs: Sequence[str] = DEFAULT_GLOBS,
    watch: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
    max_bytes: int = snapshot_mod.MAX_FILE_BYTES,
) -> ImportSummary:
    """Import folder trees (or, with ``git``, repositories' histories).

    Files over ``max_bytes`` (pass ``Settings.max_body``) are refused unread."""
    for path in paths:
        if not path.exists():
            raise WatcherError(f"{path}: no such file or folder")
    sources: list[Source] = []
    for path in paths:
        found = git_sources(path, globs) if git else folder_sources(path, globs)
        offset = len(sources)
        sources.extend(replace(s, order=s.order + offset, max_bytes=max_bytes) for s in found)
    importer = Importer(store, archive_dir, watch=watch, workers=workers, progress=progress)
    return importer.run(sources)
