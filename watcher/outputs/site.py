"""The report site: static, self-contained HTML pages and an Atom feed of the history.

Layout (relative to the site folder; ``$WATCHER_HOME/site`` for the daemon)::

    index.html            every watched article: title, site, versions, last
                          significant change, state; sortable and filterable
    articles/<id>.html    one article: version timeline, every change rendered
                          by the report module (noise-only changes collapsed)
    articles/<id>/v<N>.html  the article as version N read, rebuilt from its
                          parsed blocks (reading.py): for each version people
                          read (the first, and each a significant change led to)
    recent.html           the newest significant changes over all articles
    feed.atom             the same changes as an Atom 1.0 feed

Nothing is fetched from anywhere: CSS is inline, images are shown as links,
and every page carries a CSP of ``default-src 'none'`` that admits only its
own ``<style>`` and its own ``<script>``, by hash. Every time is a ``<time>``
in UTC that the script rewrites in the reader's own zone (UTC without JS). Archived
text is escaped by the report module's rules, so even content that slipped
past escaping could not run script.

:func:`build_site` writes everything (``watcher site DIR``);
:func:`update_site` rewrites only what one new change affects (the daemon,
through :mod:`watcher.notify`). Both write atomically and skip files whose
content is already current, so a rebuild does not disturb mirrors or caches.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher import archive
from watcher.article import parse_article
from watcher.errors import ChangeRecordError
from watcher.models import Change, Verdict, change_from_dict
from watcher.outputs.atom import FeedEntry, FeedInfo, render_atom, tag_uri
from watcher.outputs.reading import READING_CSS, render_article_html
from watcher.report import (
    HTML_CSS,
    html_escape,
    html_link,
    render_html_fragment,
    zone_info,
)
from watcher.settings import Settings
from watcher.store import (
    ChangeRecord,
    ChangeVerdict,
    Repository,
    VersionRecord,
    WatchRecord,
    WatchSummary,
)

log = logging.getLogger(__name__)

RECENT_LIMIT = 100
FEED_LIMIT = 50
INDEX = Path("index.html")
RECENT = Path("recent.html")
FEED = Path("feed.atom")
ARTICLES = Path("articles")

_ARTICLE_FILE = re.compile(r"^(\d+)\.html$")
_VERSION_FILE = re.compile(r"^v(\d+)\.html$")

_SITE_CSS = """
main.wide{max-width:72rem}
nav.site{font-size:.92em;margin:0 0 1rem;color:var(--muted)}
nav.site a{margin-right:1rem}
table{border-collapse:collapse;width:100%;font-size:.94em}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
th{white-space:nowrap;color:var(--muted);font-weight:600}
th button{font:inherit;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" ▲"}
th[aria-sort=descending] button::after{content:" ▼"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted,.when{color:var(--muted);font-size:.9em}
.filters{display:flex;gap:.75rem;flex-wrap:wrap;align-items:center;margin:0 0 1rem}
.filters[hidden]{display:none}
.filters input,.filters select{font:inherit;padding:.25rem .5rem}
.state{font-size:.85em;border:1px solid var(--line);border-radius:4px;padding:0 .35rem}
section.change,details.change{margin:1.5rem 0;border-top:1px solid var(--line);padding-top:.75rem}
details.change{border:1px solid var(--line);border-radius:6px;padding:.5rem .9rem}
.change-report h4{font-size:1rem;margin:0 0 .35rem}
.change-report dl{font-size:.92em}
ol.recent{padding-left:1.25rem}
ol.recent li{margin:0 0 .9rem}
main{overflow-wrap:anywhere}
.filters input{min-width:0;flex:1 1 12rem}
@media (max-width:40rem){
main{padding:1rem .8rem 2rem}
dl{grid-template-columns:1fr}dd{margin:0 0 .4rem}
table.cards thead{display:none}
table.cards tr{display:block;border-bottom:1px solid var(--line);padding:.45rem 0}
table.cards td{display:block;border:0;padding:.05rem 0}
table.cards td.num{text-align:left}
table.cards td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}
}
"""
_CSS = HTML_CSS + _SITE_CSS + READING_CSS

#: Every page's code: each <time datetime> (UTC text) in the reader's own
#: zone, labelled with it; without JS the UTC text stays (the web UI's too).
TIME_JS = """
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, {year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      timeZoneName: "short"});
  } catch (e) { return; }
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (t) {
    var when = new Date(t.getAttribute("datetime"));
    if (isNaN(when.getTime())) { return; }
    t.title = t.textContent;
    t.textContent = format.format(when);
  });
})();
"""

# The index's only code: sort by a clicked header, filter by text and state.
# Without JS the table still reads in its default order (newest change first).
_INDEX_JS = """
(function () {
  "use strict";
  var table = document.getElementById("articles");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("filter-text");
  var state = document.getElementById("filter-state");
  var count = document.getElementById("count");
  function key(row, index, numeric) {
    var cell = row.cells[index];
    var value = cell.getAttribute("data-sort");
    if (value === null) { value = cell.textContent.trim().toLowerCase(); }
    return numeric ? Number(value) : value;
  }
  function sortBy(th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = key(a, index, numeric);
      var y = key(b, index, numeric);
      var order = numeric ? x - y : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function filter() {
    var words = text.value.trim().toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = state.value;
    var shown = 0;
    rows.forEach(function (row) {
      var haystack = row.textContent.toLowerCase();
      var ok = (!wanted || row.getAttribute("data-state") === wanted) &&
        words.every(function (word) { return haystack.indexOf(word) !== -1; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " articles";
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    button.addEventListener("click", function () { sortBy(th); });
    th.textContent = "";
    th.appendChild(button);
  });
  text.addEventListener("input", filter);
  state.addEventListener("change", filter);
  document.getElementById("filters").hidden = false;
  filter();
})();
"""


# -- what the pages show -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One watched article on the index."""

    watch_id: int
    url: str
    site: str
    title: str
    state: str
    versions: int
    last_significant: ChangeRecord | None


@dataclass(frozen=True, slots=True)
class ArticleHistory:
    """Everything one article page shows."""

    watch: WatchRecord
    versions: tuple[VersionRecord, ...]
    changes: tuple[ChangeRecord, ...]

    @property
    def title(self) -> str:
        titles = [v.title for v in self.versions if v.title]
        return titles[-1] if titles else self.watch.url

    @property
    def state(self) -> str:
        return shown_state(str(self.watch.state), self.changes[-1] if self.changes else None)


def shown_state(state: str, latest: ChangeRecord | None) -> str:
    """The state to show, given the watch's newest change.

    The daemon reports a takedown before it marks the watch gone, so the site
    written for that change would still say "active"; the change itself is
    the better witness.
    """
    if state == "active" and latest is not None and latest.new_version_id is None:
        return "gone"
    return state


def article_path(watch_id: int) -> Path:
    """Relative path of an article's page: by watch id, which never changes."""
    return ARTICLES / f"{watch_id}.html"


def site_dir(settings: Settings) -> Path:
    """The site the daemon keeps current, inside the data folder."""
    return settings.home / "site"


def change_time(record: ChangeRecord) -> int:
    """When a change happened: the new capture's time, else when it was stored."""
    captured = record.record.get("captured_after")
    if isinstance(captured, int) and not isinstance(captured, bool):
        return captured
    return record.created_at


def change_title(record: ChangeRecord) -> str:
    data = record.record
    return str(data.get("title_after") or data.get("title_before") or record.url)


def stored_change(record: ChangeRecord) -> Change | None:
    """The stored change, or None when its record cannot be read (newer schema, damage)."""
    try:
        return change_from_dict(record.record)
    except ChangeRecordError as exc:
        log.warning("change %s of %s is unreadable: %s", record.id, record.url, exc)
        return None


# -- small HTML helpers --------------------------------------------------------


def _h(value: Any) -> str:
    return html_escape(str(value))


def _short_time(ms: int | None) -> str:
    """A table cell's time: minutes, UTC, in a <time> element."""
    if ms is None:
        return '<span class="when">unknown</span>'
    try:
        utc = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return f'<span class="when">{_h(ms)}</span>'
    return f'<time class="when" datetime="{utc:%Y-%m-%dT%H:%M:%SZ}">{utc:%Y-%m-%d %H:%M} UTC</time>'


def _csp_hash(code: str) -> str:
    digest = hashlib.sha256(code.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _page(title: str, body: str, *, root: str = "", script: str = TIME_JS) -> str:
    """A whole page: the CSP admits exactly this page's style and script, nothing else."""
    script_src = _csp_hash(script) if script else "'none'"
    csp = (
        f"default-src 'none'; style-src {_csp_hash(_CSS)}; script-src {script_src}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    script_tag = f"<script>{script}</script>\n" if script else ""
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n"
        f'<link rel="alternate" type="application/atom+xml" href="{root}feed.atom"'
        ' title="Significant changes">\n'
        f"<style>{_CSS}</style>\n"
        "</head>\n<body>\n"
        f"{body}\n"
        f"{script_tag}"
        "</body>\n</html>\n"
    )


def _nav(root: str) -> str:
    return (
        '<nav class="site">'
        f'<a href="{root}index.html">All articles</a>'
        f'<a href="{root}recent.html">Recent changes</a>'
        f'<a href="{root}feed.atom">Atom feed</a>'
        "</nav>"
    )


def _verdict(verdict: str) -> str:
    known = verdict if verdict in {v.value for v in Verdict} else "unknown"
    return f'<span class="verdict verdict-{known}">{_h(verdict)}</span>'


# -- pages (pure) --------------------------------------------------------------


def render_index(rows: Sequence[IndexRow]) -> str:
    """The watch list, newest significant change first; JS adds sorting and filters."""
    ordered = sorted(
        rows,
        key=lambda r: (change_time(r.last_significant) if r.last_significant else -1, r.watch_id),
        reverse=True,
    )
    states = sorted({r.state for r in rows})
    options = "".join(f'<option value="{_h(s)}">{_h(s)}</option>' for s in states)
    body = [
        '<main class="wide">',
        _nav(""),
        "<h1>Watched articles</h1>",
        '<div class="filters" id="filters" hidden>',
        '<input type="search" id="filter-text" placeholder="Filter by title, site, state…"'
        ' aria-label="Filter articles">',
        '<select id="filter-state" aria-label="State">'
        f'<option value="">all states</option>{options}</select>',
        '<span id="count" class="muted"></span>',
        "</div>",
        '<table id="articles" class="cards"><thead><tr>',
        "<th>Title</th><th>Site</th>"
        '<th data-type="number">Versions</th>'
        '<th data-type="number" aria-sort="descending">Last significant change</th>'
        "<th>State</th>",
        "</tr></thead><tbody>",
        *(_index_row(row) for row in ordered),
        "</tbody></table>",
        "" if rows else "<p>No watched articles yet.</p>",
        "</main>",
    ]
    return _page("watcher: watched articles", "\n".join(body), script=TIME_JS + _INDEX_JS)


def _index_row(row: IndexRow) -> str:
    last = row.last_significant
    if last is None:
        when, sort = '<span class="muted">none</span>', "0"
    else:
        when = f"{_short_time(change_time(last))}<br>{_h(last.summary)}"
        sort = str(change_time(last))
    return (
        f'<tr data-state="{_h(row.state)}">'
        f'<td><a href="{article_path(row.watch_id).as_posix()}">{_h(row.title)}</a></td>'
        f'<td data-label="Site">{_h(row.site)}</td>'
        f'<td class="num" data-label="Versions">{row.versions}</td>'
        f'<td data-sort="{sort}">{when}</td>'
        f'<td><span class="state">{_h(row.state)}</span></td>'
        "</tr>"
    )


def version_path(watch_id: int, seq: int) -> Path:
    """Relative path of the page of an article's version ``seq``."""
    return ARTICLES / str(watch_id) / f"v{seq}.html"


def has_page(version: VersionRecord) -> bool:
    """Versions people read get a page: the first capture and each one a
    significant change led to (those with an archive file). A noise-only
    version reads as the one before it."""
    return version.archive_path is not None


def render_article(history: ArticleHistory, *, tz: str = "UTC") -> str:
    """One article: facts, the version timeline, then every change, newest first."""
    watch = history.watch
    tags = ", ".join(watch.tags)
    facts = [
        ("URL", html_link(watch.url)),
        ("Site", _h(watch.site)),
        ("State", f'<span class="state">{_h(history.state)}</span>'),
        ("Versions", str(len(history.versions))),
    ] + ([("Tags", _h(tags))] if tags else [])
    body = [
        "<main>",
        _nav("../"),
        f"<header><h1>{_h(history.title)}</h1><dl>",
        *(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts),
        "</dl></header>",
        "<h2>Timeline</h2>",
        _timeline(history),
        "<h2>Changes</h2>",
        *(_change_section(c, history, tz) for c in reversed(history.changes)),
        "" if history.changes else "<p>No changes recorded yet.</p>",
        "</main>",
    ]
    return _page(f"{history.title} — watcher", "\n".join(body), root="../")


def _timeline(history: ArticleHistory) -> str:
    into = {c.new_version_id: c for c in history.changes if c.new_version_id is not None}
    rows: list[tuple[int, int, str]] = []
    for version in history.versions:
        change = into.get(version.id)
        verdict = _verdict(change.verdict.value) if change else '<span class="muted">first</span>'
        summary = _change_link(change) if change else "first capture"
        rows.append(
            (
                version.captured_at,
                version.seq,
                f'<tr id="v{version.seq}"><td>{_version_link(history.watch.id, version)}</td>'
                f"<td>{_short_time(version.captured_at)}</td>"
                f"<td>{verdict}</td><td>{summary}</td></tr>",
            )
        )
    for change in history.changes:
        if change.new_version_id is None:  # gone: no new version to hang it on
            last = _last_read(history)
            rows.append(
                (
                    change_time(change),
                    len(history.versions) + 1,
                    f"<tr><td>—</td><td>{_short_time(change_time(change))}</td>"
                    f"<td>{_verdict(change.verdict.value)}</td><td>{_change_link(change)}"
                    f"{'<br>' + last if last else ''}</td></tr>",
                )
            )
    rows.sort(key=lambda r: (r[0], r[1]))
    return (
        '<table class="cards"><thead><tr><th>Version</th><th>Captured</th><th>Verdict</th>'
        "<th>Change</th></tr></thead><tbody>" + "".join(r[2] for r in rows) + "</tbody></table>"
    )


def _version_link(watch_id: int, version: VersionRecord) -> str:
    """The version's number, linking to its page where it has one."""
    label = f"v{version.seq}"
    if not has_page(version):
        return label
    href = version_path(watch_id, version.seq).relative_to(ARTICLES).as_posix()
    return f'<a href="{href}">{label}</a>'


def _last_read(history: ArticleHistory) -> str:
    """A link to the last version with a page: what the article said before it went."""
    shown = [v for v in history.versions if has_page(v)]
    if not shown:
        return ""
    href = version_path(history.watch.id, shown[-1].seq).relative_to(ARTICLES).as_posix()
    return f'<a href="{href}">the last version people read: v{shown[-1].seq}</a>'


def _change_link(change: ChangeRecord) -> str:
    return f'<a href="#change-{change.id}">{_h(change.summary or "details")}</a>'


def _seq_label(change: ChangeRecord, history: ArticleHistory) -> str:
    seqs = {v.id: v.seq for v in history.versions}
    old = seqs.get(change.old_version_id)
    new = seqs.get(change.new_version_id) if change.new_version_id is not None else None
    before = f"v{old}" if old else "?"
    return f"{before} → v{new}" if new else f"{before} → gone"


def _change_section(record: ChangeRecord, history: ArticleHistory, tz: str) -> str:
    """A significant change open; a noise-only one collapsed to its summary line."""
    change = stored_change(record)
    report = (
        render_html_fragment(change, tz=tz, heading_level=4)
        if change is not None
        else '<p class="muted">This change record cannot be read by this version of watcher.</p>'
    )
    head = (
        f'<a href="#change-{record.id}">{_h(_seq_label(record, history))}</a> · '
        f"{_verdict(record.verdict.value)} · {_short_time(change_time(record))}"
    )
    anchor = f'id="change-{record.id}"'
    if record.verdict is ChangeVerdict.SIGNIFICANT:
        last = _last_read(history) if record.new_version_id is None else ""
        return (
            f'<section class="change" {anchor}><h3>{head}</h3>'
            f"<p>{_h(record.summary)}</p>\n{f'<p>{last}</p>' if last else ''}{report}</section>"
        )
    return (
        f'<details class="change" {anchor}><summary>{head} · {_h(record.summary)}</summary>'
        f"\n{report}</details>"
    )


def render_version(
    watch: WatchRecord, version: VersionRecord, article_html: str, previous: VersionRecord | None
) -> str:
    """The page of one version: the article as it read then, from its parsed
    blocks (``article_html``, from :func:`render_article_html`), never from
    the archived page. It depends on nothing later, so it is written once."""
    basis = "Captured" if version.time_basis.value == "captured" else "Stated time"
    back = f'<a href="../{watch.id}.html#v{version.seq}">timeline</a>'
    earlier = (
        f' · <a href="v{previous.seq}.html">v{previous.seq}, the version before</a>'
        if previous is not None
        else ""
    )
    facts = [
        ("URL", html_link(watch.url)),
        ("Version", f"v{version.seq} · {back}{earlier}"),
        (basis, _short_time(version.captured_at)),
    ]
    title = version.title or watch.url
    body = [
        "<main>",
        _nav("../../"),
        f"<header><h1>{_h(title)}</h1><dl>",
        *(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts),
        "</dl>",
        '<p class="muted">The article as this version read, rebuilt from its stored text;'
        " the archived page itself is not shown.</p></header>",
        article_html,
        "</main>",
    ]
    return _page(f"v{version.seq}: {title} — watcher", "\n".join(body), root="../../")


def render_recent(changes: Sequence[ChangeRecord]) -> str:
    """The newest significant changes over all articles, each linking to its report."""
    items = [
        "<li>"
        f'<a href="{article_path(c.watch_id).as_posix()}#change-{c.id}">{_h(change_title(c))}</a>'
        f" {_short_time(change_time(c))}<br>{_h(c.summary)}"
        f'<br><span class="muted">{_h(", ".join(c.kinds))}</span>'
        "</li>"
        for c in changes
    ]
    body = [
        "<main>",
        _nav(""),
        "<h1>Recent significant changes</h1>",
        '<ol class="recent">' + "\n".join(items) + "</ol>"
        if items
        else "<p>No significant changes yet.</p>",
        "</main>",
    ]
    return _page("watcher: recent significant changes", "\n".join(body))


# -- the Atom feed (pure) ------------------------------------------------------


def entry_id(record: ChangeRecord) -> str:
    """Stable across rebuilds and re-imports: the article URL and the change's time."""
    digest = hashlib.sha256(record.url.encode("utf-8")).hexdigest()[:16]
    captured = record.record.get("captured_after")
    when = str(captured) if isinstance(captured, int) else f"c{record.id}"
    gone = "-gone" if record.new_version_id is None else ""
    return tag_uri(f"change:{digest}:{when}{gone}")


def render_feed(
    changes: Sequence[ChangeRecord], *, tz: str = "UTC", base_url: str = "", now_ms: int = 0
) -> str:
    """Atom 1.0 of significant changes; links are relative unless ``base_url`` is set."""
    base = base_url.rstrip("/") + "/" if base_url else ""
    info = FeedInfo(
        id=f"{base}{FEED.as_posix()}" if base else tag_uri("feed"),
        title="watcher: significant changes",
        subtitle="Edits, insertions, deletions, re-dating and takedowns of watched news articles",
        self_link=f"{base}{FEED.as_posix()}",
        alternate_link=f"{base}{RECENT.as_posix()}",
    )
    return render_atom(info, [_feed_entry(c, tz, base) for c in changes], now_ms=now_ms)


def _feed_entry(record: ChangeRecord, tz: str, base: str) -> FeedEntry:
    change = stored_change(record)
    title = change_title(record)
    return FeedEntry(
        id=entry_id(record),
        title=f"{title}: {record.summary}" if record.summary else title,
        updated_ms=change_time(record),
        link=f"{base}{article_path(record.watch_id).as_posix()}#change-{record.id}",
        summary=record.summary,
        content_html=render_html_fragment(change, tz=tz) if change is not None else "",
    )


# -- reading the store ---------------------------------------------------------


def _index_rows(store: Repository, watches: Iterable[WatchSummary]) -> list[IndexRow]:
    last = store.latest_changes_by_watch(verdict=ChangeVerdict.SIGNIFICANT)
    newest = store.latest_changes_by_watch()
    return [
        IndexRow(
            watch_id=w.id,
            url=w.url,
            site=w.site,
            title=w.latest_title or w.url,
            state=shown_state(str(w.state), newest.get(w.id)),
            versions=w.version_count,
            last_significant=last.get(w.id),
        )
        for w in watches
    ]


def _write_pages(
    store: Repository, root: Path, watch_ids: list[int], *, tz: str
) -> list[Path | None]:
    """Write the article pages of ``watch_ids``, their histories read in batches,
    and the pages of their versions that have none yet (a version's page
    depends on nothing later, so it is written once)."""
    written: list[Path | None] = []
    for watch, versions, changes in store.histories(watch_ids):
        history = ArticleHistory(watch, tuple(versions), tuple(changes))
        written.append(_write(root, article_path(watch.id), render_article(history, tz=tz)))
        written += _write_version_pages(store, root, history)
    return written


def _write_version_pages(
    store: Repository, root: Path, history: ArticleHistory
) -> list[Path | None]:
    written: list[Path | None] = []
    previous: VersionRecord | None = None
    for version in history.versions:
        if not has_page(version):
            continue
        relative = version_path(history.watch.id, version.seq)
        if not (root / relative).exists():
            article = parse_article(store.version_snapshot(version))
            page = render_version(history.watch, version, render_article_html(article), previous)
            written.append(_write(root, relative, page))
        previous = version
    return written


# -- writing -------------------------------------------------------------------


def _write(root: Path, relative: Path, text: str) -> Path | None:
    """Write atomically; None (no write) when the file already holds ``text``."""
    target = root / relative
    try:
        if target.read_text(encoding="utf-8") == text:
            return None
    except (OSError, UnicodeDecodeError):
        pass
    path = archive.write_atomic(root, relative, text, durable=False)  # rebuilt at will
    try:  # the site is for publishing: a web server's user must be able to read it
        path.chmod(0o644)
    except OSError as exc:
        log.warning("cannot make %s readable: %s", path, exc)
    return path


def _write_shared(
    store: Repository,
    root: Path,
    watches: list[WatchSummary],
    *,
    tz: str,
    base_url: str,
    significant: bool,
    now_ms: int,
) -> list[Path | None]:
    written = [_write(root, INDEX, render_index(_index_rows(store, watches)))]
    if significant:
        recent = store.recent_changes(
            verdict=ChangeVerdict.SIGNIFICANT, limit=max(RECENT_LIMIT, FEED_LIMIT)
        )
        written.append(_write(root, RECENT, render_recent(recent[:RECENT_LIMIT])))
        feed = render_feed(recent[:FEED_LIMIT], tz=tz, base_url=base_url, now_ms=now_ms)
        written.append(_write(root, FEED, feed))
    return written


def build_site(
    store: Repository, root: Path, *, tz: str = "UTC", base_url: str = "", now_ms: int = 0
) -> list[Path]:
    """Write the whole site into ``root`` from the database alone; return the files
    that changed. Pages of watches no longer in the database are removed."""
    zone_info(tz)  # a bad zone fails before anything is written
    watches = store.list_watches()
    written = _write_pages(store, root, [w.id for w in watches], tz=tz)
    written += _write_shared(
        store, root, watches, tz=tz, base_url=base_url, significant=True, now_ms=now_ms
    )
    _remove_stale_pages(root, {w.id for w in watches})
    return [p for p in written if p is not None]


def update_site(
    store: Repository,
    root: Path,
    watch_ids: int | Iterable[int],
    *,
    significant: bool,
    tz: str = "UTC",
    base_url: str = "",
    now_ms: int = 0,
) -> list[Path]:
    """After changes of some watches: rewrite their pages and the index once, and
    the recent page and feed only when a change is significant (they list
    nothing else). The daemon batches changes and calls this once per flush.

    Pages of other watches are written only when missing (a watch whose first
    change this is, or a site never built), so index links always resolve; a
    site that does not exist yet is built whole, once.
    """
    if not (root / INDEX).exists():
        return build_site(store, root, tz=tz, base_url=base_url, now_ms=now_ms)
    changed = {watch_ids} if isinstance(watch_ids, int) else set(watch_ids)
    watches = store.list_watches()
    due = [w.id for w in watches if w.id in changed or not (root / article_path(w.id)).exists()]
    written = _write_pages(store, root, due, tz=tz)
    written += _write_shared(
        store, root, watches, tz=tz, base_url=base_url, significant=significant, now_ms=now_ms
    )
    return [p for p in written if p is not None]


def _remove_stale_pages(root: Path, keep: set[int]) -> None:
    folder = root / ARTICLES
    if not folder.is_dir():
        return
    for page in folder.iterdir():
        match = _ARTICLE_FILE.match(page.name)
        if match and int(match.group(1)) not in keep:
            page.unlink(missing_ok=True)
        elif page.is_dir() and page.name.isdigit() and int(page.name) not in keep:
            for version in page.iterdir():
                if _VERSION_FILE.match(version.name):
                    version.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                page.rmdir()
