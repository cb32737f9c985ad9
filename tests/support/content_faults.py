"""What a 200 can carry instead of the article: the pages of the content fault
matrix (issue 10), shared by tests/test_faults_content.py and
bench/bench_faults_content.py.

Each :class:`ContentFault` installs its answer at an article's path on a
:class:`LocalServer` (after the article's first version was stored) and says
what one check must record: the outcome, and a phrase of the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.support.http_server import LocalServer, Request
from tests.support.newsroom import SEED as SEED_PATH
from tests.support.newsroom import Newsroom
from watcher import snapshot

SEED = snapshot.read(SEED_PATH)  # the seed article (BBC), served by the newsroom

PARAGRAPH = "本次会晤由拜登总统发起，双方的开场白向外界公开，之后双方进入闭门会议。"
LEAD = "预计将持续数个小时。"
FOREIGN_ARTICLE = SEED.url  # another site's article (bbc.com): never fetched


def seed_page(url: str = "", **changes: str) -> str:
    """The seed article as the newsroom serves it at ``url``, with text replaced."""
    page = Newsroom(title=SEED.title, main=SEED.body, url=url).page()
    for old, new in changes.items():
        assert old in page, old
        page = page.replace(old, new)
    return page


def pdf() -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 47  # 12 KB


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x01\x02\x03" * 700


def deep(html: str, depth: int = 20_000) -> str:
    """``html`` with its <main> content nested ``depth`` <div>s deep."""
    html = html.replace('<main role="main">', '<main role="main">' + "<div>" * depth, 1)
    return html.replace("</main>", "</div>" * depth + "</main>", 1)


def refresh(target: str, delay: str = "0") -> str:
    return (
        f'<html><head><meta http-equiv="refresh" content="{delay}; url={target}">'
        "<title>Redirecting…</title></head><body><p>Redirecting…</p></body></html>"
    )


def front_page(canonical: str | None = None, links: int = 30) -> str:
    """A site's front page: a list of links to many articles."""
    head = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    items = "".join(
        f'<li><a href="/zhongwen/simp/world-{60000000 + i}">要闻第{i}条：各地新闻动态与评论</a></li>'
        for i in range(links)
    )
    return (
        f"<html><head><title>BBC News 中文 - 首页</title>{head}</head><body>"
        f"<main><h1>BBC News 中文</h1><ul>{items}</ul></main></body></html>"
    )


def headlines_page(canonical: str) -> str:
    """A front page of headlines with summaries (few links), canonical at the root."""
    return (
        f'<html><head><title>BBC News 中文</title><link rel="canonical" href="{canonical}">'
        "</head><body><main><h2>今日要闻</h2><p>各地新闻动态：天气晴朗，交通顺畅，市场平稳。</p>"
        "<h2>评论</h2><p>专家认为经济形势总体向好。</p></main></body></html>"
    )


SOFT_404 = {
    "zh-hans": (
        "<html><head><title>页面不存在 - BBC News 中文</title></head><body><main>"
        "<h1>抱歉，您访问的页面不存在</h1><p>可能已被删除或移动。</p>"
        '<p><a href="/zhongwen/simp">返回首页</a></p></main></body></html>'
    ),
    "zh-hant": (
        "<html><head><title>BBC News 中文</title></head><body><main>"
        "<p>對不起，頁面不存在。</p></main></body></html>"
    ),
    "english-404": (
        "<html><head><title>404 - Page Not Found</title></head><body><main>"
        "<h1>Sorry, we couldn't find that page</h1><p>Try the search box or go home.</p>"
        '<ul><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li></ul>'
        "</main></body></html>"
    ),
}

# -- legacy encodings ----------------------------------------------------------------
PAGES = {
    "gbk": (
        "拜登和习近平视像会晤开始",
        "本次会晤由拜登总统发起，双方的开场白向外界公开，之后双方进入闭门会议。中国国家主席习近平"
        "表示，中美应该相互尊重、和平共处、合作共赢。外界对会晤可能达成的成果期待不高。",
    ),
    "big5": (
        "總統府發表聲明",
        "總統府今天發表聲明，表示將持續關注兩岸關係的發展，並呼籲各方保持克制。發言人說，政府會與"
        "國際社會合作，維護區域和平穩定，也會持續推動經濟發展與民主深化。",
    ),
    "shift_jis": (
        "政府が新しい経済対策を発表",
        "政府は本日、新しい経済対策を発表しました。首相は記者会見で、物価高への対応を急ぐ考えを"
        "示しました。野党はこの対策について、効果が不十分だと批判しています。",
    ),
}
WRONG = {"gbk": "shift_jis", "big5": "gbk", "shift_jis": "gbk"}
DECLARATIONS = ["none", "header", "meta", "wrong-header-utf8", "wrong-meta", "wrong-header-latin1"]


def cjk_page(codec: str, meta: str = "") -> str:
    title, text = PAGES[codec]
    paragraphs = "".join(f"<p>{text[i:]}{text[:i]}</p>" for i in range(0, 60, 12))
    return (
        f"<!doctype html><html><head>{meta}<title>{title}</title></head><body><main>"
        f"<h1>{title}</h1>{paragraphs}</main></body></html>"
    )


def declared(codec: str, declaration: str) -> tuple[str, str]:
    """(page, Content-Type) for one way of declaring (or mis-declaring) ``codec``."""
    if declaration == "header":
        return cjk_page(codec), f"text/html; charset={codec}"
    if declaration == "meta":
        return cjk_page(codec, f'<meta charset="{codec}">'), "text/html"
    if declaration == "wrong-header-utf8":
        return cjk_page(codec), "text/html; charset=utf-8"
    if declaration == "wrong-header-latin1":
        return cjk_page(codec), "text/html; charset=iso-8859-1"
    if declaration == "wrong-meta":
        return cjk_page(codec, f'<meta charset="{WRONG[codec]}">'), "text/html"
    return cjk_page(codec), "text/html"


# -- the matrix ----------------------------------------------------------------------
Install = Callable[[LocalServer, str, str], None]
"""Put an answer at ``path`` of the site; the article's URL is the third argument."""


@dataclass(frozen=True, slots=True)
class ContentFault:
    name: str
    install: Install
    outcome: str  # the check's outcome: error, gone, new_version, unchanged
    reason: str = ""  # a phrase of the reason the check records
    status: int | None = 200  # the HTTP status the check records (None: no answer)
    first: Install | None = None  # version 1, when it is not the seed article


def _page(body: str | bytes, content_type: str = "text/html; charset=utf-8") -> Install:
    return lambda site, path, url: site.page(path, body, content_type=content_type)


def _seed(**changes: str) -> Install:
    return lambda site, path, url: site.page(path, seed_page(url, **changes))


def _seed_bytes(edit: Callable[[bytes], bytes], content_type: str = "text/html") -> Install:
    return lambda site, path, url: site.page(
        path, edit(seed_page(url).encode()), content_type=content_type
    )


def _cut_on_the_wire(site: LocalServer, path: str, url: str) -> None:
    page = seed_page(url).encode()

    def serve(req: Request) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Length", str(len(page)))
        req.end_headers()
        req.wfile.write(page[: len(page) // 3])
        req.wfile.flush()
        req.hang_up()

    site.route(path, serve)


def _refresh_to(target: str, page: Callable[[str], str]) -> Install:
    def install(site: LocalServer, path: str, url: str) -> None:
        site.page(target, page(site.url(target)))
        site.page(path, refresh(target))

    return install


def _insert_before(marker: bytes, junk: bytes) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        at = raw.index(marker)
        return raw[:at] + junk + raw[at:]

    return edit


def _no_main() -> str:
    paragraphs = "".join(
        f"<p>{PARAGRAPH}第{i}段，外界对会晤可能达成的成果期待不高，双方将继续沟通。</p>"
        for i in range(8)
    )
    return (
        '<html><head><meta charset="utf-8"><title>拜登和习近平视像会晤</title></head><body>'
        '<div class="nav"><a href="/">首页</a> <a href="/news">新闻</a></div>'
        f'<div class="story-body"><h1>拜登和习近平视像会晤</h1>{paragraphs}</div>'
        '<div class="footer">© BBC</div></body></html>'
    )


def _encoded(codec: str, declaration: str) -> ContentFault:
    page, content_type = declared(codec, declaration)
    return ContentFault(
        f"{codec}-{declaration}",
        _page(page.encode(codec), content_type),
        "unchanged",
        first=_page(cjk_page(codec)),
    )


def _fake_canonical(site: LocalServer, path: str, url: str) -> None:
    page = seed_page(url, **{LEAD: "预计将持续约三个小时。（伪造）"})
    site.page(path, page.replace(f'href="{url}"', f'href="{FOREIGN_ARTICLE}"'))


def _surrogates(site: LocalServer, path: str, url: str) -> None:
    """Lone surrogates three ways: JSON-LD escapes, a character reference, and
    the UTF-8 encoding of a surrogate."""
    page = seed_page(url, **{"</head>": SURROGATE_LD, LEAD: LEAD[:4] + "&#xD800;" + LEAD[4:]})
    site.page(path, _insert_before(PARAGRAPH.encode(), b"\xed\xa0\x80")(page.encode()))


def _status(status: int) -> Install:
    return lambda site, path, url: site.page(path, "busy", status=status)


LONG_TITLE = "很长的标题" * 200_000  # a million characters
SURROGATE_LD = (
    '<script type="application/ld+json">'
    '{"@type": "NewsArticle", "headline": "会晤\\ud800开始", "author": {"name": "BBC\\udc00"}}'
    "</script></head>"
)

FAULTS: list[ContentFault] = [
    # what a 200 can be
    ContentFault("pdf", _page(pdf(), "application/pdf"), "error", "application/pdf (12 KB)"),
    ContentFault("image", _page(png(), "image/png"), "error", "not an article: image/png"),
    ContentFault(
        "text-plain",
        _page("美国总统拜登与中国国家主席习近平开始视频会晤。\n" * 20, "text/plain"),
        "error",
        "not an article: text/plain",
    ),
    ContentFault("empty-body", _page(b""), "error", "not an article: empty body"),
    ContentFault(
        "truncated-in-head",
        _page(b'<!doctype html><html><head><meta charset="utf-8"><title>\xe6\x8b\x9c'),
        "error",
        "no article text",
    ),
    ContentFault(
        "script-only-shell",
        _page("<html><body><div id=root></div><script>render()</script></body></html>"),
        "error",
        "no article text",
    ),
    ContentFault("cut-on-the-wire", _cut_on_the_wire, "error", "", status=None),
    # odd HTML
    ContentFault("no-main-or-article", _page(_no_main()), "new_version"),
    ContentFault(
        "deep-20000",
        lambda site, path, url: site.page(path, deep(seed_page(url))),
        "new_version",
    ),
    ContentFault(
        "nul-bytes", _seed(**{PARAGRAPH: PARAGRAPH[:5] + "\x00" + PARAGRAPH[5:]}), "unchanged"
    ),
    ContentFault(
        "invalid-utf8",
        _seed_bytes(_insert_before(PARAGRAPH.encode(), b"\xff\xfe\xc3")),
        "new_version",
    ),
    ContentFault("lone-surrogates", _surrogates, "new_version"),
    # encodings
    *(_encoded(codec, d) for codec in PAGES for d in DECLARATIONS),
    # codecs that are no charset
    ContentFault(
        "charset=base64",
        lambda site, path, url: site.page(
            path, seed_page(url), content_type="text/html; charset=base64"
        ),
        "unchanged",
    ),
    ContentFault(
        "charset=idna",
        lambda site, path, url: site.page(
            path, seed_page(url), content_type="text/html; charset=idna"
        ),
        "unchanged",
    ),
    ContentFault(
        "meta-rot13", _seed(**{'<meta charset="utf-8">': '<meta charset="rot13">'}), "unchanged"
    ),
    # title, refresh, soft 404, front page
    ContentFault(
        "1mb-title",
        _seed(
            **{
                f'<meta property="og:title" content="{SEED.title}">': "",
                "<title>": f"<title>{LONG_TITLE}",
            }
        ),
        "new_version",
    ),
    ContentFault(
        "meta-refresh-moved",
        _refresh_to("/moved", seed_page),
        "new_version",
    ),
    ContentFault(
        "meta-refresh-to-front",
        _refresh_to("/", lambda url: front_page()),
        "gone",
        "front page",
    ),
    *(ContentFault(f"soft-404-{k}", _page(v), "gone", "soft 404") for k, v in SOFT_404.items()),
    ContentFault(
        "front-page-canonical-root",
        lambda site, path, url: site.page(path, headlines_page(site.url("/"))),
        "gone",
        "front page",
    ),
    ContentFault("front-page-link-list", _page(front_page()), "gone", "front page"),
    # canonical poisoning: stored under its own address, an edit of its own article
    ContentFault("foreign-canonical", _fake_canonical, "new_version"),
    # error statuses
    ContentFault("http-429", _status(429), "error", "HTTP 429", status=429),
    ContentFault("http-503", _status(503), "error", "HTTP 503", status=503),
]
