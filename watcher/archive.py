"""The on-disk archive: one seed-format file per version, written atomically.

Layout (relative to ``$WATCHER_HOME/archive``)::

    <host>/<article-slug>-<hash8>/<YYYY-MM-DDTHH-MM-SS.mmmZ>.md

``host`` is the article's host name, the slug comes from the URL path so a
person can find an article with ``ls``, ``hash8`` (from the full URL) keeps
two articles with similar paths apart, and the file name is the capture time
in UTC, so ``ls`` lists versions in order.

Crash safety: a version's file is written *before* the transaction that
records it, so a version row never lacks its file. A crash in between would
leave a file no version names; the :class:`Journal` makes that recoverable.
Before the file is written its path is appended to the writing process's
journal (``$WATCHER_HOME/archive.pending/*.journal``, synced), and it is
settled once the transaction committed or failed. Each journal is held with
an flock while its process lives, so :func:`recover` (run when the daemon
starts, and by ``watcher check``) only reads the journals of dead processes:
a path they left unsettled whose version the database does not have is
deleted, with the ``.tmp-*`` file a kill between write and rename leaves.
Deleted, not kept aside: such a capture has no check row and its watch was
never rescheduled, so the watch is still due and is fetched again at once.
The cost is bounded by what was in flight at the crash, never by the size of
the archive, and one extra ``fdatasync`` per new version.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from watcher.errors import StoreError

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^\w.-]+", re.UNICODE)
_MAX_SLUG = 80
PENDING_DIR = "archive.pending"  # next to ``archive/`` in the data folder; see Journal
TMP_PREFIX = ".tmp-"
#: What an OSError means for the person reading the log, by errno.
_WRITE_FAILURES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def article_dir(url: str) -> Path:
    parts = urlsplit(url)
    host = _UNSAFE.sub("_", (parts.hostname or "").lower()).strip(".") or "unknown-host"
    path = unquote(parts.path).strip("/") or "index"
    if parts.query:
        path += "-" + parts.query
    slug = _UNSAFE.sub("-", path).strip("-.")[:_MAX_SLUG] or "article"
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return Path(host) / f"{slug}-{digest}"


def version_path(url: str, captured_at: int, earlier: int = 0) -> Path:
    """Relative path of a version's file. ``earlier``: how many versions of the
    watch before it were stamped with the same millisecond (archives hold such
    captures, the daemon never makes them); the second is ``….v2.md``, which
    sorts after the first."""
    stamp = datetime.fromtimestamp(captured_at / 1000, UTC).strftime("%Y-%m-%dT%H-%M-%S")
    suffix = f".v{earlier + 1}" if earlier else ""
    return article_dir(url) / f"{stamp}.{captured_at % 1000:03d}Z{suffix}.md"


def has_file(verdict: str | None) -> bool:
    """Whether a version gets a file in the archive folder: the versions people
    read do (the first capture, ``verdict`` None, and every version a
    significant change led to: an edit, a reappearance, a revert of news). A
    version whose change was only noise (a relative time that ticked, markup)
    is kept in the database alone, as a small delta; ``watcher export``
    writes it with every other version."""
    return verdict is None or verdict == "significant"


def export_paths(url: str, versions: Iterable[tuple[int, str | None]]) -> list[Path]:
    """Where ``watcher export`` writes each version, given oldest first as
    (capture time, archive path): its archive file's path, or for a version
    without one the path it would have had, numbered like an import numbers
    captures of the same millisecond."""
    taken: Counter[int] = Counter()
    paths = []
    for captured_at, archive_path in versions:
        paths.append(
            Path(archive_path)
            if archive_path
            else version_path(url, captured_at, taken[captured_at])
        )
        taken[captured_at] += 1
    return paths


def write_atomic(root: Path, relative: Path, text: str, *, durable: bool = True) -> Path:
    """Write via a temporary file, fsync, rename: a crash leaves the old file or
    the new one, never half of one.

    ``durable=False`` skips the fsyncs, for files that can be written again
    (reports, site pages) or whose caller syncs once per batch (imports).
    """
    target = root / relative
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_tmp_prefix(target), suffix=".md")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if durable:
            _fsync_dir(target.parent)
    except OSError as exc:
        raise write_error(target, exc) from exc
    return target


def write_error(path: Path, exc: OSError) -> StoreError:
    """One line a person can act on: ``disk full: cannot write …`` (the check
    row's reason too), or ``cannot write …: <strerror>`` for the rarer causes."""
    kind = _WRITE_FAILURES.get(exc.errno or 0)
    if kind is None:
        return StoreError(f"cannot write {path}: {exc.strerror or exc}")
    return StoreError(f"{kind}: cannot write {path}")


def _tmp_prefix(target: Path) -> str:
    """Temporary files are named after their target, so recovery can remove
    exactly the ones a killed write of that target left behind."""
    return f"{TMP_PREFIX}{target.stem[:100]}-"


def sync(paths: list[Path]) -> None:
    """fsync files written with ``durable=False``, then their folders (once each),
    so a batch costs one pass instead of a sync per write."""
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in dict.fromkeys(path.parent for path in paths):
            _fsync_dir(folder)
    except OSError as exc:
        raise StoreError(f"cannot sync {exc.filename}: {exc.strerror or exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the journal of files written but not yet recorded --------------------------------
@dataclass
class Recovered:
    """What :func:`recover` cleaned up after dead processes."""

    journals: int = 0  # dead processes' journals read (and removed)
    deleted: list[Path] = field(default_factory=list)  # files no version names
    temporary: list[Path] = field(default_factory=list)  # ``.tmp-*`` files of killed writes


class Journal:
    """The archive files this process is writing whose versions are not yet
    committed (see the module docstring). One per pipeline, thread-safe,
    created on first use; its flock tells :func:`recover` the writer lives."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.root = root
        self.folder = folder
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._unsettled: dict[str, int] = {}  # relative path -> watch id

    def intend(self, watch_id: int, relative: Path) -> None:
        """Durably note that ``relative`` is about to be written for ``watch_id``."""
        key = relative.as_posix()
        with self._lock:
            try:
                fd = self._fd if self._fd is not None else self._create()
                _write_all(fd, f"+\t{watch_id}\t{key}\n".encode())
                os.fdatasync(fd)  # on disk before the file it announces can be
            except OSError as exc:
                raise write_error(self._path or self.folder, exc) from exc
            self._unsettled[key] = watch_id

    def settle(self, relative: Path) -> None:
        """``relative`` is recorded, or is gone: recovery need not look at it."""
        key = relative.as_posix()
        with self._lock:
            if self._unsettled.pop(key, None) is None or self._fd is None:
                return
            try:
                if self._unsettled:
                    _write_all(self._fd, f"-\t{key}\n".encode())
                else:
                    os.ftruncate(self._fd, 0)  # nothing open: start afresh (O_APPEND)
            except OSError as exc:  # harmless: recovery asks the database first
                log.debug("cannot settle %s in %s: %s", key, self._path, exc)

    def close(self) -> None:
        """Let go of the journal: removed if everything was settled, else left
        (unlocked) for :func:`recover`."""
        with self._lock:
            if self._fd is None:
                return
            if not self._unsettled and self._path is not None:
                with suppress(OSError):
                    self._path.unlink()
            os.close(self._fd)
            self._fd = None

    def _create(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        fresh, path = self.folder / f"{name}.new", self.folder / f"{name}.journal"
        fd = os.open(fresh, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(fresh, path)  # only ever locked under the name recover() reads
            _fsync_dir(self.folder)
        except BaseException:
            os.close(fd)
            for leftover in (fresh, path):
                with suppress(OSError):
                    leftover.unlink(missing_ok=True)
            raise
        self._fd, self._path = fd, path
        return fd


def recover(root: Path, folder: Path, recorded: Callable[[int, str], bool]) -> Recovered:
    """Clean up after processes killed between writing an archive file and
    committing its version: for each journal in ``folder`` whose process is
    gone, delete the files it left unsettled that ``recorded(watch_id,
    relative_path)`` says no version names, and their ``.tmp-*`` files.

    Safe while other processes write (their journals are locked) and when
    several processes recover at once. If ``recorded`` raises (the database
    is away), the journal stays for the next attempt.
    """
    found = Recovered()
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.journal")):
        with _dead_journal(path) as lines:
            if lines is None:
                continue
            for relative, watch_id in _unsettled(lines).items():
                _recover_file(root, relative, watch_id, recorded, found)
            path.unlink(missing_ok=True)  # still locked: no one reads it twice
        found.journals += 1
    _remove_abandoned_new(folder)
    return found


@contextmanager
def _dead_journal(path: Path) -> Iterator[list[str] | None]:
    """The journal's lines, locked, if its writer is gone; None if it lives."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:  # another process recovered it just now
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        yield b"".join(chunks).decode("utf-8", errors="replace").splitlines()
    finally:
        os.close(fd)


def _unsettled(lines: list[str]) -> dict[str, int]:
    """Paths noted with ``+`` and never settled with ``-`` (a torn line is skipped)."""
    pending: dict[str, int] = {}
    for line in lines:
        op, _, rest = line.partition("\t")
        if op == "+":
            watch, _, relative = rest.partition("\t")
            if watch.isdigit() and relative:
                pending[relative] = int(watch)
        elif op == "-":
            pending.pop(rest, None)
    return pending


def _recover_file(
    root: Path, relative: str, watch_id: int, recorded: Callable[[int, str], bool], found: Recovered
) -> None:
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:  # a journal never names one; never follow it
        return
    target = root / rel
    for tmp in target.parent.glob(f"{_tmp_prefix(target)}*"):
        tmp.unlink(missing_ok=True)
        found.temporary.append(tmp)
    if target.exists() and not recorded(watch_id, relative):
        target.unlink(missing_ok=True)
        found.deleted.append(target)


def _remove_abandoned_new(folder: Path, older_than_s: float = 60.0) -> None:
    """A journal is created as ``*.new`` and renamed once locked: a process
    killed in between leaves an empty ``*.new``."""
    for path in folder.glob("*.new"):
        with suppress(OSError):
            if time.time() - path.stat().st_mtime > older_than_s:
                path.unlink()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
