"""The hash chain over an article's versions: what makes the record checkable.

Each version stores the SHA-256 of its snapshot file (the seed-format text
``watcher export`` writes for it), where its fetch's WARC response record lies
with the SHA-256 of that record's bytes, and ``chain_hash``: the SHA-256 of
all of that plus its URL, seq, time and ``prev_hash``, the previous version's
``chain_hash``. Editing a byte of a snapshot, deleting or altering a WARC
record, or reordering, removing or inserting a row breaks a link that
``watcher verify`` (watcher/verify.py) reports.

The entry is hashed as canonical JSON (sorted keys, no spaces) so that anyone
can recompute it with any language's standard library.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from watcher import snapshot

#: The ``prev_hash`` of an article's first chained version.
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Evidence:
    """A version's evidence columns (all None on versions stored before 0006)."""

    snapshot_sha256: str | None = None
    warc_file: str | None = None
    warc_offset: int | None = None
    warc_length: int | None = None
    warc_record_id: str | None = None
    warc_sha256: str | None = None
    prev_hash: str | None = None
    chain_hash: str | None = None


def snapshot_sha256(content_text: str, captured_at: int) -> str:
    """The SHA-256 of the version's snapshot file, as export writes it."""
    text = snapshot.join_capture_time(content_text, captured_at)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_hash(
    *,
    url: str,
    seq: int,
    captured_at: int,
    snapshot_sha256: str,
    warc_sha256: str | None,
    prev_hash: str,
) -> str:
    """The hash of one chain entry (see the module docstring)."""
    entry = {
        "url": url,
        "seq": seq,
        "captured_at": captured_at,
        "snapshot_sha256": snapshot_sha256,
        "warc_sha256": warc_sha256,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
