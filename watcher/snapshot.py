"""The seed file format: render and read, tolerant of real-world variants.

Canonical form, one capture per file::

    <!--1637030584000-->
    [title](url)
    ------

    <main>…article HTML on one line…</main>

The reader also accepts what real archives hold: Jekyll front matter before
the header (its fields are kept), no epoch line or a broken ``<!--NaN-->``
(the time then comes from the front matter ``date`` or a ``日期：`` line, else
it is unknown, never invented), CRLF line endings, a UTF-8 BOM, titles that
span lines, and multi-line bodies.

Title escaping rule (so our files stay readable by the plain reader regex
``\\[([\\s\\S]*?)\\]\\(``, which stops at the first ``](``): the writer puts a
backslash before every ``(`` that follows a ``]``, and doubles a backslash
that is followed by ``(`` or another backslash. The written title then never
contains ``](``; titles without ``](`` or backslashes are written unchanged,
so canonical files from other archivers round-trip byte for byte. Titles are
single-line values: line breaks inside them collapse to one space.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from watcher.errors import SnapshotFormatError
from watcher.models import Snapshot, TimeSource

RULE = "------"
_EPOCH_RE = re.compile(r"<!--\s*(.*?)\s*-->")
_LINK_START = "["
# The link ends at "](" followed by something that looks like a URL; the
# URL runs to the last ")" of the header block, so it may contain ")" or spaces.
_LINK_RE = re.compile(r"\[([\s\S]*?)\]\(((?:[a-zA-Z][a-zA-Z0-9+.-]*:|/)[^\n]*)\)[ \t]*\Z")
_PLAIN_LINK_RE = re.compile(r"\[([\s\S]*?)\]\(([^\n]*)\)[ \t]*\Z")
_DATELINE_RE = re.compile(r"^日期[：:]\s*(.+)$")
_FRONT_FIELD_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s?(.*)$")
_MAX_HEADER_LINES = 12
_TITLE_BREAK_RE = re.compile(r"[ \t]*\n\s*")

#: The capture times a file may state, in ms: from the Unix epoch to the last
#: millisecond of 9999 (the last a ``datetime``, and so an archive file name,
#: can show). A file stating a time outside is refused, with the reason.
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999
#: The largest snapshot file read, in bytes: the default of WATCHER_MAX_BODY
#: (the fetch cap), so whatever the daemon can capture can be read back; larger
#: files are refused unread (a test keeps the two equal).
MAX_FILE_BYTES = 10 * 1024 * 1024


def render(snapshot: Snapshot) -> str:
    """Produce the canonical seed-format text (what we write to disk)."""
    return render_header(snapshot.title, snapshot.url, snapshot.captured_at) + snapshot.body + "\n"


def render_header(title: str, url: str, captured_at: int | None) -> str:
    """Everything before the body; an unknown time writes no epoch line."""
    epoch = f"<!--{captured_at}-->\n" if captured_at is not None else ""
    return f"{epoch}[{escape_title(title)}]({url})\n{RULE}\n\n"


def content_text(snapshot: Snapshot) -> str:
    """The file text minus the capture time: equal content means equal version."""
    return render_header(snapshot.title, snapshot.url, None) + snapshot.body + "\n"


def escape_title(title: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(title):
        nxt = title[i + 1] if i + 1 < len(title) else ""
        if ch == "\\" and nxt in ("(", "\\"):
            out.append("\\\\")
        elif ch == "(" and i > 0 and title[i - 1] == "]":
            out.append("\\(")
        else:
            out.append(ch)
    return "".join(out)


def unescape_title(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ("(", "\\"):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def normalise_title(title: str) -> str:
    """Fold line breaks (and the indentation around them) into one space.

    Other whitespace is kept as written, so canonical files round-trip byte
    for byte; the article parser normalises it for comparison.
    """
    return _TITLE_BREAK_RE.sub(" ", title)


def read(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> Snapshot:
    """Read a snapshot file; raises SnapshotFormatError naming the file."""
    data = read_bytes(path, max_bytes=max_bytes)
    return parse(decode(data, str(path)), source=str(path))


def read_bytes(
    path: str | Path,
    *,
    limit: int | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    within: str | None = None,
) -> bytes:
    """A snapshot file's bytes (its first ``limit`` only, if given), refusing
    with SnapshotFormatError anything that is not a regular file of at most
    ``max_bytes``: a FIFO would block, ``/dev/zero`` never ends.

    ``within`` (the folder ``path`` was found in by a walk that does not
    follow links to folders, such as :func:`os.walk`) also refuses a path with
    a ``..`` part, or a symbolic link that leads out of that folder: an
    imported tree may not pull in ``/etc/shadow``. Refusals never quote the file.
    """
    label = str(path)
    try:
        # stat before opening: opening a device or a FIFO is not harmless
        info = os.stat(path) if within is None else os.lstat(path)
        if within is not None:
            _check_parts(label, within)
            if stat.S_ISLNK(info.st_mode):
                path = _link_inside(label, within)
                info = os.stat(path)
        _check_regular(label, info, max_bytes)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        if within is not None:
            flags |= getattr(os, "O_NOFOLLOW", 0)  # swapped for a link since: refused
        with open(os.open(path, flags), "rb") as handle:
            info = os.fstat(handle.fileno())
            _check_regular(label, info, max_bytes)  # the file opened, not just the name
            want = max_bytes + 1 if limit is None else min(limit, max_bytes + 1)
            data = handle.read(min(want, info.st_size + 1))  # no 10 MB buffer per file
            if info.st_size < len(data) < want:  # it grows as we read: the rest, bounded
                data += handle.read(want - len(data))
    except OSError as exc:
        raise SnapshotFormatError(label, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SnapshotFormatError(label, f"file grew past the {_size(max_bytes)} limit: not read")
    return data


def _check_parts(path: str, root: str) -> None:
    parts, top = Path(path).parts, Path(root).parts
    if parts[: len(top)] != top or ".." in parts[len(top) :]:
        raise SnapshotFormatError(path, "a path with a '..' part: not read")


def _link_inside(path: str, root: str) -> str:
    """Where the link ``path`` (found under the folder ``root``) leads, if that
    is in ``root``. Only the last part can be a link: walks do not follow
    links to folders."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        raise SnapshotFormatError(path, "a symbolic link out of the imported folder: not read")
    return real


def _check_regular(label: str, info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "special file")
        raise SnapshotFormatError(label, f"not a regular file but a {kind}: not read")
    if info.st_size > max_bytes:
        raise SnapshotFormatError(label, too_large(info.st_size, max_bytes))


def too_large(size: int, max_bytes: int) -> str:
    """The reason a file of ``size`` bytes is refused."""
    return f"file of {_size(size)} is over the {_size(max_bytes)} limit: not read"


_KINDS = (
    (stat.S_ISDIR, "folder"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def _size(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n} bytes"


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SnapshotFormatError(source, f"not UTF-8 text (byte {exc.start})") from exc


def parse(text: str, source: str = "<string>") -> Snapshot:
    """Parse snapshot text in the seed format or one of its real-world variants.

    A stated time outside MIN_TIME_MS..MAX_TIME_MS is a SnapshotFormatError."""
    return _parse(text, source, bounded=True)


def _parse(text: str, source: str, *, bounded: bool) -> Snapshot:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    front, pos = _read_front_matter(lines, source)
    epoch, pos = _read_epoch(lines, pos)
    header_end = _find_rule(lines, pos)
    if header_end is None:
        if front and (fm_url := front.get("from") or front.get("url")):
            return _front_matter_only(front, lines, pos, source, fm_url, bounded=bounded)
        raise SnapshotFormatError(source, _missing_header_reason(lines, pos), line=pos + 1)
    title, url = _read_link(lines[pos:header_end], source, pos + 1)
    body_start = header_end + 1
    dateline: str | None = None
    if body_start < len(lines) and (m := _DATELINE_RE.match(lines[body_start].strip())):
        dateline = m.group(1).strip()
        body_start += 1
    if body_start < len(lines) and lines[body_start].strip() == "":
        body_start += 1
    body = "\n".join(lines[body_start:]).rstrip("\n")
    captured_at, source_kind = _resolve_time(epoch, front, dateline)
    if bounded:
        _check_time(captured_at, source_kind, source)
    return Snapshot(
        url=url,
        title=title,
        body=body,
        captured_at=captured_at,
        time_source=source_kind,
        front_matter=front,
        dateline=dateline,
    )


def _read_front_matter(lines: list[str], source: str) -> tuple[dict[str, str], int]:
    if not lines or lines[0].strip() != "---":
        return {}, 0
    fields: dict[str, str] = {}
    for i in range(1, len(lines)):
        line = lines[i]
        if line.strip() == "---":
            return fields, i + 1
        if m := _FRONT_FIELD_RE.match(line):
            fields[m.group(1)] = _unquote(m.group(2).strip())
    raise SnapshotFormatError(source, "front matter opened with '---' is never closed", line=1)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _read_epoch(lines: list[str], pos: int) -> tuple[int | None, int]:
    """Return (epoch ms, or None for a missing or broken one like <!--NaN-->; next line)."""
    while pos < len(lines) and lines[pos].strip() == "":
        pos += 1
    if pos < len(lines) and (m := _EPOCH_RE.fullmatch(lines[pos].strip())):
        raw = m.group(1)
        return _epoch_ms(raw), pos + 1
    return None, pos


def _epoch_ms(raw: str) -> int | None:
    """The time an epoch comment states; None for a broken one (``NaN``). Too
    many digits to be a time are not converted: any value past MAX_TIME_MS."""
    if not raw.isdecimal():  # what int() accepts; isdigit() also takes "²"
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(MAX_TIME_MS)) else MAX_TIME_MS + 1


def _find_rule(lines: list[str], pos: int) -> int | None:
    if pos >= len(lines) or not lines[pos].lstrip().startswith(_LINK_START):
        return None
    for i in range(pos + 1, min(len(lines), pos + _MAX_HEADER_LINES)):
        if lines[i].strip() == RULE:
            return i
    return None


def _missing_header_reason(lines: list[str], pos: int) -> str:
    if pos >= len(lines) or not "".join(lines[pos:]).strip():
        return "file is empty: no title link"
    first = lines[pos].strip()
    if first.startswith("<!--"):
        return "line is not an epoch comment such as <!--1637030584000-->"
    if not first.startswith(_LINK_START):
        return f"expected a title link '[title](url)', found {first[:20]!r}"  # a short quote
    return f"no '{RULE}' line after the title link"


def _read_link(header: list[str], source: str, line_no: int) -> tuple[str, str]:
    block = "\n".join(header).strip()
    m = _LINK_RE.fullmatch(block) or _PLAIN_LINK_RE.fullmatch(block)
    if m is None:
        raise SnapshotFormatError(source, "title link is not of the form [title](url)", line_no)
    url = m.group(2).strip()
    if not url:
        raise SnapshotFormatError(source, "title link has an empty URL", line_no)
    return normalise_title(unescape_title(m.group(1))), url


def _front_matter_only(
    front: dict[str, str], lines: list[str], pos: int, source: str, url: str, *, bounded: bool
) -> Snapshot:
    """Posts that carry only front matter then HTML (Nei.st, iYouPort, ...)."""
    title = normalise_title(front.get("title", "")).strip()
    if not title:
        raise SnapshotFormatError(source, "front matter has no title and no title link", pos + 1)
    body = "\n".join(lines[pos:]).strip("\n")
    captured_at, kind = _resolve_time(None, front, None)
    if bounded:
        _check_time(captured_at, kind, source)
    return Snapshot(
        url=url,
        title=title,
        body=body,
        captured_at=captured_at,
        time_source=kind,
        front_matter=front,
    )


def _resolve_time(
    epoch: int | None, front: dict[str, str], dateline: str | None
) -> tuple[int | None, TimeSource]:
    if epoch is not None:
        return epoch, TimeSource.EPOCH
    if (value := front.get("date")) and (ms := _parse_iso(value)) is not None:
        return ms, TimeSource.FRONT_MATTER
    if dateline and (ms := _parse_rfc2822(dateline)) is not None:
        return ms, TimeSource.DATELINE
    return None, TimeSource.UNKNOWN


_TIME_PLACE = {
    TimeSource.EPOCH: "the epoch comment",
    TimeSource.FRONT_MATTER: "the front matter date",
    TimeSource.DATELINE: "the 日期 line",
}


def _check_time(ms: int | None, kind: TimeSource, source: str) -> None:
    """Refuse a stated time no capture can have (a damaged or hostile file),
    before it reaches a file name or the database."""
    if ms is None or MIN_TIME_MS <= ms <= MAX_TIME_MS:
        return
    when = "before 1970" if ms < MIN_TIME_MS else "after the year 9999"
    where = _TIME_PLACE.get(kind, "the stated time")
    raise SnapshotFormatError(source, f"{where} is {when}: out of range")


def _parse_iso(value: str) -> int | None:
    try:
        dt = datetime.fromisoformat(value.strip().replace(" +", "+"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


def _parse_rfc2822(value: str) -> int | None:
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):  # a year of 20 digits: Overflow
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


# -- stored content: the file text without / with its capture time ---------------
def file_text(data: bytes, source: str) -> str:
    """A file's text as stored: decoded, LF line endings, no BOM
    (SnapshotFormatError if it is not UTF-8)."""
    return decode(data, source).replace("\r\n", "\n").replace("\r", "\n")


def split_capture_time(text: str) -> str:
    """The file text minus its epoch line: the content a version is keyed by.

    The epoch comment stays when the rest of the file states the capture
    time itself (front matter ``date``) and the comment repeats it or is a
    broken ``<!--NaN-->``, so such files export byte for byte; otherwise it
    goes (and export writes the real time in its place).
    """
    lines = text.split("\n")
    pos = _epoch_position(lines)
    if pos is None or not (m := _EPOCH_RE.fullmatch(lines[pos].strip())):
        return text
    without = "\n".join(lines[:pos] + lines[pos + 1 :])
    raw, stated = m.group(1), _stated_time(without)
    if stated is not None and _epoch_ms(raw) in (None, stated):
        return text  # the comment adds no time (NaN) or repeats the stated one
    return without


def join_capture_time(content: str, captured_at: int) -> str:
    """Inverse of :func:`split_capture_time`: the seed file of a stored version.

    For daemon captures this is :func:`render`; for imported files it is the
    imported text. The epoch line goes where the reader looks for it, unless
    the content already states this time.
    """
    if _stated_time(content) == captured_at:
        return content
    lines = content.split("\n")
    pos = _epoch_position(lines)
    at = len(lines) if pos is None else pos
    return "\n".join([*lines[:at], f"<!--{captured_at}-->", *lines[at:]])


def stored(content: str, captured_at: int, source: str = "<stored>") -> Snapshot:
    """A stored version read back as a snapshot, at its recorded time (which
    its content may not state: the epoch line is stored apart)."""
    return replace(_parse(content, source, bounded=False), captured_at=captured_at)


def _epoch_position(lines: list[str]) -> int | None:
    """First non-blank line after any front matter (where an epoch line sits)."""
    pos = 0
    if lines and lines[0].strip() == "---":
        closing = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if closing is None:
            return None
        pos = closing + 1
    while pos < len(lines) and not lines[pos].strip():
        pos += 1
    return pos if pos < len(lines) else None


def _stated_time(text: str) -> int | None:
    try:  # unbounded: what the text states, as versions stored before the bounds have it
        return _parse(text, "<string>", bounded=False).captured_at
    except SnapshotFormatError:
        return None
