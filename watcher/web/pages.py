"""The HTML pages, from records and parsed articles (pure).

Every archived string goes through :mod:`watcher.web.markup` (``esc``,
``external_link``); the markup around it is written here. An article is shown
from its parsed blocks, never its archived HTML: an image is a caption and a
link, not an ``<img>``, so a page makes no request to any other host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from watcher.api import ArticleHistory, HistoryEntry
from watcher.models import NOISE_KINDS, Article, Block, BlockKind, TimeBasis
from watcher.outputs.site import stored_change
from watcher.report import render_html_fragment
from watcher.search import Hit
from watcher.store import ChangeRecord, ChangeVerdict, VersionRecord, WatchRecord
from watcher.web.markup import esc, external_link, local_url, mark_spans, page, time_tag
from watcher.web.queries import Choices, Filters, Page, WatchRow


def kind_label(kind: str) -> str:
    """``paragraph_added`` as a reader says it: "paragraph added"."""
    return kind.replace("_", " ")


def _is_noise(kind: str) -> bool:
    return kind in NOISE_KINDS


def _change_line(change: ChangeRecord) -> str:
    # the news first; kinds that are never news (a ticking time) after, muted
    ordered = sorted(change.kinds, key=_is_noise)
    kinds = "".join(
        f'<span class="kind{" noise" if _is_noise(k) else ""}">{esc(kind_label(k))}</span>'
        for k in ordered
    )
    verdict = str(change.verdict)
    return (
        f'<span class="verdict-{esc(verdict)}">{esc(verdict)}</span> {kinds} '
        f'<span class="summary">{esc(change.summary)}</span>'
    )


def _report(change: ChangeRecord, summary: str) -> str:
    """What changed, item by item (the report ``watcher diff`` and the report
    site show): open for a significant edit; folded for noise, and for a
    takedown (its report is the whole last text, linked as a version anyway)."""
    stored = stored_change(change)
    report = (
        render_html_fragment(stored, heading_level=4)
        if stored is not None
        else '<p class="muted">This change record cannot be read by this version of watcher.</p>'
    )
    edit = change.verdict is ChangeVerdict.SIGNIFICANT and change.new_version_id is not None
    shown = " open" if edit else ""
    return f'<details class="report"{shown}><summary>{esc(summary)}</summary>{report}</details>'


def _tags(tags: Sequence[str]) -> str:
    return "".join(f'<span class="tag">{esc(t)}</span>' for t in tags)


def _select(
    name: str,
    label: str,
    options: Sequence[str],
    chosen: str | None,
    shown: Callable[[str], str] = str,
) -> str:
    items = ['<option value="">any</option>'] + [
        f'<option value="{esc(o)}"{" selected" if o == chosen else ""}>{esc(shown(o))}</option>'
        for o in options
    ]
    return f'<label>{label} <select name="{name}">{"".join(items)}</select></label>'


def _filters_form(action: str, filters: Filters, choices: Choices, query: str | None) -> str:
    q = (
        f'<label>Text <input type="search" name="q" value="{esc(query)}"></label>'
        if query is not None
        else ""
    )
    return (
        f'<form class="filters" method="get" action="{action}">{q}'
        + _select("site", "Site", choices.sites, filters.site)
        + _select("tag", "Tag", choices.tags, filters.tag)
        + _select("state", "State", choices.states, filters.state)
        + _select("kind", "Change", choices.kinds, filters.kind, kind_label)
        + '<button type="submit">Filter</button></form>'
    )


def _next_link(path: str, cursor: str | None, **params: object) -> str:
    if cursor is None:
        return ""
    return f'<nav class="pages"><a rel="next" href="{local_url(path, **params, cursor=cursor)}">Next page →</a></nav>'


def _filter_params(filters: Filters) -> dict[str, object]:
    return {"site": filters.site, "tag": filters.tag, "state": filters.state, "kind": filters.kind}


# -- the index --------------------------------------------------------------------------


def render_index(rows: Page[WatchRow], choices: Choices, filters: Filters) -> str:
    body = [
        "<h1>Watched articles</h1>",
        _filters_form("/", filters, choices, None),
        '<div class="table-box"><table class="rows" id="watches"><thead><tr><th>Title</th>'
        "<th>Site</th><th>State</th><th>Tags</th><th>Last change</th></tr></thead><tbody>",
        *(_index_row(r) for r in rows.items),
        "</tbody></table></div>",
    ]
    if not rows.items:
        body.append('<p class="muted">No watches match.</p>')
    body.append(_next_link("/", rows.next_cursor, **_filter_params(filters)))
    return page("Watched articles", "\n".join(body))


def _index_row(row: WatchRow) -> str:
    w = row.watch
    latest = (
        f"{time_tag(row.last_change_at)}<br>{_change_line(row.latest)}"
        if row.latest
        else '<span class="muted">none yet</span>'
    )
    return (
        f'<tr data-state="{esc(row.state)}">'
        f'<td><a href="/articles/{w.id}">{esc(row.title)}</a></td>'
        f"<td>{esc(w.site)}</td>"
        f'<td><span class="state">{esc(row.state)}</span></td>'
        f"<td>{_tags(w.tags)}</td>"
        f"<td>{latest}</td></tr>"
    )


# -- an article -------------------------------------------------------------------------


def render_article(history: ArticleHistory, state: str) -> str:
    watch = history.watch
    titles = [e.version.title for e in history.entries if e.version and e.version.title]
    title = titles[-1] if titles else watch.url
    body = [
        f"<h1>{esc(title)}</h1>",
        _watch_meta(watch, state, len([e for e in history.entries if e.version])),
        "<h2>Versions and changes, newest first</h2>",
        '<ol class="versions" reversed>',
        # numbered by hand: Chromium counts the reports' own list items too
        *(_entry(e, n) for n, e in reversed(list(enumerate(history.entries, 1)))),
        "</ol>",
    ]
    return page(title, "\n".join(body))


def _watch_meta(watch: WatchRecord, state: str, versions: int) -> str:
    return (
        '<dl class="meta">'
        f"<dt>URL</dt><dd>{external_link(watch.url)}</dd>"
        f"<dt>Site</dt><dd>{esc(watch.site)}</dd>"
        f'<dt>State</dt><dd><span class="state">{esc(state)}</span></dd>'
        f"<dt>Tags</dt><dd>{_tags(watch.tags) or '—'}</dd>"
        f"<dt>Versions</dt><dd>{versions}</dd>"
        f"<dt>Last check</dt><dd>{time_tag(watch.last_checked_at)}</dd>"
        "</dl>"
    )


def _entry(entry: HistoryEntry, number: int) -> str:
    report = _report(entry.change, "What changed") if entry.change else ""
    if entry.version is None:
        change = _change_line(entry.change) if entry.change else ""
        return (
            f'<li class="removal" value="{number}"><strong>Taken down</strong> '
            f"{time_tag(entry.at)}<br>{change}"
            f"{report}</li>"
        )
    v = entry.version
    change = (
        f"<br>{_change_line(entry.change)}{report}"
        if entry.change
        else '<br><span class="muted">first capture</span>'
    )
    return (
        f'<li value="{number}"><a href="/versions/{v.id}">Version {v.seq}</a> '
        f"{time_tag(v.captured_at)}"
        f'<br><span class="title">{esc(v.title or "")}</span>{change}</li>'
    )


# -- a version --------------------------------------------------------------------------


def render_version(
    version: VersionRecord,
    watch: WatchRecord,
    article: Article,
    incoming: ChangeRecord | None,
    neighbours: tuple[VersionRecord | None, VersionRecord | None],
) -> str:
    before, after = neighbours
    # an import's time is what its source stated, not when watcher fetched it
    basis = "Captured" if version.time_basis is TimeBasis.CAPTURED else "Stated time"
    nav = [f'<a href="/articles/{watch.id}">All versions</a>']
    if before is not None:
        nav.append(f'<a rel="prev" href="/versions/{before.id}">← Version {before.seq}</a>')
    if after is not None:
        nav.append(f'<a rel="next" href="/versions/{after.id}">Version {after.seq} →</a>')
    meta = (
        '<dl class="meta">'
        f"<dt>Article</dt><dd>{external_link(watch.url)}</dd>"
        f"<dt>Version</dt><dd>{version.seq}</dd>"
        f"<dt>{basis}</dt><dd>{time_tag(version.captured_at)}</dd>"
        f"<dt>HTTP status</dt><dd>{esc(version.http_status or 'imported')}</dd>"
        + (
            f"<dt>Final URL</dt><dd>{external_link(version.final_url)}</dd>"
            if version.final_url and version.final_url != watch.url
            else ""
        )
        + f"<dt>Change</dt><dd>{_change_line(incoming) if incoming else 'first capture'}</dd>"
        "</dl>"
    )
    title = article.title or version.title or watch.url
    since = f"What changed since version {before.seq}" if before else "What changed"
    body = [
        f'<p class="muted">{" · ".join(nav)}</p>',
        f"<h1>{esc(title)}</h1>",
        meta,
        _report(incoming, since) if incoming else "",
        '<article class="snapshot">',
        render_blocks(article.blocks),
        "</article>",
    ]
    return page(f"{title} (version {version.seq})", "\n".join(body))


def render_blocks(blocks: Sequence[Block]) -> str:
    """The article's blocks as HTML; consecutive list items make one list."""
    out: list[str] = []
    in_list = False
    for block in blocks:
        if (block.kind is BlockKind.LIST_ITEM) != in_list:
            out.append("<ul>" if not in_list else "</ul>")
            in_list = not in_list
        out.append(_block(block))
    if in_list:
        out.append("</ul>")
    return "\n".join(out) or '<p class="muted">(no text)</p>'


def _block(block: Block) -> str:
    text = esc(block.text)
    match block.kind:
        case BlockKind.HEADING:
            level = min(max(block.level, 2), 6)
            return f"<h{level}>{text}</h{level}>"
        case BlockKind.LIST_ITEM:
            return f"<li>{text}</li>"
        case BlockKind.QUOTE:
            return f"<blockquote>{text}</blockquote>"
        case BlockKind.TIME:
            return f'<p class="time">{text}</p>'
        case BlockKind.IMAGE:
            return _image(block)
        case BlockKind.MEDIA:
            src = external_link(block.media_src) if block.media_src else ""
            return f'<p class="media">Media: {src} {text}</p>'
        case BlockKind.LINK_LIST:
            links = "".join(f"<li>{external_link(ln.href, ln.text or ln.href)}</li>"
                            for ln in block.links)  # fmt: skip
            return f'<ul class="links">{links}</ul>' if links else f"<p>{text}</p>"
        case _:
            return f"<p>{text}</p>"


def _image(block: Block) -> str:
    """An image as its words and a link: no ``<img>``, so nothing is fetched."""
    image = block.image
    if image is None:
        return f'<figure class="image"><figcaption>Image: {esc(block.text)}</figcaption></figure>'
    words = [w for w in (image.alt, image.caption, image.credit) if w]
    src = image.origin_src or image.src
    link = external_link(src, "image file") if src else ""
    return (
        '<figure class="image"><figcaption>Image'
        + (": " + esc(" · ".join(words)) if words else "")
        + (f" ({link})" if link else "")
        + "</figcaption></figure>"
    )


# -- search -----------------------------------------------------------------------------


def render_search(
    query: str,
    filters: Filters,
    choices: Choices,
    hits: Sequence[tuple[Hit, str]],
    *,
    next_cursor: str | None = None,
    message: str | None = None,
) -> str:
    body = [
        "<h1>Search every version</h1>",
        _filters_form("/search", filters, choices, query),
    ]
    if message:
        body.append(f'<p class="message">{esc(message)}</p>')
    if query and not hits and not message:
        body.append('<p class="muted">No version matches.</p>')
    if hits:
        body += ['<ol class="hits">', *(_hit(h, url) for h, url in hits), "</ol>"]
    body.append(_next_link("/search", next_cursor, q=query, **_filter_params(filters)))
    return page(f"Search: {query}" if query else "Search", "\n".join(body), query=query)


def _hit(hit: Hit, url: str) -> str:
    return (
        f'<li><a href="/versions/{hit.version_id}">{esc(hit.title or url)}</a>'
        f'<br><span class="muted">version {hit.seq} · {time_tag(hit.captured_at)} · '
        f"{external_link(url)}</span>"
        f'<br><span class="snippet">{mark_spans(hit.snippet, hit.marks)}</span></li>'
    )


def render_message(title: str, message: str) -> str:
    """A page that only says something (not found, a bad request)."""
    return page(title, f"<h1>{esc(title)}</h1>\n<p>{esc(message)}</p>")
