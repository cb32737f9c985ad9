"""Plain values passed between the pipeline stages.

fetch -> FetchResult; extract -> ExtractedPage; snapshot -> Snapshot;
article -> Article; diff -> Change. Nothing here does I/O or imports a
third-party library, so every stage can be called on saved data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from enum import StrEnum
from typing import Any

from watcher.errors import ChangeRecordError


class TimeSource(StrEnum):
    """Where a snapshot's capture time came from; ``UNKNOWN`` is never guessed."""

    EPOCH = "epoch"
    FRONT_MATTER = "front_matter"
    DATELINE = "dateline"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One capture of an article in the seed file format.

    ``captured_at`` is epoch milliseconds, or ``None`` when the file gives no
    time at all. ``front_matter`` keeps the fields of a Jekyll header that
    real archives put before the seed lines; ``dateline`` is the raw text of
    a China Digital Times ``日期：`` line.
    """

    url: str
    title: str
    body: str
    captured_at: int | None
    time_source: TimeSource = TimeSource.EPOCH
    front_matter: dict[str, str] = field(default_factory=dict, compare=False)
    dateline: str | None = field(default=None, compare=False)


class BlockKind(StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    QUOTE = "quote"
    IMAGE = "image"
    MEDIA = "media"
    LINK_LIST = "link_list"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True, slots=True)
class TimeMention:
    """A time element or relative-time phrase resolved against the capture time.

    ``start_ms``/``end_ms`` bound the instant the text refers to, as wide as
    its granularity ("14 分钟前" is ±1 minute, "2 天前" ±1 day). ``None`` when
    it could not be resolved (no capture time, unparseable text).
    """

    text: str
    datetime_attr: str | None
    relative: bool
    granularity: str | None
    start_ms: int | None
    end_ms: int | None

    def overlaps(self, other: TimeMention) -> bool:
        """True when both mentions may denote the same instant."""
        if None in (self.start_ms, self.end_ms, other.start_ms, other.end_ms):
            return False
        return self.start_ms <= other.end_ms and other.start_ms <= self.end_ms  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class Image:
    src: str
    origin_src: str
    alt: str = ""
    caption: str = ""
    credit: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of article content in reading order.

    ``text`` is the visible, normalised text. ``stable_text`` is the same text
    with time phrases masked (relative ones, and the date stamps of bylines and
    datelines, in a ``<time>`` element or not), so blocks that differ only by
    a ticking "14 分钟前" or a byline's new stamp compare equal there.
    """

    kind: BlockKind
    text: str
    stable_text: str
    links: tuple[Link, ...] = ()
    times: tuple[TimeMention, ...] = ()
    image: Image | None = None
    media_src: str | None = None
    level: int = 0


@dataclass(frozen=True, slots=True)
class Article:
    url: str
    title: str
    captured_at: int | None
    blocks: tuple[Block, ...]
    dropped_boilerplate: int = 0


@dataclass(frozen=True, slots=True)
class PageMetadata:
    """What a page says about itself outside the article body, and (the
    EXTRACTION_NOTES fields) how its body was extracted."""

    canonical_url: str | None = None
    og_title: str | None = None
    og_description: str | None = None
    published_time: str | None = None
    modified_time: str | None = None
    headline: str | None = None
    author: str | None = None
    language: str | None = None
    #: Fingerprint of the site rules the body was extracted with (siterules.py).
    site_rules: str | None = None
    #: The body selectors that matched nothing (the usual extraction was used).
    body_rule_unmatched: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


#: PageMetadata fields about watcher's extraction, not the page: never diffed
#: as metadata (a rules change is a ``rules`` re-baseline instead).
EXTRACTION_NOTES = frozenset({"site_rules", "body_rule_unmatched"})


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """extract() output: the snapshot body and what the page says about itself."""

    title: str
    url: str
    body_html: str
    metadata: PageMetadata


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response as they crossed the wire, for the
    WARC record (watcher/warc.py): the body is the bytes as received, still
    content-encoded (gzip, br) where the server compressed them."""

    url: str
    method: str
    request_headers: tuple[tuple[bytes, bytes], ...]
    http_version: str  # "HTTP/1.1"
    status: int
    reason: str
    response_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    peer_ip: str | None
    started_ms: int


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one HTTP fetch; a 304 or 404 is a value, not an exception."""

    url: str
    final_url: str
    status: int
    redirects: tuple[str, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    text: str | None = None
    body_sha256: str | None = None
    encoding: str | None = None
    duration_ms: float = 0.0
    not_modified: bool = False
    content_type: str | None = None  # the Content-Type header, as sent
    body_bytes: int | None = None  # size of the (decompressed) body
    #: The caller already had this body (``Fetcher.fetch(known=...)``): it was
    #: not decoded, ``text`` is None.
    known_body: bool = False
    #: Every request and response of the fetch, redirect hops first, when the
    #: fetcher records them (``Fetcher(record=True)``); empty otherwise.
    exchanges: tuple[Exchange, ...] = ()

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


class TimeBasis(StrEnum):
    """What a version's time is: our own capture time, or the time an imported
    file states (in feed-derived archives, often the feed's publication date)."""

    CAPTURED = "captured"
    STATED = "stated"


class Verdict(StrEnum):
    SIGNIFICANT = "significant"
    NOISE = "noise"
    NONE = "none"


class ChangeKind(StrEnum):
    """Every kind of difference a change item can be; stored by value."""

    HEADER_TIME = "header_time"
    RELATIVE_TIME = "relative_time"
    MARKUP_ONLY = "markup_only"
    BOILERPLATE = "boilerplate"
    TYPOGRAPHY = "typography"
    TITLE = "title"
    URL = "url"
    TIME = "time"
    METADATA = "metadata"
    PARAGRAPH_EDITED = "paragraph_edited"
    PARAGRAPH_ADDED = "paragraph_added"
    PARAGRAPH_REMOVED = "paragraph_removed"
    PARAGRAPH_MOVED = "paragraph_moved"
    HEADING_EDITED = "heading_edited"
    HEADING_ADDED = "heading_added"
    HEADING_REMOVED = "heading_removed"
    HEADING_MOVED = "heading_moved"
    LIST_ITEM_EDITED = "list_item_edited"
    LIST_ITEM_ADDED = "list_item_added"
    LIST_ITEM_REMOVED = "list_item_removed"
    LIST_ITEM_MOVED = "list_item_moved"
    QUOTE_EDITED = "quote_edited"
    QUOTE_ADDED = "quote_added"
    QUOTE_REMOVED = "quote_removed"
    QUOTE_MOVED = "quote_moved"
    IMAGE_ADDED = "image_added"
    IMAGE_REMOVED = "image_removed"
    IMAGE_CHANGED = "image_changed"
    IMAGE_MOVED = "image_moved"
    MEDIA_CHANGED = "media_changed"
    MEDIA_EDITED = "media_edited"
    MEDIA_MOVED = "media_moved"
    LINK_CHANGED = "link_changed"
    LINK_LIST_EDITED = "link_list_edited"
    LINK_LIST_MOVED = "link_list_moved"
    TIME_MOVED = "time_moved"
    GONE = "gone"
    REAPPEARED = "reappeared"
    REVERTED = "reverted"
    REDIRECTED = "redirected"
    #: The site's extraction rules changed: this version is a new baseline, not diffed.
    RULES = "rules"

    @classmethod
    def of_block(cls, block: BlockKind, action: str) -> ChangeKind:
        """``paragraph`` + ``edited`` -> PARAGRAPH_EDITED (ValueError if no such kind)."""
        return cls(f"{block.value}_{action}")

    @property
    def noise_only(self) -> bool:
        """Kinds that are never news, whatever their detail."""
        return self in NOISE_KINDS


NOISE_KINDS = frozenset(
    {
        ChangeKind.HEADER_TIME,
        ChangeKind.RELATIVE_TIME,
        ChangeKind.MARKUP_ONLY,
        ChangeKind.BOILERPLATE,
        ChangeKind.TYPOGRAPHY,
        ChangeKind.RULES,
    }
)


@dataclass(frozen=True, slots=True)
class ChangeItem:
    """One typed difference. ``before``/``after`` are display values (text,
    URL, JSON-able dicts); ``inline`` holds (op, text) pairs for edits, where
    op is "=", "-" or "+"."""

    kind: ChangeKind
    significant: bool
    location: str
    before: Any = None
    after: Any = None
    inline: tuple[tuple[str, str], ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """Everything that differs between two versions, in reading order."""

    url: str
    title_before: str
    title_after: str
    captured_before: int | None
    captured_after: int | None
    items: tuple[ChangeItem, ...]
    verdict: Verdict
    summary: str
    basis_before: TimeBasis = TimeBasis.CAPTURED
    basis_after: TimeBasis = TimeBasis.CAPTURED
    #: An undisclosed edit: the text changed, yet the page still states this
    #: modified (or published) time and carries no new correction note.
    undisclosed: str | None = None

    @property
    def significant(self) -> bool:
        return self.verdict is Verdict.SIGNIFICANT

    @property
    def kinds(self) -> list[str]:
        return sorted({item.kind.value for item in self.items})


# -- the stored change record ------------------------------------------------------
#: Version of the JSON change record; a reader refuses a newer one rather than misread it.
CHANGE_SCHEMA = 1


def change_to_dict(change: Change) -> dict[str, Any]:
    """The JSON-able record stored with each change (and printed by ``--format json``)."""
    return {
        "schema": CHANGE_SCHEMA,
        "url": change.url,
        "title_before": change.title_before,
        "title_after": change.title_after,
        "captured_before": change.captured_before,
        "captured_after": change.captured_after,
        "verdict": Verdict(change.verdict).value,
        "summary": change.summary,
        "time_basis": [change.basis_before.value, change.basis_after.value],
        # only when set: records of other changes stay as they were
        **({"undisclosed": change.undisclosed} if change.undisclosed else {}),
        "items": [_item_to_dict(item) for item in change.items],
    }


def _item_to_dict(item: ChangeItem) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "significant": item.significant,
        "location": item.location,
        "before": jsonable(item.before),
        "after": jsonable(item.after),
        "inline": [[op, text] for op, text in item.inline],
        "detail": item.detail,
    }


def jsonable(value: Any) -> Any:
    """Tuples become lists, dataclasses dicts; anything exotic its str()."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return str(value)


def change_from_dict(data: dict[str, Any]) -> Change:
    """Read a record written by :func:`change_to_dict`; extra keys are ignored.

    A record without ``schema`` is taken as schema 1 (the first); a newer
    schema, an unknown kind or a missing field raises ChangeRecordError. Records
    written before ``time_basis`` existed are read as captured times.
    """
    schema = data.get("schema", CHANGE_SCHEMA)
    if schema != CHANGE_SCHEMA:
        raise ChangeRecordError(
            f"unsupported change record schema {schema!r} (expected {CHANGE_SCHEMA})"
        )
    try:
        before, after = data.get("time_basis") or (TimeBasis.CAPTURED, TimeBasis.CAPTURED)
        return Change(
            url=data["url"],
            title_before=data.get("title_before") or "",
            title_after=data.get("title_after") or "",
            captured_before=data.get("captured_before"),
            captured_after=data.get("captured_after"),
            items=tuple(_item_from_dict(item) for item in data.get("items", ())),
            verdict=Verdict(data["verdict"]),
            summary=data.get("summary", ""),
            basis_before=TimeBasis(before),
            basis_after=TimeBasis(after),
            undisclosed=data.get("undisclosed") or None,
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ChangeRecordError(f"unreadable change record: {exc!r}") from exc


def _item_from_dict(data: dict[str, Any]) -> ChangeItem:
    return ChangeItem(
        kind=ChangeKind(data["kind"]),
        significant=bool(data.get("significant", True)),
        location=data.get("location", ""),
        before=data.get("before"),
        after=data.get("after"),
        inline=tuple((str(op), str(text)) for op, text in data.get("inline") or ()),
        detail=data.get("detail") or "",
    )
