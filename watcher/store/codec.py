"""How a content text is kept in the ``contents`` table: zstd-compressed, and
when its watch has a previous version, as a zstd delta against that version.

A page that is checked every hour and whose only change is a ticking "14 分钟前"
stores a new version each time; whole texts (30-55 KB each) made such a watch
cost megabytes a week. A delta is a zstd frame compressed with the previous
version's text as a raw-content dictionary: what did not move is a reference
into the previous text, so a tick costs a few dozen bytes and an edited
paragraph about its own size. zlib's ``zdict`` does the same within a 32 KB
window only, which long articles exceed, and even on the corpus's BBC pages
a tick cost it 40-215 bytes where zstd needs 22-33.

Reading a delta needs its base first, so chains are bounded: a version is a
full (compressed) copy when its base is already ``FULL_EVERY - 1`` deltas from
a full copy, and whenever the delta would not be much smaller than a full copy
(a rewritten page): reading any version decompresses at most ``FULL_EVERY``
frames, each in tens of microseconds.

Pure functions over bytes; the repository reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import zstandard as zstd

from watcher.errors import StoreError

#: Rows written before migration 0004: the plain text in ``text``.
TEXT: Final = "text"
#: A zstd frame of the whole text in ``data``.
ZSTD: Final = "zstd"
#: A zstd frame in ``data`` compressed with ``base_sha256``'s text as its dictionary.
DELTA: Final = "zstd-delta"

#: At most this many frames are decompressed to read one version.
FULL_EVERY: Final = 16
#: Compression level: 9 is within 6% of level 19's size at a tenth of its time.
LEVEL: Final = 9
#: A delta is kept only when it is at most this share of the full copy's size.
DELTA_SHARE: Final = 0.5
#: ... which is not even computed for a delta under 1/TINY of the text.
TINY: Final = 64


@dataclass(frozen=True, slots=True)
class Base:
    """The content a new one may be a delta of: the watch's previous version."""

    sha256: str
    text: str
    depth: int


@dataclass(frozen=True, slots=True)
class Encoded:
    """One ``contents`` row's stored form: ``depth`` counts the deltas between
    it and the full copy its chain starts from (0: it is one)."""

    codec: str
    data: bytes | None
    base_sha256: str | None
    depth: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A row as read back, for :func:`decode`."""

    sha256: str
    codec: str
    text: str | None
    data: bytes | None


def encode(text: str, base: Base | None) -> Encoded:
    """The smallest allowed form of ``text``: a delta against ``base`` when
    the chain may grow and the delta is small, else a full compressed copy."""
    raw = text.encode("utf-8")
    if base is not None and base.depth + 1 < FULL_EVERY:
        delta = _compressor(_dictionary(base.text)).compress(raw)
        kept = Encoded(DELTA, delta, base.sha256, base.depth + 1)
        if len(delta) * TINY <= len(raw):
            return kept  # a tick: no full copy is worth compressing to compare
        full = _compressor(None).compress(raw)
        return kept if len(delta) <= len(full) * DELTA_SHARE else Encoded(ZSTD, full, None, 0)
    return Encoded(ZSTD, _compressor(None).compress(raw), None, 0)


def decode(chain: Sequence[Stored]) -> str:
    """The text of ``chain[0]``; ``chain`` runs from the wanted row through
    each row's base to a full copy. Every frame carries a checksum of what it
    decompresses to, so a damaged row (or a delta read against another base)
    is an error, never a wrong text."""
    if not chain:
        raise StoreError("no content to decode")
    text = _whole(chain[-1])
    for row in reversed(chain[:-1]):
        if row.codec != DELTA or row.data is None:
            raise StoreError(f"content {row.sha256[:12]}: expected a delta, found {row.codec}")
        text = _decompress(row, row.data, _dictionary(text))
    return text


def _whole(row: Stored) -> str:
    """A chain's first row: plain text or a full copy."""
    if row.codec == TEXT and row.text is not None:
        return row.text
    if row.codec == ZSTD and row.data is not None:
        return _decompress(row, row.data, None)
    raise StoreError(f"content {row.sha256[:12]}: its chain does not start with a full copy")


def _decompress(row: Stored, data: bytes, dictionary: zstd.ZstdCompressionDict | None) -> str:
    try:
        decompressor = zstd.ZstdDecompressor(dict_data=dictionary)
        return decompressor.decompress(data).decode("utf-8")
    except (zstd.ZstdError, UnicodeDecodeError) as exc:
        raise StoreError(f"content {row.sha256[:12]} is damaged: {exc}") from exc


def _compressor(dictionary: zstd.ZstdCompressionDict | None) -> zstd.ZstdCompressor:
    """Frames carry a checksum of their content (4 bytes): a damaged frame,
    or a delta decompressed with another base, fails instead of giving
    another text."""
    return zstd.ZstdCompressor(level=LEVEL, dict_data=dictionary, write_checksum=True)


def _dictionary(text: str) -> zstd.ZstdCompressionDict:
    return zstd.ZstdCompressionDict(text.encode("utf-8"), dict_type=zstd.DICT_TYPE_RAWCONTENT)
