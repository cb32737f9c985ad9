"""Archived text made inert HTML, links, times, and the page shell (pure).

Titles, page text and URLs come from strangers: every one passes through
:func:`esc` (HTML-escaped, control and bidi characters made visible by
:mod:`watcher.safetext`'s rule), and a URL becomes a link only when a browser
would read it as http or https (:mod:`watcher.safeurl`); ``javascript:`` and
every other scheme stay plain text. The CSP the app sends admits only this
server's stylesheet and script, so even markup that slipped through could
neither run nor fetch anything.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import urlencode

from watcher.outputs.site import TIME_JS
from watcher.safetext import UNSAFE_CHARS, escape_unsafe
from watcher.safeurl import WEB_SCHEMES, browser_url, scheme

STYLE_PATH = "/static/style.css"
SCRIPT_PATH = "/static/local-time.js"

STYLE = """
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--muted:#6b6b70;--line:#e2e2e6;
--accent:#0a58ca;--mark:#fff2a8;--bad:#a3141b;
--del-fg:#a3141b;--del-bg:#fde8e8;--ins-fg:#0c6b25;--ins-bg:#e2f6e6}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ea;--bg:#151517;--muted:#a0a0a8;
--line:#34343a;--accent:#7fb2ff;--mark:#5a4d00;--bad:#ff9b9b;
--del-fg:#ff9b9b;--del-bg:#4a1d20;--ins-fg:#8fe3a3;--ins-bg:#163a22}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.65 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"PingFang SC","Hiragino Sans GB","Noto Sans CJK SC",
"Microsoft YaHei","Noto Sans",sans-serif}
header.top{border-bottom:1px solid var(--line);padding:.5rem 1rem;display:flex;flex-wrap:wrap;
gap:.5rem 1rem;align-items:center}
header.top a{margin-right:1rem}
header.top form{display:flex;gap:.4rem;flex:1 1 14rem;min-width:0}
main{max-width:64rem;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.5rem;line-height:1.35;margin:.5rem 0}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem;border-bottom:1px solid var(--line)}
h1,h2,h3,h4,h5,h6,p,li,dd,td,th,a,blockquote,figcaption,.url,.snippet{overflow-wrap:anywhere}
a{color:var(--accent)}
.muted,.when{color:var(--muted);font-size:.92em}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem 1rem;margin:1rem 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;min-width:0}
input,select,button{font:inherit;max-width:100%;min-width:0}
input[type=search]{flex:1 1 auto;padding:.25rem .5rem}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0 1rem}
form.filters label{display:flex;gap:.3rem;align-items:center;max-width:100%}
.table-box{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.94em}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600}
.tag,.state,.kind{display:inline-block;font-size:.85em;border:1px solid var(--line);
border-radius:4px;padding:0 .35rem;margin:0 .2rem .1rem 0}
.verdict-significant{color:var(--bad);font-weight:600}
.kind.noise{color:var(--muted);border-style:dashed}
ol.versions,ol.hits{padding-left:1.25rem}
ol.versions li,ol.hits li{margin:0 0 1rem}
mark{background:var(--mark);color:inherit}
article.snapshot{border-top:1px solid var(--line);margin-top:1rem}
article.snapshot blockquote{margin:1rem 0;padding-left:1rem;border-left:3px solid var(--line)}
figure.image,p.media{margin:1rem 0;padding:.5rem .75rem;border:1px dashed var(--line);
border-radius:6px}
figure.image figcaption{font-size:.92em}
p.time{color:var(--muted)}
nav.pages{margin:1.5rem 0}
details.report{margin:.4rem 0 0}details.report>summary{cursor:pointer;color:var(--accent)}
.change-report{border-left:3px solid var(--line);padding:.1rem 0 .1rem .8rem;margin:.4rem 0}
.change-report dl{display:grid;grid-template-columns:max-content minmax(0,1fr);
gap:.1rem 1rem;margin:.25rem 0 .5rem;font-size:.92em}
.change-report dt{color:var(--muted)}.change-report dd{margin:0;min-width:0}
.change-report h4{font-size:1rem;margin:.5rem 0 .2rem}
ol.items{padding-left:1.25rem;margin:.25rem 0}li.item{margin:0 0 .75rem}
.loc,.detail,.label{color:var(--muted);font-size:.9em}.label{margin-right:.5em}
.text{white-space:pre-wrap;overflow-wrap:anywhere;margin:.2rem 0}
.line-before{border-left:3px solid var(--del-fg);padding-left:.6rem}
.line-after{border-left:3px solid var(--ins-fg);padding-left:.6rem}
del{color:var(--del-fg);background:var(--del-bg);text-decoration:line-through}
ins{color:var(--ins-fg);background:var(--ins-bg);text-decoration:underline}
.change-report .verdict{font-weight:600;text-transform:uppercase}
.change-report .verdict-none{color:var(--ins-fg)}
.change-report details.noise{margin:.5rem 0}
@media (max-width:40rem){
table.rows thead{display:none}
table.rows,table.rows tbody,table.rows tr,table.rows td{display:block;width:100%}
table.rows tr{border-bottom:1px solid var(--line);padding:.4rem 0}
table.rows td{border:0;padding:.1rem 0}
}
"""

# The report site's time script: local time with its zone named, UTC on
# hover. Served as a file: the CSP admits script from this server only.
SCRIPT = TIME_JS


def esc(value: object) -> str:
    """Archived text as inert HTML: markup escaped, control and bidi characters shown."""
    return html.escape(escape_unsafe(str(value)), quote=True)


def safe_href(url: str) -> str | None:
    """The URL a reader may follow (http/https, read as a browser reads an
    href), else None."""
    href = browser_url(url)
    if (
        scheme(href) not in WEB_SCHEMES
        or UNSAFE_CHARS.search(href)
        or any(c.isspace() for c in href)
    ):
        return None
    return href


def external_link(url: str, text: str | None = None) -> str:
    """A link out for an http(s) URL; any other scheme (javascript:, data:) as text."""
    href = safe_href(url)
    shown = esc(url if text is None else text)
    if href is None:
        return f'<span class="url">{shown}</span>'
    return f'<a class="url" href="{esc(href)}" rel="noopener noreferrer nofollow">{shown}</a>'


def local_url(path: str, **params: object) -> str:
    """A link on this server: ``path`` with the non-empty ``params`` as a query."""
    query = urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return esc(f"{path}?{query}" if query else path)


def iso_time(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC (``2026-01-05T09:00:00Z``); None stays None."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def time_tag(ms: int | None) -> str:
    """A ``<time>`` in UTC (the script shows local time instead)."""
    stamp = iso_time(ms)
    if stamp is None:
        return '<span class="when">unknown</span>'
    shown = stamp.replace("T", " ").removesuffix("Z") + " UTC"
    return f'<time class="when" datetime="{stamp}">{shown}</time>'


def mark_spans(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    """``text`` escaped piece by piece, the ``spans`` in ``<mark>``: escape
    first, then mark, so a match never becomes markup."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out += [esc(text[pos:start]), "<mark>", esc(text[start:end]), "</mark>"]
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def page(title: str, body: str, *, query: str = "") -> str:
    """A whole page: this server's stylesheet and script, a search box, ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)} · watcher</title>\n"
        f'<link rel="stylesheet" href="{STYLE_PATH}">\n'
        f'<script src="{SCRIPT_PATH}" defer></script>\n'
        "</head>\n<body>\n"
        '<header class="top"><nav><a href="/">Watches</a><a href="/search">Search</a></nav>'
        '<form role="search" action="/search" method="get">'
        f'<input type="search" name="q" value="{esc(query)}" aria-label="Search every version"'
        ' placeholder="Search every version">'
        '<button type="submit">Search</button></form></header>\n'
        f"<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )
