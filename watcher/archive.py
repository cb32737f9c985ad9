"""The on-disk archive: one seed-format file per version, written atomically.

Layout (relative to ``$WATCHER_HOME/archive``)::

    <host>/<article-slug>-<hash8>/<YYYY-MM-DDTHH-MM-SS.mmmZ>.md

``host`` is the article's host name, the slug comes from the URL path so a
person can find an article with ``ls``, ``hash8`` (from the full URL) keeps
two articles with similar paths apart, and the file name is the capture time
in UTC, so ``ls`` lists versions in order.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from watcher.errors import StoreError

_UNSAFE = re.compile(r"[^\w.-]+", re.UNICODE)
_MAX_SLUG = 80


def article_dir(url: str) -> Path:
    parts = urlsplit(url)
    host = _UNSAFE.sub("_", (parts.hostname or "").lower()).strip(".") or "unknown-host"
    path = unquote(parts.path).strip("/") or "index"
    if parts.query:
        path += "-" + parts.query
    slug = _UNSAFE.sub("-", path).strip("-.")[:_MAX_SLUG] or "article"
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    return Path(host) / f"{slug}-{digest}"


def version_path(url: str, captured_at: int) -> Path:
    """Relative path of a version's file."""
    stamp = datetime.fromtimestamp(captured_at / 1000, UTC).strftime("%Y-%m-%dT%H-%M-%S")
    return article_dir(url) / f"{stamp}.{captured_at % 1000:03d}Z.md"


def write_atomic(root: Path, relative: Path, text: str, *, durable: bool = True) -> Path:
    """Write via a temporary file, fsync, rename: a crash leaves the old file or
    the new one, never half of one.

    ``durable=False`` skips the fsyncs, for files that can be written again
    (reports, site pages) or whose caller syncs once per batch (imports).
    """
    target = root / relative
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".md")
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
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


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
