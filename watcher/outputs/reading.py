"""An article as it read at one version, as inert HTML: from its parsed blocks,
never from the archived page.

Rebuilding from blocks (headings, paragraphs, list items, quotes, images,
times, link lists, media) means nothing of the archived markup reaches the
reader: every string goes through the report module's escaping, links only
where the scheme is http(s), and images are named and linked, never loaded
(a page that loads nothing from the news site tells that site nothing).
The report site's version pages and the live web UI both show this.
"""

from __future__ import annotations

from watcher.models import Article, Block, BlockKind
from watcher.report import html_escape, html_link

#: Styles of the rendered article (added to the page's stylesheet).
READING_CSS = """
article.version{max-width:42rem}
article.version h2{margin:1.4rem 0 .4rem}
article.version p{line-height:1.7;margin:0 0 .9rem}
article.version blockquote{margin:0 0 .9rem;padding-left:.9rem;border-left:3px solid var(--line)}
article.version figure{margin:0 0 .9rem;padding:.5rem .7rem;border:1px dashed var(--line)}
article.version figcaption,article.version .time{color:var(--muted);font-size:.9em}
"""


def render_article_html(article: Article) -> str:
    """The blocks of ``article`` as an ``<article>`` element (everything escaped)."""
    parts = [f'<article class="version" lang="{_language(article)}">']
    items: list[str] = []  # consecutive list items become one <ul>
    for block in article.blocks:
        if block.kind is BlockKind.LIST_ITEM:
            items.append(f"<li>{html_escape(block.text)}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        parts.append(_block(block))
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    if not article.blocks:
        parts.append('<p class="muted">This version has no article text.</p>')
    parts.append("</article>")
    return "\n".join(parts)


def _block(block: Block) -> str:
    text = html_escape(block.text)
    if block.kind is BlockKind.HEADING:
        level = min(max(block.level, 2), 6)  # the page's own <h1> is the title
        return f"<h{level}>{text}</h{level}>"
    if block.kind is BlockKind.QUOTE:
        return f"<blockquote><p>{text}</p></blockquote>"
    if block.kind is BlockKind.IMAGE and block.image is not None:
        image = block.image
        words = image.caption or image.alt
        credit = f" ({html_escape(image.credit)})" if image.credit else ""
        caption = (
            f"<figcaption>{html_escape(words)}{credit}</figcaption>" if words or credit else ""
        )
        return f"<figure>[image] {html_link(image.origin_src)}{caption}</figure>"
    if block.kind is BlockKind.TIME:
        return f'<p class="time">{text}</p>'
    if block.kind is BlockKind.LINK_LIST:
        links = "".join(
            f"<li>{html_escape(link.text)} — {html_link(link.href)}</li>" for link in block.links
        )
        return f"<ul>{links}</ul>"
    if block.kind is BlockKind.MEDIA:
        src = html_link(block.media_src) if block.media_src else ""
        return f"<figure>[media] {src} {text}</figure>"
    return f"<p>{text}</p>"


def _language(article: Article) -> str:
    """A lang attribute good enough for line breaking and fonts: CJK or not."""
    sample = "".join(b.text for b in article.blocks[:5])[:400]
    cjk = sum(1 for ch in sample if "\u3400" <= ch <= "\u9fff")
    return "zh" if cjk > len(sample) // 4 else "und"
