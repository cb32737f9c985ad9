"""Plain values passed between the pipeline stages.

fetch -> FetchResult; extract -> ExtractedPage; snapshot -> Snapshot;
article -> Article; diff -> Change. Nothing here does I/O or imports a
third-party library, so every stage can be called on saved data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    with relative-time phrases masked, so blocks that differ only by a ticking
    "14 分钟前" compare equal there.
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
    """What a page says about itself outside the article body."""

    canonical_url: str | None = None
    og_title: str | None = None
    og_description: str | None = None
    published_time: str | None = None
    modified_time: str | None = None
    headline: str | None = None
    author: str | None = None
    language: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """extract() output: the snapshot body and what the page says about itself."""

    title: str
    url: str
    body_html: str
    metadata: PageMetadata


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

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


class Verdict(StrEnum):
    SIGNIFICANT = "significant"
    NOISE = "noise"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ChangeItem:
    """One typed difference. ``before``/``after`` are display values (text,
    URL, JSON-able dicts); ``inline`` holds (op, text) pairs for edits, where
    op is "=", "-" or "+"."""

    kind: str
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

    @property
    def significant(self) -> bool:
        return self.verdict is Verdict.SIGNIFICANT

    @property
    def kinds(self) -> list[str]:
        return sorted({item.kind for item in self.items})
