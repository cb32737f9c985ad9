"""The latest version of recently changed watches, kept parsed for their next diff.

A new version is diffed against the watch's latest one, which would be read
back from the store and parsed again, on every new version: for a page whose
relative times tick, on every check. :class:`ParsedVersions` keeps, per
watch, the version it just stored as the next diff needs it: the snapshot
exactly as :meth:`Store.version_snapshot` would read it back, its article
(``parse_article`` depends only on the snapshot's URL, title, body and time,
so the article parsed before storing is the one a re-read would give), and
the boilerplate fingerprints already recorded for it.

An entry answers only for the version it was made from (same content hash,
same capture time): anything else (a version stored by another process, an
import) is a miss, and the caller reads the store as before. The cache is an
LRU over watches, bounded by its entry count (about 15 KB an entry on a
55 KB news page), and is shared by the pipeline's worker threads.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace

from watcher import snapshot as snapshot_mod
from watcher.errors import WatcherError
from watcher.models import Article, Snapshot

DEFAULT_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Parsed:
    """A stored version, ready to be the old side of the next diff."""

    content_sha256: str
    captured_at: int
    #: the snapshot without its body, and the body as zlib-compressed UTF-8:
    #: a body is a third of an entry as a str, a twentieth compressed, and
    #: inflating it back costs tens of microseconds against a parse's milliseconds
    frame: Snapshot
    packed_body: bytes
    article: Article
    #: the boilerplate fingerprints recorded with it (hex), packed: 8 bytes each
    packed_fingerprints: bytes

    @property
    def snapshot(self) -> Snapshot:
        return replace(
            self.frame, body=zlib.decompress(self.packed_body).decode("utf-8", "surrogatepass")
        )

    @property
    def fingerprints(self) -> frozenset[str]:
        packed = self.packed_fingerprints
        return frozenset(packed[i : i + 8].hex() for i in range(0, len(packed), 8))


class ParsedVersions:
    """Watch id -> its latest version, parsed; the least recently used goes first."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, watch_id: int, content_sha256: str, captured_at: int) -> Parsed | None:
        """The entry of this watch, if it is of this very version."""
        with self._lock:
            entry = self._entries.get(watch_id)
            if entry is None:
                return None
            if entry.content_sha256 != content_sha256 or entry.captured_at != captured_at:
                del self._entries[watch_id]  # another version came in meanwhile
                return None
            self._entries.move_to_end(watch_id)
            return entry

    def put(
        self,
        watch_id: int,
        *,
        content: str,
        content_sha256: str,
        snap: Snapshot,
        article: Article,
        fingerprints: frozenset[str],
    ) -> None:
        """Keep the version just stored with ``content`` (the snapshot's
        content text), parsed from ``snap`` into ``article``. Nothing is kept
        when the stored text would read back as another snapshot (the parse
        of the re-read could differ), or when the snapshot has no time."""
        if self.size <= 0 or snap.captured_at is None:
            return
        try:
            stored = snapshot_mod.stored(content, snap.captured_at)
        except WatcherError:  # the next check reads it back, and says what is wrong
            self.forget(watch_id)
            return
        if (stored.url, stored.title, stored.body, stored.front_matter) != (
            snap.url,
            snap.title,
            snap.body,
            snap.front_matter,
        ):
            self.forget(watch_id)
            return
        entry = Parsed(
            content_sha256,
            snap.captured_at,
            replace(stored, body=""),
            zlib.compress(stored.body.encode("utf-8", "surrogatepass"), 1),
            article,
            _pack(fingerprints),
        )
        with self._lock:
            self._entries[watch_id] = entry
            self._entries.move_to_end(watch_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, watch_id: int) -> None:
        with self._lock:
            self._entries.pop(watch_id, None)


def _pack(fingerprints: frozenset[str]) -> bytes:
    """Boilerplate fingerprints (16 hex digits each) as 8 bytes each, in a
    tenth of the memory of a set of strings. A set holding anything else is
    not kept: the next version then records all of its own again."""
    if any(len(fp) != 16 for fp in fingerprints):
        return b""
    try:
        return b"".join(bytes.fromhex(fp) for fp in sorted(fingerprints))
    except ValueError:
        return b""
