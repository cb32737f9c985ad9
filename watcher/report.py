"""Change -> text / Markdown / HTML / JSON (pure).

Every renderer works from one neutral view of the change, built once by
``_view``: which items are significant (reading order), which are noise
(grouped and summarised last), and each item's before/after as styled
segments. The formats differ only in how a segment is written, so the same
change reads the same everywhere.

Archived content is hostile. Text is stripped of control and bidi-override
characters (no terminal escapes, no reordering tricks), Markdown escapes the
characters that make links or HTML, and HTML escapes everything, links only
http(s) URLs and forbids every external request with a CSP.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.errors import WatcherError
from watcher.models import Change, ChangeItem, TimeBasis, Verdict, change_to_dict, jsonable
from watcher.safetext import UNSAFE_CHARS as _UNSAFE_CHARS
from watcher.safeurl import browser_url

FORMATS = ("text", "md", "html", "json")

Segment = tuple[str, str]
"""(style, text): style "=" plain, "-" deleted, "+" inserted, "url" a URL."""

_TITLES = {
    "header_time": "Capture time changed",
    "title": "Title changed",
    "url": "URL changed",
    "relative_time": "Relative time updated",
    "time": "Stated time changed",
    "link_changed": "Links changed",
    "media_changed": "Media changed",
    "markup_only": "Markup only, nothing visible",
    "boilerplate": "Site or feed boilerplate",
    "typography": "Typography only (quotes, punctuation, character width)",
    "metadata": "Metadata changed",
    "gone": "Article gone (404/410)",
    "reappeared": "Article reappeared",
    "reverted": "Reverted to an earlier version",
    "redirected": "Redirected",
    "rules": "Extraction rules changed; new baseline",
}
_URL_KINDS = frozenset({"url", "redirected", "media_changed", "link_changed"})
_URL_KEYS = frozenset({"src", "origin_src", "href", "url"})
_IMAGE_EXTRAS = ("alt", "caption", "credit")
_NOISE_ENTRIES_SHOWN = 8
_BRIEF_CHARS = 120

_SAFE_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f-\x9f]+", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~|#!&])")


# -- the neutral view --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of an item: role "~" inline diff, "-" before, "+" after, "=" unchanged."""

    role: str
    label: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class _ItemView:
    kind: str
    title: str
    location: str
    detail: str
    lines: tuple[_Line, ...]


@dataclass(frozen=True, slots=True)
class _NoiseGroup:
    """Noise items of one kind: a phrase for the summary line, one brief per item."""

    title: str
    phrase: str
    briefs: tuple[tuple[Segment, ...], ...]

    @property
    def heading(self) -> str:
        return self.title if len(self.briefs) == 1 else f"{self.title} ×{len(self.briefs)}"


@dataclass(frozen=True, slots=True)
class _ReportView:
    title: str
    title_before: str | None
    url: str
    captured_before: str
    captured_after: str
    time_before: str  # "Captured" or "Stated time": what the version's time is
    time_after: str
    verdict: str
    summary: str
    items: tuple[_ItemView, ...]
    noise: tuple[_NoiseGroup, ...]
    #: Set on an undisclosed edit: the sentence that says so.
    undisclosed: str | None = None

    @property
    def noise_summary(self) -> str:
        return "Noise: " + ", ".join(group.phrase for group in self.noise)


_TIME_LABELS = {TimeBasis.CAPTURED: "Captured", TimeBasis.STATED: "Stated time"}


def _stated(label: str) -> str:
    return " (stated by the file, not a capture time)" if label != "Captured" else ""


def _view(change: Change, tz: str) -> _ReportView:
    zone = zone_info(tz)
    significant = [_item_view(i, zone) for i in change.items if i.significant]
    # Noise briefs are one short line each: UTC is enough there.
    noise = [_item_view(i, None) for i in change.items if not i.significant]
    return _ReportView(
        title=change.title_after or change.title_before,
        title_before=change.title_before if change.title_before != change.title_after else None,
        url=change.url,
        captured_before=format_time(change.captured_before, zone),
        captured_after=format_time(change.captured_after, zone),
        time_before=_TIME_LABELS[change.basis_before],
        time_after=_TIME_LABELS[change.basis_after],
        verdict=str(getattr(change.verdict, "value", change.verdict)),
        summary=change.summary,
        items=tuple(significant),
        noise=_noise_groups(noise),
        undisclosed=(
            f"the text changed, but the page still states {change.undisclosed} "
            "and carries no correction note"
            if change.undisclosed
            else None
        ),
    )


def zone_info(tz: str) -> ZoneInfo | None:
    """None for UTC, which every report shows anyway; WatcherError names a bad zone."""
    if tz.upper() in ("UTC", "Z"):
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WatcherError(f"unknown time zone {tz!r}") from exc


def format_time(ms: int | None, zone: ZoneInfo | None = None) -> str:
    """Epoch ms as absolute UTC time, plus local time in ``zone`` when given.

    The numeric offset is shown rather than an abbreviation, since "CST" is
    China, Central US and Cuba at once.
    """
    if ms is None:
        return "unknown"
    try:
        utc = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return f"invalid time {ms!r}"
    text = f"{utc:%Y-%m-%d %H:%M:%S} UTC"
    if zone is not None:
        local = utc.astimezone(zone)
        offset = local.strftime("%z")
        text += f" / {local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:5]} {zone.key}"
    return text


def _title(kind: str) -> str:
    return _TITLES.get(kind) or kind.replace("_", " ").strip().capitalize() or "Change"


def _item_view(item: ChangeItem, zone: ZoneInfo | None) -> _ItemView:
    return _ItemView(
        kind=item.kind,
        title=_title(item.kind),
        location=str(item.location or ""),
        detail=str(item.detail or ""),
        lines=_lines(item, zone),
    )


def _lines(item: ChangeItem, zone: ZoneInfo | None) -> tuple[_Line, ...]:
    """Before/after of one item as lines: the inline diff when there is one."""
    if item.inline:
        return (_Line("~", "", _inline_segments(item.inline)),)
    before, after = item.before, item.after
    if isinstance(before, list | tuple) or isinstance(after, list | tuple):
        return _list_lines(item.kind, _as_list(before), _as_list(after))
    if _is_plain_dict(before) and _is_plain_dict(after):
        return _dict_lines(before, after)
    if before is not None and before == after:
        return (_Line("=", "text", _value_segments(item.kind, before, zone)),)
    lines = []
    if before is not None:
        lines.append(_Line("-", "before", _value_segments(item.kind, before, zone)))
    if after is not None:
        lines.append(_Line("+", "after", _value_segments(item.kind, after, zone)))
    return tuple(lines)


def _inline_segments(ops: Iterable[Sequence[str]]) -> tuple[Segment, ...]:
    """Trust nothing about the ops: unknown ones read as unchanged text."""
    segments = []
    for op, text in ops:
        segments.append((op if op in ("-", "+") else "=", str(text)))
    return tuple(segments)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _list_lines(kind: str, before: list[Any], after: list[Any]) -> tuple[_Line, ...]:
    """Links and other lists: show only the entries that came or went."""
    removed = [x for x in before if x not in after]
    added = [x for x in after if x not in before]
    if not removed and not added:  # same entries, new order
        return (
            _Line("-", "before", _joined(kind, before)),
            _Line("+", "after", _joined(kind, after)),
        )
    return tuple(
        [_Line("-", "removed", _value_segments(kind, x, None)) for x in removed]
        + [_Line("+", "added", _value_segments(kind, x, None)) for x in added]
    )


def _joined(kind: str, values: list[Any]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for i, value in enumerate(values):
        if i:
            segments.append(("=", "; "))
        segments.extend(_value_segments(kind, value, None))
    return tuple(segments)


def _is_plain_dict(value: Any) -> bool:
    """A dict that is not an image or link, so is best compared key by key."""
    return isinstance(value, dict) and not ({"src", "href"} & value.keys())


def _dict_lines(before: dict[str, Any], after: dict[str, Any]) -> tuple[_Line, ...]:
    lines = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        segments: list[Segment] = []
        if old is not None:
            segments.append(("-", _plain(old)))
        if old is not None and new is not None:
            segments.append(("=", " → "))
        if new is not None:
            segments.append(("+", _plain(new)))
        lines.append(_Line("~", str(key), tuple(segments)))
    return tuple(lines)


def _value_segments(kind: str, value: Any, zone: ZoneInfo | None) -> tuple[Segment, ...]:
    """One display value (text, URL, epoch ms, image or link dict) as segments."""
    if value is None:
        return ()
    if kind == "header_time" and isinstance(value, int) and not isinstance(value, bool):
        return (("=", format_time(value, zone)),)
    if isinstance(value, str):
        return (("url" if kind in _URL_KINDS else "=", value),)
    if isinstance(value, dict) and "src" in value:
        return _image_segments(value)
    if isinstance(value, dict) and "href" in value:
        text = str(value.get("text") or "")
        return ((("=", f"“{text}” "),) if text else ()) + (("url", str(value["href"])),)
    if isinstance(value, dict):
        return tuple(_dict_segments(value))
    return (("=", _plain(value)),)


def _image_segments(image: dict[str, Any]) -> tuple[Segment, ...]:
    """An image as its URL(s) and words; never as a picture to fetch."""
    src = str(image.get("src") or "")
    segments: list[Segment] = [("url", src)]
    origin = str(image.get("origin_src") or "")
    if origin and origin != src:
        segments += [("=", " (origin "), ("url", origin), ("=", ")")]
    for key in _IMAGE_EXTRAS:
        if image.get(key):
            segments.append(("=", f"; {key}: {image[key]}"))
    return tuple(segments)


def _dict_segments(value: dict[str, Any]) -> list[Segment]:
    segments: list[Segment] = []
    for i, (key, item) in enumerate(value.items()):
        segments.append(("=", f"{'; ' if i else ''}{key}: "))
        is_url = key in _URL_KEYS and isinstance(item, str)
        segments.append(("url", item) if is_url else ("=", _plain(item)))
    return segments


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def _noise_groups(items: list[_ItemView]) -> tuple[_NoiseGroup, ...]:
    by_kind: dict[str, list[_ItemView]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    return tuple(
        _NoiseGroup(
            _group_title(kind, group), _noise_phrase(kind, group), tuple(map(_brief, group))
        )
        for kind, group in by_kind.items()
    )


def _stated_time(group: list[_ItemView]) -> bool:
    """A header time that is what an imported file states, not a capture time."""
    return any(item.location != "capture time" for item in group)


def _group_title(kind: str, group: list[_ItemView]) -> str:
    if kind == "header_time" and _stated_time(group):
        return "Stated time changed"
    return _title(kind)


def _noise_phrase(kind: str, group: list[_ItemView]) -> str:
    count = len(group)
    plural = "" if count == 1 else "s"
    if kind == "header_time":
        return "stated time changed" if _stated_time(group) else "capture time changed"
    if kind == "markup_only":
        return "markup only"
    if kind == "typography":
        return "typography only" if count == 1 else f"typography only ×{count}"
    if kind == "relative_time":
        return f"{count} relative timestamp{plural} updated"
    if kind == "time":
        return f"{count} stated time{plural} reformatted or shifted"
    label = _title(kind).lower()
    return label if count == 1 else f"{label} ×{count}"


def _brief(item: _ItemView) -> tuple[Segment, ...]:
    """A noise item on one short line: where, and before → after."""
    body: list[Segment] = []
    for line in item.lines:
        if body:
            body.append(("=", " → " if line.role == "+" else "; "))
        if line.role == "~" and line.label:
            body.append(("=", f"{line.label}: "))
        body.extend(line.segments)
    if not body and item.detail:
        body.append(("=", item.detail))
    head = f"{item.location}: " if item.location and body else item.location
    return _shorten((("=", head), *body), _BRIEF_CHARS)


def _shorten(segments: Sequence[Segment], limit: int) -> tuple[Segment, ...]:
    out: list[Segment] = []
    left = limit
    for style, text in segments:
        if len(text) > left:
            out += [(style, text[:left]), ("=", "…")]
            break
        out.append((style, text))
        left -= len(text)
    return tuple(out)


def _clean(text: str) -> str:
    """Control and bidi characters from archived text made visible, not obeyed."""
    return _UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _safe_href(url: str) -> str | None:
    """The URL a reader may follow (http/https only), else None.

    Read as a browser reads an href first (tabs and newlines removed, controls
    and spaces trimmed), so the link is exactly what would be followed; one
    with controls or bidi characters left inside is shown as text instead.
    """
    href = browser_url(url)
    if not _SAFE_URL.fullmatch(href) or _UNSAFE_CHARS.search(href):
        return None
    return href


# -- text --------------------------------------------------------------------

_ANSI = {"bold": "1", "dim": "2", "-": "9;31", "+": "4;32", "url": "36"}
_ANSI_VERDICT = {"significant": "1;31", "noise": "33", "none": "32"}


def render_text(change: Change, *, tz: str = "UTC", color: bool = False) -> str:
    """Terminal text; ANSI colours only when asked (the CLI passes isatty())."""
    view = _view(change, tz)

    def paint(text: str, code: str) -> str:
        return f"\x1b[{_ANSI.get(code, code)}m{text}\x1b[0m" if color and text else text

    def segs(segments: Iterable[Segment]) -> str:
        out = []
        for style, raw in segments:
            text = _clean(raw).replace("\n", " ")
            if style in ("-", "+") and not color:
                text = f"[-{text}-]" if style == "-" else f"{{+{text}+}}"
            out.append(paint(text, _ANSI[style]) if style in _ANSI else text)
        return "".join(out)

    verdict = paint(view.verdict.upper(), _ANSI_VERDICT.get(view.verdict, "1"))
    out = [f"{paint('Title:', 'bold')}    {segs([('=', view.title)])}"]
    if view.title_before is not None:
        out.append(f"{paint('Was:', 'bold')}      {segs([('=', view.title_before)])}")
    out += [
        f"{paint('URL:', 'bold')}      {segs([('url', view.url)])}",
        f"{paint('Before:', 'bold')}   {view.captured_before}{_stated(view.time_before)}",
        f"{paint('After:', 'bold')}    {view.captured_after}{_stated(view.time_after)}",
        f"{paint('Verdict:', 'bold')}  {verdict}",
        f"{paint('Summary:', 'bold')}  {segs([('=', view.summary)])}",
        *(
            [f"{paint('Undisclosed:', 'bold')} {segs([('=', view.undisclosed)])}"]
            if view.undisclosed
            else []
        ),
        "",
    ]
    if not view.items:
        out.append("No significant changes.")
    for n, item in enumerate(view.items, 1):
        location = f"  [{segs([('=', item.location)])}]" if item.location else ""
        out.append(f"{n}. {paint(item.title, 'bold')}{location}")
        if item.detail:
            out.append(f"   {paint(segs([('=', item.detail)]), 'dim')}")
        for line in item.lines:
            label = f"{line.label}: " if line.label else ""
            role = line.role if line.role != "=" else " "
            out.append(f"   {role} {label}{segs(line.segments)}")
    if view.noise:
        out += ["", paint(view.noise_summary, "bold")]
        for group in view.noise:
            out.append(f"  - {group.heading}")
            out += [f"      {paint(segs(b), 'dim')}" for b in group.briefs[:_NOISE_ENTRIES_SHOWN]]
            if len(group.briefs) > _NOISE_ENTRIES_SHOWN:
                out.append(f"      … and {len(group.briefs) - _NOISE_ENTRIES_SHOWN} more")
    return "\n".join(out) + "\n"


# -- Markdown ----------------------------------------------------------------


def _md_escape(text: str) -> str:
    """Escape what could make a link, image, HTML or emphasis out of archived text."""
    return _MD_SPECIAL.sub(r"\\\1", _clean(text).replace("\n", " "))


def _md_mark(text: str, marker: str) -> str:
    """Wrap in ``marker`` with surrounding spaces kept outside, as GFM requires."""
    core = text.strip()
    if not core:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{marker}{_md_escape(core)}{marker}{trail}"


def _md_url(url: str) -> str:
    href = _safe_href(url)
    if href is not None and "<" not in href and ">" not in href:
        return f"<{href}>"
    return _md_escape(url)


def _md_segments(segments: Iterable[Segment]) -> str:
    out = []
    for style, text in segments:
        if style == "-":
            out.append(_md_mark(text, "~~"))
        elif style == "+":
            out.append(_md_mark(text, "**"))
        elif style == "url":
            out.append(_md_url(text))
        else:
            out.append(_md_escape(text))
    return "".join(out)


def render_markdown(change: Change, *, tz: str = "UTC") -> str:
    """GitHub-flavoured Markdown: ~~deleted~~ and **inserted**, content escaped."""
    view = _view(change, tz)
    out = [f"# {_md_escape(view.title) or 'Untitled'}", ""]
    if view.title_before is not None:
        out.append(f"- **Previously titled:** {_md_escape(view.title_before)}")
    out += [
        f"- **URL:** {_md_url(view.url)}",
        f"- **{view.time_before} before:** {_md_escape(view.captured_before)}",
        f"- **{view.time_after} after:** {_md_escape(view.captured_after)}",
        f"- **Verdict:** {_md_escape(view.verdict)}",
        f"- **Summary:** {_md_escape(view.summary)}",
        *([f"- **Undisclosed edit:** {_md_escape(view.undisclosed)}"] if view.undisclosed else []),
        "",
        "## Changes",
        "",
    ]
    if not view.items:
        out += ["No significant changes.", ""]
    for n, item in enumerate(view.items, 1):
        location = f" — {_md_escape(item.location)}" if item.location else ""
        out += [f"### {n}. {_md_escape(item.title)}{location}", ""]
        if item.detail:
            out += [f"*{_md_escape(item.detail)}*", ""]
        out += [_md_line(line) for line in item.lines]
        out.append("")
    if view.noise:
        out += ["## Noise", "", _md_escape(view.noise_summary), ""]
        for group in view.noise:
            out.append(f"- {_md_escape(group.heading)}")
            out += [f"  - {_md_segments(b)}" for b in group.briefs[:_NOISE_ENTRIES_SHOWN]]
            if len(group.briefs) > _NOISE_ENTRIES_SHOWN:
                out.append(f"  - … and {len(group.briefs) - _NOISE_ENTRIES_SHOWN} more")
        out.append("")
    return _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip("\n") + "\n"


def _md_line(line: _Line) -> str:
    label = f"**{_md_escape(line.label)}:** " if line.label else ""
    if line.role == "~" and not line.label:
        return f"\n> {_md_segments(line.segments)}\n"
    return f"- {label}{_md_segments(line.segments)}"


# -- HTML --------------------------------------------------------------------

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'"
_CSS = """
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--muted:#6b6b70;--line:#e2e2e6;
--del-fg:#a3141b;--del-bg:#fde8e8;--ins-fg:#0c6b25;--ins-bg:#e2f6e6;--accent:#0a58ca}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ea;--bg:#151517;--muted:#a0a0a8;
--line:#34343a;--del-fg:#ff9b9b;--del-bg:#4a1d20;--ins-fg:#8fe3a3;--ins-bg:#163a22;
--accent:#7fb2ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.75 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"PingFang SC","Hiragino Sans GB","Noto Sans CJK SC",
"Source Han Sans SC","Microsoft YaHei","Noto Sans",sans-serif;
-webkit-text-size-adjust:100%;text-size-adjust:100%}
main{max-width:46rem;margin:0 auto;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.6rem;line-height:1.35;margin:0 0 .5rem}
h2{font-size:1.2rem;margin:2rem 0 .75rem;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:0 0 .35rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:1rem 0}
dt{color:var(--muted)}dd{margin:0}
a{color:var(--accent);overflow-wrap:anywhere}
ol.items{padding-left:1.5rem}
li.item{margin:0 0 1.25rem}
.loc,.detail,.label{color:var(--muted);font-size:.9em}
.label{margin-right:.5em}
.text{white-space:pre-wrap;overflow-wrap:anywhere;margin:.25rem 0}
.line-before{border-left:3px solid var(--del-fg);padding-left:.6rem}
.line-after{border-left:3px solid var(--ins-fg);padding-left:.6rem}
del{color:var(--del-fg);background:var(--del-bg);text-decoration:line-through}
ins{color:var(--ins-fg);background:var(--ins-bg);text-decoration:underline}
.verdict{font-weight:600;text-transform:uppercase}
.verdict-significant{color:var(--del-fg)}.verdict-none{color:var(--ins-fg)}
details{margin-top:2rem;border:1px solid var(--line);border-radius:6px;padding:.5rem .9rem}
summary{cursor:pointer;font-weight:600}
details li{font-size:.92em}
"""
HTML_CSS = _CSS
"""The report stylesheet, for pages that embed :func:`render_html_fragment` output."""


def _h(text: str) -> str:
    return html.escape(_clean(text), quote=True)


def _html_url(url: str) -> str:
    """A link only for http(s); anything else (javascript:, data:) stays inert text."""
    href = _safe_href(url)
    if href is None:
        return f'<span class="url">{_h(url)}</span>'
    return f'<a href="{_h(href)}" rel="noopener noreferrer nofollow">{_h(url)}</a>'


def html_escape(text: str) -> str:
    """Archived text as inert HTML: markup escaped, control and bidi characters shown."""
    return _h(text)


def html_link(url: str) -> str:
    """A link for an http(s) URL; any other scheme (javascript:, data:) as plain text."""
    return _html_url(url)


def _html_segments(segments: Iterable[Segment]) -> str:
    out = []
    for style, text in segments:
        if style == "-":
            out.append(f"<del>{_h(text)}</del>")
        elif style == "+":
            out.append(f"<ins>{_h(text)}</ins>")
        elif style == "url":
            out.append(_html_url(text))
        else:
            out.append(_h(text))
    return "".join(out)


def render_html(change: Change, *, tz: str = "UTC") -> str:
    """A self-contained page: inline CSS, no scripts, nothing fetched from anywhere."""
    view = _view(change, tz)
    body = [
        f"<header><h1>{_h(view.title) or 'Untitled'}</h1><dl>",
        *_html_meta(view),
        "</dl></header>",
        '<section class="changes"><h2>Changes</h2>',
        _html_items(view.items),
        "</section>",
        _html_noise(view),
    ]
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Change: {_h(view.title)}</title>\n"
        f"<style>{_CSS}</style>\n"
        "</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def render_html_fragment(change: Change, *, tz: str = "UTC", heading_level: int = 4) -> str:
    """The body of :func:`render_html` without the page around it, for embedding.

    Pages that embed several changes (the report site's article pages) put
    :data:`HTML_CSS` in their own ``<style>`` once and nest the item headings
    at ``heading_level`` under their own headings. Escaping is the same as the
    full page's: archived text never becomes markup.
    """
    view = _view(change, tz)
    level = min(max(heading_level, 1), 6)
    return "\n".join(
        [
            '<div class="change-report"><dl>',
            *_html_meta(view),
            "</dl>",
            '<section class="changes">',
            _html_items(view.items, level),
            "</section>",
            _html_noise(view),
            "</div>",
        ]
    )


def _html_meta(view: _ReportView) -> list[str]:
    """The facts about a change as ``<dt>/<dd>`` pairs (values escaped here)."""
    verdict_class = view.verdict if view.verdict in {v.value for v in Verdict} else "unknown"
    meta = [("URL", _html_url(view.url))]
    if view.title_before is not None:
        meta.insert(0, ("Previously titled", _h(view.title_before)))
    meta += [
        (f"{view.time_before} before", _h(view.captured_before)),
        (f"{view.time_after} after", _h(view.captured_after)),
        ("Verdict", f'<span class="verdict verdict-{verdict_class}">{_h(view.verdict)}</span>'),
        ("Summary", _h(view.summary)),
    ]
    if view.undisclosed:
        meta.append(("Undisclosed edit", _h(view.undisclosed)))
    return [f"<dt>{name}</dt><dd>{value}</dd>" for name, value in meta]


def _html_items(items: Sequence[_ItemView], heading_level: int = 3) -> str:
    if not items:
        return "<p>No significant changes.</p>"
    h = f"h{heading_level}"
    out = ['<ol class="items">']
    for item in items:
        location = f' <span class="loc">{_h(item.location)}</span>' if item.location else ""
        out.append(f'<li class="item"><{h}>{_h(item.title)}{location}</{h}>')
        if item.detail:
            out.append(f'<p class="detail">{_h(item.detail)}</p>')
        out += [_html_line(line) for line in item.lines]
        out.append("</li>")
    out.append("</ol>")
    return "\n".join(out)


def _html_line(line: _Line) -> str:
    css = {"-": " line-before", "+": " line-after"}.get(line.role, "")
    label = f'<span class="label">{_h(line.label)}</span>' if line.label else ""
    return f'<p class="text{css}">{label}{_html_segments(line.segments)}</p>'


def _html_noise(view: _ReportView) -> str:
    if not view.noise:
        return ""
    out = [f'<details class="noise"><summary>{_h(view.noise_summary)}</summary><ul>']
    for group in view.noise:
        out.append(f"<li>{_h(group.heading)}<ul>")
        out += [f"<li>{_html_segments(brief)}</li>" for brief in group.briefs]
        out.append("</ul></li>")
    out.append("</ul></details>")
    return "\n".join(out)


# -- JSON --------------------------------------------------------------------


def render_json(change: Change) -> str:
    """The change_to_dict record, pretty-printed; CJK kept readable."""
    return json.dumps(change_to_dict(change), ensure_ascii=False, indent=2)


# -- dispatch ----------------------------------------------------------------

_RENDERERS: dict[str, Callable[[Change, str, bool], str]] = {
    "text": lambda change, tz, color: render_text(change, tz=tz, color=color),
    "md": lambda change, tz, color: render_markdown(change, tz=tz),
    "html": lambda change, tz, color: render_html(change, tz=tz),
    "json": lambda change, tz, color: render_json(change),
}


def render(change: Change, fmt: str, *, tz: str = "UTC", color: bool = False) -> str:
    """Render ``change`` as one of FORMATS; WatcherError for any other format or zone."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise WatcherError(
            f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None
    return renderer(change, tz, color)
