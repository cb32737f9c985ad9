"""The WARC log: every fetch as the server sent it, in rotating gzip WARC 1.1 files.

Layout (in ``$WATCHER_HOME/warc``)::

    watcher-<UTC start>-<host>-<pid>-<n>.warc.gz   the records
    watcher-<UTC start>-<host>-<pid>-<n>.cdxj      one line per response/revisit

Each fetch writes, for every exchange (redirect hops first), a ``response``
record with the body as received (still gzip/br-encoded where the server
compressed it) and a ``request`` record (``WARC-Concurrent-To`` the response),
with ``WARC-IP-Address`` the peer's address. A page whose payload is the same
as the last one recorded for its URL (by this process) gets a ``revisit``
record (identical-payload-digest profile) instead of the body again.

warcio builds the records; watcher adds the index and the rotation. Every
process writes its own files (several daemons may share a data folder), and a
file is never appended to once closed, so a kill -9 can only cut the last
record of the file being written; versions point at records that were synced
before their transaction committed. The CDXJ index is sorted by SURT when its
file is closed, as pywb expects (``sort`` fixes one a crash left unsorted).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import surt
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from watcher import archive
from watcher.models import Exchange

log = logging.getLogger(__name__)
WARC_VERSION = "1.1"
SUFFIX = ".warc.gz"
INDEX_SUFFIX = ".cdxj"
GZIP_LEVEL = 3  # see _member
#: An extension field naming the watched URL a record's fetch was for.
WATCH_HEADER = "X-Watcher-Watch"
#: Remembered payloads (URL -> last record), for revisit records: enough for
#: the watches one daemon checks, bounded so 50,000 watches stay a few MB.
MAX_PRIORS = 65_536


@dataclass(frozen=True, slots=True)
class WarcRef:
    """Where a fetch's final response (or revisit) record lies, and the SHA-256
    of its bytes there (one gzip member): what a version's hash chain names."""

    file: str
    offset: int
    length: int
    record_id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Prior:
    """The last response record of a URL: what a revisit record refers to."""

    digest: str
    record_id: str
    date: str


#: Asked for a URL's prior record when this process has not written one
#: (after a restart): the record its latest version names, say.
Lookup = Callable[[], "Prior | None"]


def payload_digest(body: bytes) -> str:
    """The WARC-Payload-Digest of ``body``, as warcio writes it (SHA-1, base32)."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode(
        "ascii"
    )  # the WARC convention


def warc_date(ms: int) -> str:
    return str(
        datetime_to_iso_date(
            datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None), use_micros=True
        )
    )


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def _response_headers(exchange: Exchange) -> StatusAndHeaders:
    return StatusAndHeaders(
        f"{exchange.status} {exchange.reason}".rstrip(),
        [(_text(k), _text(v)) for k, v in exchange.response_headers],
        protocol=exchange.http_version,
    )


def _request_headers(exchange: Exchange) -> StatusAndHeaders:
    parts = urlsplit(exchange.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # warcio writes "<protocol> <statusline>": for a request line that is
    # "GET /path HTTP/1.1" (as warcio itself parses requests)
    return StatusAndHeaders(
        f"{target} {exchange.http_version}",
        [(_text(k), _text(v)) for k, v in exchange.request_headers],
        protocol=exchange.method,
    )


def _mime(exchange: Exchange) -> str:
    for key, value in exchange.response_headers:
        if key.lower() == b"content-type":
            return _text(value).split(";", 1)[0].strip() or "unk"
    return "unk"


class WarcLog:
    """One process's WARC files: :meth:`write` appends a fetch's records."""

    def __init__(self, folder: Path, *, max_bytes: int, software: str = "watcher") -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.software = software
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._index: BinaryIO | None = None
        self._name = ""
        self._serial = 0
        self._priors: dict[str, Prior] = {}

    def remembers(self, exchanges: Sequence[Exchange]) -> bool:
        """Can :meth:`write` do without its ``lookup`` for this fetch? (False:
        the lookup reads the database and a file, work for a worker thread:
        :meth:`recall` first.)"""
        return not exchanges or exchanges[-1].url in self._priors

    def recall(self, exchanges: Sequence[Exchange], lookup: Lookup) -> None:
        """Remember the record ``lookup`` finds (the one the watch's latest
        version names) for this fetch's final URL, if none is remembered yet."""
        if not exchanges or exchanges[-1].url in self._priors:
            return
        found = lookup()  # outside the lock: it may read the database
        if found is not None:
            with self._lock:
                self._priors.setdefault(exchanges[-1].url, found)

    def write(
        self,
        exchanges: Sequence[Exchange],
        *,
        watch: str,
        durable: bool = False,
        lookup: Lookup | None = None,
    ) -> WarcRef | None:
        """Append the records of one fetch of ``watch`` (the watched URL, named
        on every record so an export of one article keeps its redirect hops);
        return where its final response lies.

        ``durable``: sync the file before returning (a version is about to
        name the record). Unchanged checks skip the sync: losing their record
        to a power cut loses no version.
        """
        if not exchanges:
            return None
        if lookup is not None:
            self.recall(exchanges, lookup)
        with self._lock:
            try:
                out = self._open()
                ref: WarcRef | None = None
                for exchange in exchanges:
                    ref = self._append(out, exchange, watch)
                out.flush()
                if durable:
                    os.fdatasync(out.fileno())
                if out.tell() >= self.max_bytes:
                    self._close()
            except OSError as exc:
                # a file cut mid-record is left as it is; the next write starts a new one
                failed = self.folder / (self._name or "warc")
                self._abandon()
                raise archive.write_error(failed, exc) from exc
            return ref

    def sync(self) -> None:
        """Make the records written so far durable (a version will name one)."""
        with self._lock:
            if self._file is not None:
                try:
                    os.fdatasync(self._file.fileno())
                except OSError as exc:
                    failed = self.folder / self._name
                    self._abandon()
                    raise archive.write_error(failed, exc) from exc

    def close(self) -> None:
        with self._lock:
            self._close()

    def _abandon(self) -> None:
        for f in (self._file, self._index):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self._file = self._index = None

    # -- writing ----------------------------------------------------------------
    def _append(self, out: BinaryIO, exchange: Exchange, watch: str) -> WarcRef:
        date = warc_date(exchange.started_ms)
        digest = payload_digest(exchange.body)
        prior = self._priors.get(exchange.url)
        writer = _builder()
        common: dict[str, str] = {"WARC-Date": date, WATCH_HEADER: watch}
        if exchange.peer_ip:
            common["WARC-IP-Address"] = exchange.peer_ip
        if prior is not None and prior.digest == digest and exchange.status == 200:
            record = writer.create_revisit_record(
                exchange.url,
                digest,
                exchange.url,
                prior.date,
                http_headers=_response_headers(exchange),
                warc_headers_dict={**common, "WARC-Refers-To": prior.record_id},
            )
        else:
            record = writer.create_warc_record(
                exchange.url,
                "response",
                payload=io.BytesIO(exchange.body),
                length=len(exchange.body),
                http_headers=_response_headers(exchange),
                warc_headers_dict=common,
            )
        member = _member(record)
        record_id = str(record.rec_headers.get_header("WARC-Record-ID"))
        request = writer.create_warc_record(
            exchange.url,
            "request",
            http_headers=_request_headers(exchange),
            warc_headers_dict={**common, "WARC-Concurrent-To": record_id},
        )
        offset = out.tell()
        out.write(member + _member(request))
        if record.rec_type == "response" and exchange.status == 200:
            self._remember(exchange.url, Prior(digest, record_id, date))
        self._index_line(
            exchange,
            kind=record.rec_type,
            digest=digest,
            offset=offset,
            length=len(member),
            date=date,
        )
        return WarcRef(
            self._name, offset, len(member), record_id, hashlib.sha256(member).hexdigest()
        )

    def _remember(self, url: str, prior: Prior) -> None:
        self._priors.pop(url, None)
        self._priors[url] = prior
        if len(self._priors) > MAX_PRIORS:
            del self._priors[next(iter(self._priors))]

    def _index_line(
        self, exchange: Exchange, *, kind: str, digest: str, offset: int, length: int, date: str
    ) -> None:
        assert self._index is not None
        fields = {
            "url": exchange.url,
            "mime": "warc/revisit" if kind == "revisit" else _mime(exchange),
            "status": str(exchange.status),
            "digest": digest.removeprefix("sha1:"),
            "length": str(length),
            "offset": str(offset),
            "filename": self._name,
        }
        line = f"{cdx_key(exchange.url)} {_timestamp14(date)} {json.dumps(fields)}\n"
        self._index.write(line.encode("utf-8"))
        self._index.flush()

    def _open(self) -> BinaryIO:
        if self._file is not None:
            return self._file
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:17]
        host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())
        self._serial += 1
        stem = f"watcher-{stamp}-{host}-{os.getpid()}-{self._serial:05d}"
        self._name = stem + SUFFIX
        # "x": a name is never reused, so a file is only ever written by one process
        self._file = open(self.folder / self._name, "xb")  # noqa: SIM115 - kept open until rotation
        self._index = open(self.folder / (stem + INDEX_SUFFIX), "xb")  # noqa: SIM115
        writer = _builder()
        info = {"software": self.software, "format": "WARC File Format 1.1",
                "hostname": socket.gethostname()}  # fmt: skip
        self._file.write(_member(writer.create_warcinfo_record(self._name, info)))
        return self._file

    def _close(self) -> None:
        if self._file is None:
            return
        self._file.flush()
        os.fdatasync(self._file.fileno())
        self._file.close()
        assert self._index is not None
        self._index.close()
        sort_index(self.folder / (self._name.removesuffix(SUFFIX) + INDEX_SUFFIX))
        self._file = self._index = None


def _builder() -> WARCWriter:
    """A warcio record builder (its stream is unused: :func:`_member` writes)."""
    return WARCWriter(io.BytesIO(), gzip=False, warc_version=WARC_VERSION)


def _member(record: Any) -> bytes:
    """One record as one gzip member, the unit a WARC reader seeks to.

    warcio compresses at level 9; level 3 costs a third of its CPU (about
    0.9 ms against 2.6 ms for a 55 KB page) for 5% more bytes, and this runs
    on every fetch whose payload is new (a ticking page: every check).
    """
    raw = io.BytesIO()
    WARCWriter(raw, gzip=False, warc_version=WARC_VERSION).write_record(record)
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return packer.compress(raw.getvalue()) + packer.flush()


def cdx_key(url: str) -> str:
    """The SURT form of ``url`` (``com,example)/path``), the CDXJ sort key."""
    try:
        return str(surt.surt(url))
    except Exception:  # surt raises whatever its URL parser raises
        return url


def _timestamp14(date: str) -> str:
    return "".join(ch for ch in date if ch.isdigit())[:14]


def sort_index(path: Path) -> None:
    """Sort a CDXJ file in place (atomically): pywb looks records up by bisection."""
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(sorted(lines)))
    os.replace(tmp, path)


# -- reading --------------------------------------------------------------------
def warc_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []


def prior_at(folder: Path, ref_file: str, offset: int, length: int) -> Prior | None:
    """The Prior a stored response record stands for (None: missing or unreadable)."""
    member = read_member(folder, ref_file, offset, length)
    if member is None:
        return None
    try:
        for record in ArchiveIterator(io.BytesIO(member)):
            if record.rec_type != "response":
                return None
            headers = record.rec_headers
            digest = headers.get_header("WARC-Payload-Digest")
            if not digest:
                return None
            return Prior(
                str(digest),
                str(headers.get_header("WARC-Record-ID")),
                str(headers.get_header("WARC-Date")),
            )
    except (ArchiveLoadFailed, OSError, ValueError, EOFError):  # unreadable: no prior
        return None
    return None


def read_member(folder: Path, ref_file: str, offset: int, length: int) -> bytes | None:
    """The bytes of one record (a gzip member) as stored, or None when its file is missing."""
    try:
        with open(folder / ref_file, "rb") as f:
            f.seek(offset)
            return f.read(length)
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    records: int


def export(
    folder: Path,
    target: Path,
    *,
    url: str | None = None,
    since_ms: int | None = None,
) -> Exported:
    """Copy the records of ``folder``'s WARC files (byte for byte, gzip members
    as stored) into one WARC file in ``target``, with its sorted CDXJ index.

    ``url`` keeps one watched URL's fetches (with their redirect hops),
    ``since_ms`` the fetches from that time on; a kept revisit brings the
    record it refers to, so the export replays on its own.
    """
    since = warc_date(since_ms) if since_ms is not None else None
    kept: list[tuple[Path, int, int]] = []
    by_id: dict[str, tuple[Path, int, int]] = {}
    wanted_refs: set[str] = set()
    kept_ids: set[str] = set()
    index_lines: list[str] = []
    files = warc_files(folder)
    for path in files:
        for offset, length, headers in _scan(path):
            kind = headers.get("WARC-Type")
            record_id = headers.get("WARC-Record-ID", "")
            if kind == "response":  # what a revisit may refer to
                by_id[record_id] = (path, offset, length)
            if kind == "warcinfo":
                continue
            if url is not None and not _same_fetch(headers, url):
                continue
            if since is not None and headers.get("WARC-Date", "") < since:
                continue
            kept.append((path, offset, length))
            kept_ids.add(record_id)
            if kind == "revisit" and headers.get("WARC-Refers-To"):
                wanted_refs.add(headers["WARC-Refers-To"])
    for ref in sorted(wanted_refs - kept_ids):
        if ref in by_id:
            kept.insert(0, by_id[ref])
    target.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    name = f"watcher-export-{stamp}{SUFFIX}"
    out_path = target / name
    written = 0
    with open(out_path, "xb") as out:  # never over an earlier export
        for path, offset, length in kept:
            member = read_member(path.parent, path.name, offset, length)
            if member is None:
                continue
            position = out.tell()
            out.write(member)
            written += 1
            index_lines.extend(_index_of(member, position, name))
    index = out_path.with_name(name.removesuffix(SUFFIX) + INDEX_SUFFIX)
    index.write_text("".join(sorted(index_lines)), encoding="utf-8")
    return Exported(path=out_path, records=written)


def _same_fetch(headers: dict[str, str], url: str) -> bool:
    """A record of a fetch of ``url``: its target, or a hop that led there."""
    return headers.get("WARC-Target-URI") == url or headers.get(WATCH_HEADER) == url


def _scan(path: Path) -> Iterator[tuple[int, int, dict[str, str]]]:
    """(offset, length, WARC headers) of each record, without reading bodies twice."""
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        pending: tuple[int, dict[str, str]] | None = None
        for record in it:
            offset = it.get_record_offset()
            if pending is not None:
                yield pending[0], offset - pending[0], pending[1]
            pending = (offset, dict(record.rec_headers.headers))
        if pending is not None:
            end = f.seek(0, os.SEEK_END)
            yield pending[0], end - pending[0], pending[1]


def _index_of(member: bytes, offset: int, filename: str) -> Iterable[str]:
    for record in ArchiveIterator(io.BytesIO(member)):
        kind = record.rec_type
        if kind not in ("response", "revisit"):
            continue
        uri = record.rec_headers.get_header("WARC-Target-URI") or ""
        http = record.http_headers
        fields = {
            "url": uri,
            "mime": "warc/revisit"
            if kind == "revisit"
            else (http.get_header("Content-Type") or "unk").split(";", 1)[0].strip(),
            "status": http.get_statuscode() if http else "-",
            "digest": (record.rec_headers.get_header("WARC-Payload-Digest") or "").removeprefix(
                "sha1:"
            ),
            "length": str(len(member)),
            "offset": str(offset),
            "filename": filename,
        }
        date = record.rec_headers.get_header("WARC-Date") or ""
        yield f"{cdx_key(uri)} {_timestamp14(date)} {json.dumps(fields)}\n"
