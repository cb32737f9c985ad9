"""``watcher verify``: walk each article's hash chain, its snapshot files and
its WARC records, and report anything missing or altered.

For every version from 0006 on it recomputes, from what is stored now:
the snapshot's SHA-256 (from the database's content, and from the archive
file where the version has one), the chain entry's hash and its link to the
previous entry, and the SHA-256 of its WARC record's bytes, whose own WARC
digests warcio then checks. A byte edited in an archive file, a WARC file
deleted or a record altered, two rows reordered, a version removed or
inserted: each breaks one of these, and is named with the version it hit.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from watcher import evidence, warc
from watcher.settings import Settings
from watcher.store import Store, VersionRecord, WatchRecord


@dataclass(frozen=True, slots=True)
class Problem:
    url: str
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f" v{self.seq}" if self.seq is not None else ""
        return f"{self.url}{where}: {self.what}"


@dataclass(slots=True)
class Report:
    watches: int = 0
    versions: int = 0
    chained: int = 0  # versions with a chain entry (stored from 0006 on)
    warc_records: int = 0  # WARC records a version names, checked
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    store: Store,
    settings: Settings,
    watches: Iterable[WatchRecord],
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check every version of ``watches``; ``progress`` is told each watch done."""
    report = Report()
    for watch in watches:
        report.watches += 1
        _verify_watch(store, settings, watch, report)
        if progress is not None:
            progress(1)
    return report


def _verify_watch(store: Store, settings: Settings, watch: WatchRecord, report: Report) -> None:
    expected_prev: str | None = None  # None: no chained version yet
    for version in store.versions(watch.id):
        report.versions += 1
        proof = version.evidence
        if proof.chain_hash is None:
            if expected_prev is not None:
                report.problems.append(
                    Problem(
                        watch.url,
                        version.seq,
                        "no chain entry after chained versions "
                        "(a row inserted, or its evidence removed)",
                    )
                )
            continue
        report.chained += 1
        add = _adder(report, watch.url, version.seq)
        link = expected_prev or evidence.GENESIS
        if proof.prev_hash != link:
            add(
                "chain broken: its previous-entry hash is not the previous version's "
                "(a version removed, inserted or reordered)"
            )
        text = store.version_text(version.id)
        snapshot_sha = evidence.snapshot_sha256(text, version.captured_at)
        if snapshot_sha != proof.snapshot_sha256:
            add("stored content differs from its recorded hash (altered in the database)")
        entry = evidence.chain_hash(
            url=watch.url,
            seq=version.seq,
            captured_at=version.captured_at,
            snapshot_sha256=proof.snapshot_sha256 or "",
            warc_sha256=proof.warc_sha256,
            prev_hash=proof.prev_hash or "",
        )
        if entry != proof.chain_hash:
            add("chain entry does not match its fields (its seq, time or hashes were changed)")
        _check_archive_file(settings.archive_dir, version, add)
        if proof.warc_file is not None:
            report.warc_records += 1
            _check_warc(settings.warc_dir, version, add)
        expected_prev = proof.chain_hash


def _adder(report: Report, url: str, seq: int) -> Callable[[str], None]:
    def add(what: str) -> None:
        report.problems.append(Problem(url, seq, what))

    return add


def _check_archive_file(root: Path, version: VersionRecord, add: Callable[[str], None]) -> None:
    if version.archive_path is None:
        return
    try:
        data = (root / version.archive_path).read_bytes()
    except FileNotFoundError:
        add(f"archive file missing: {version.archive_path}")
        return
    except OSError as exc:
        add(f"archive file unreadable: {version.archive_path} ({exc.strerror or exc})")
        return
    if hashlib.sha256(data).hexdigest() != version.evidence.snapshot_sha256:
        add(f"archive file altered: {version.archive_path}")


def _check_warc(folder: Path, version: VersionRecord, add: Callable[[str], None]) -> None:
    proof = version.evidence
    assert proof.warc_file is not None
    member = warc.read_member(
        folder, proof.warc_file, proof.warc_offset or 0, proof.warc_length or 0
    )
    if member is None:
        add(f"WARC file missing: {proof.warc_file}")
        return
    if hashlib.sha256(member).hexdigest() != proof.warc_sha256:
        add(f"WARC record altered or moved: {proof.warc_file} at offset {proof.warc_offset}")
        return
    ids: list[str] = []
    try:
        # "raise": a block or payload digest that fails stops the read
        for record in ArchiveIterator(io.BytesIO(member), check_digests="raise"):
            record.raw_stream.read()
            ids.append(str(record.rec_headers.get_header("WARC-Record-ID")))
    except (ArchiveLoadFailed, OSError, ValueError, EOFError) as exc:
        add(f"WARC record fails its digests: {proof.warc_file} at {proof.warc_offset} ({exc})")
        return
    if ids != [proof.warc_record_id]:
        add(f"WARC record at {proof.warc_offset} of {proof.warc_file} is not the one recorded")
