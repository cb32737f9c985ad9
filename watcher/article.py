"""Snapshot body HTML -> Article: ordered, typed blocks with resolved times.

The walk is bottom-up: each element yields the blocks of its subtree, and a
small container whose blocks are one image plus a credit and/or a caption is
folded into a single image block. That recognises the BBC layout (image,
"图像来源，Reuters", caption in a sibling div) as well as ``<figure>``
without site-specific rules.

Boilerplate that stays in the stored snapshot (ad slots, empty wrappers,
visually hidden labels) is dropped here, from the parsed view only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment

from watcher import times
from watcher.models import Article, Block, BlockKind, Image, Link, Snapshot, TimeMention

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
MEDIA = {"iframe", "video", "audio", "embed", "object"}
SKIP = {"script", "style", "noscript", "template", "head", "title", "meta", "link", "button",
        "form", "input", "select", "textarea", "svg", "canvas", "source", "track", "param"}  # fmt: skip
INLINE = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i",
          "kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "u",
          "var", "del", "ins", "strike", "tt", "wbr", "label", "nobr"}  # fmt: skip
LEAF_TEXT = {"p", "pre", "dt", "dd", "figcaption", "caption", "address", "summary"}
_BLOCKISH = HEADINGS | MEDIA | LEAF_TEXT | {"div", "ul", "ol", "li", "blockquote", "table",
                                             "section", "figure", "img", "article"}  # fmt: skip
_SPACES = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_AD_RE = re.compile(r"(^|[-_ ])(ad|ads|advert|advertisement|sponsor|promo|mpu|广告|廣告)([-_ ]|$)",
                    re.IGNORECASE)  # fmt: skip
_HIDDEN_RE = re.compile(r"visually-?hidden|sr-only|screen-?reader|offscreen", re.IGNORECASE)
_CREDIT_LABEL = re.compile(
    r"^(图像来源|圖像來源|图片来源|圖片來源|图片提供|圖片提供|Image source|Photo|Source|"
    r"Image copyright|图像版权|圖像版權)\s*[，,:：]\s*",
    re.IGNORECASE,
)
_CAPTION_LABEL = re.compile(r"^(图像加注文字|圖像加註文字|Image caption|Caption)\s*[，,:：]\s*",
                            re.IGNORECASE)  # fmt: skip
_MAX_CAPTION = 400


def normalise_text(text: str) -> str:
    """Visible text as a reader sees it: NBSP, full-width and runs of spaces folded."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def origin_url(src: str) -> str:
    """Unwrap image proxies (images.weserv.nl/?url=…, /_next/image?url=…) to the origin."""
    if "url=" not in src:
        return src
    parts = urlsplit(src)
    inner = parse_qs(parts.query).get("url")
    if not inner:
        return src
    target = inner[0]
    if target.startswith("//"):
        return "https:" + target
    if not re.match(r"^[a-z][a-z0-9+.-]*://", target, re.IGNORECASE):
        return "https://" + target
    return target


def parse_article(snapshot: Snapshot) -> Article:
    """Parse a snapshot into an Article; never raises on odd HTML."""
    walker = _Walker(snapshot.captured_at)
    blocks: list[Block] = []
    if snapshot.body.strip():
        soup = BeautifulSoup(snapshot.body, "lxml")
        for br in soup.find_all("br"):
            br.replace_with("\n")
        blocks = walker.container(_content_root(soup), root=True)
    return Article(
        url=snapshot.url,
        title=normalise_text(snapshot.title),
        captured_at=snapshot.captured_at,
        blocks=tuple(blocks),
        dropped_boilerplate=walker.dropped,
    )


def _content_root(soup: BeautifulSoup) -> Tag:
    """Descend through wrappers that hold everything, so figure folding never
    swallows a whole short article."""
    node: Tag = soup.body or soup
    while True:
        kids = [c for c in node.children if isinstance(c, Tag) and c.name not in SKIP]
        loose = any(
            isinstance(c, NavigableString) and not isinstance(c, Comment) and c.strip()
            for c in node.children
        )
        if len(kids) != 1 or loose or kids[0].name not in {"div", "main", "article", "section"}:
            return node
        node = kids[0]


@dataclass
class _Walker:
    base_ms: int | None
    dropped: int = 0
    _inline: list[Tag | NavigableString] = field(default_factory=list)

    # -- containers -------------------------------------------------------
    def container(self, el: Tag, root: bool = False, quote: bool = False) -> list[Block]:
        blocks: list[Block] = []
        run: list[Tag | NavigableString] = []
        for child in el.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                run.append(child)
                continue
            if not isinstance(child, Tag):
                continue
            if child.name in INLINE and not _has_block_descendant(child):
                run.append(child)
                continue
            if child.name == "time" and not self._is_standalone_time(el):
                run.append(child)
                continue
            blocks.extend(self._flush(run, quote))
            run = []
            blocks.extend(self.element(child, quote))
        blocks.extend(self._flush(run, quote))
        if not root:
            blocks = _fold_figure(blocks)
        return blocks

    def _is_standalone_time(self, parent: Tag) -> bool:
        return parent.name not in LEAF_TEXT and parent.name not in INLINE

    def element(self, el: Tag, quote: bool) -> list[Block]:
        name = el.name
        if name in SKIP:
            return []
        if _is_boilerplate(el):
            self.dropped += 1
            return []
        if name in HEADINGS:
            return self._leaf(el, BlockKind.HEADING, level=int(name[1]))
        if name in LEAF_TEXT:
            return self._leaf(el, BlockKind.QUOTE if quote else BlockKind.PARAGRAPH)
        if name in ("ul", "ol"):
            return self._list(el, quote)
        if name == "li":
            return self._leaf(el, BlockKind.LIST_ITEM)
        if name == "blockquote":
            inner = self.container(el, quote=True)
            return inner
        if name == "figure":
            return _fold_figure(self.container(el), force=True)
        if name == "img":
            return self._image(el)
        if name in MEDIA:
            return [self._media(el)]
        if name == "time":
            return self._time_block(el)
        if name == "table":
            return self._table(el, quote)
        blocks = self.container(el, quote=quote)
        if not blocks:
            self.dropped += 1  # an empty wrapper or slot
        return blocks

    # -- leaves -----------------------------------------------------------
    def _flush(self, run: list[Tag | NavigableString], quote: bool) -> list[Block]:
        if not run:
            return []
        parts = [_scan(n) for n in run]
        text = normalise_text("".join(p.text for p in parts))
        images = [b for p in parts for img in p.images for b in self._image(img)]
        if not text:
            return images
        links = [lk for p in parts for lk in p.links]
        time_els = [t for p in parts for t in p.times]
        kind = BlockKind.QUOTE if quote else BlockKind.PARAGRAPH
        return [self._make_text_block(kind, text, links, time_els), *images]

    def _leaf(self, el: Tag, kind: BlockKind, level: int = 0) -> list[Block]:
        """A paragraph-like element; images and media inside it become blocks of their own."""
        if _HIDDEN_RE.search(_attr(el, "class")):
            self.dropped += 1
            return []
        scan = _scan(el)
        text = normalise_text(scan.text)
        blocks = [self._make_text_block(kind, text, scan.links, scan.times, level)] if text else []
        blocks += [b for img in scan.images for b in self._image(img)]
        blocks += [self._media(m) for m in scan.media]
        return blocks

    def _make_text_block(
        self, kind: BlockKind, text: str, links: list[Link], time_els: list[Tag], level: int = 0
    ) -> Block:
        mentions: list[TimeMention] = []
        stable = text
        for t in time_els:
            mention = self._resolve_time_el(t)
            mentions.append(mention)
            if mention.relative and mention.text:
                stable = stable.replace(mention.text, times.MASK)
        found = times.find_relative(stable)
        if found:
            mentions.extend(times.resolve_relative(m, self.base_ms) for m in found)
            stable = times.mask_relative(stable)
        return Block(kind, text, stable, tuple(links), tuple(mentions), level=level)

    def _resolve_time_el(self, el: Tag) -> TimeMention:
        attr = el.get("datetime") or el.get("dateTime")
        text = normalise_text(el.get_text())
        return times.resolve_time_element(
            text, attr if isinstance(attr, str) else None, self.base_ms
        )

    def _time_block(self, el: Tag) -> list[Block]:
        mention = self._resolve_time_el(el)
        if not mention.text and not mention.datetime_attr:
            return []
        stable = (
            times.TIME_ELEMENT_RE.sub(times.MASK, mention.text)
            if mention.relative
            else mention.text
        )
        return [Block(BlockKind.TIME, mention.text, stable, times=(mention,))]

    def _list(self, el: Tag, quote: bool) -> list[Block]:
        items = [c for c in el.children if isinstance(c, Tag) and c.name == "li"]
        if items and all(_is_link_only(li) for li in items):
            links = [lk for li in items for lk in _links(li)]
            text = " | ".join(lk.text for lk in links)
            return [Block(BlockKind.LINK_LIST, text, text, tuple(links))]
        return self.container(el, quote=quote)

    def _table(self, el: Tag, quote: bool) -> list[Block]:
        blocks: list[Block] = []
        for row in el.find_all("tr"):
            cells = [_scan(c) for c in row.find_all(["td", "th"])]
            text = " | ".join(t for c in cells if (t := normalise_text(c.text)))
            if text:
                kind = BlockKind.QUOTE if quote else BlockKind.PARAGRAPH
                links = [lk for c in cells for lk in c.links]
                times_ = [t for c in cells for t in c.times]
                blocks.append(self._make_text_block(kind, text, links, times_))
        return blocks

    def _image(self, el: Tag) -> list[Block]:
        src = _attr(el, "src") or _attr(el, "data-src") or _first_srcset(el)
        if not src or src.startswith("data:"):
            return []
        alt = normalise_text(_attr(el, "alt"))
        image = Image(src=src, origin_src=origin_url(src), alt=alt)
        return [_image_block(image)]

    def _media(self, el: Tag) -> Block:
        src = _attr(el, "src") or _attr(el, "data") or ""
        if not src and (source := el.find("source")) is not None:
            src = _attr(source, "src")
        title = normalise_text(_attr(el, "title") or el.get_text())
        return Block(BlockKind.MEDIA, title, f"{src} {title}".strip(), media_src=src)


def _image_block(image: Image) -> Block:
    text = image.caption or image.alt
    stable = f"{image.origin_src} {image.alt} {image.caption} {image.credit}"
    return Block(BlockKind.IMAGE, text, stable, image=image)


def _fold_figure(blocks: list[Block], force: bool = False) -> list[Block]:
    """One image followed by up to two short text blocks (credit, caption)
    inside one small container is a figure: fold them into the image."""
    if not blocks or blocks[0].kind is not BlockKind.IMAGE or len(blocks) > 3:
        return blocks
    rest = blocks[1:]
    if not rest or any(
        b.kind not in (BlockKind.PARAGRAPH, BlockKind.QUOTE) or len(b.text) > _MAX_CAPTION
        for b in rest
    ):
        return blocks
    image = blocks[0].image
    assert image is not None
    caption, credit = image.caption, image.credit
    for b in rest:
        if (m := _CREDIT_LABEL.match(b.text)) and not credit:
            credit = b.text[m.end() :]
        elif not caption:
            caption = _CAPTION_LABEL.sub("", b.text)
        else:
            return blocks
    if not force and not credit and caption != image.alt and len(rest) == 1:
        # A lone short paragraph after an image is only a caption when it
        # repeats the alt text or sits in a real <figure>; otherwise it is content.
        return blocks
    folded = Image(image.src, image.origin_src, image.alt, caption, credit)
    return [_image_block(folded)]


@dataclass
class _Scan:
    """What one pass over an element's subtree finds: text, links, times, images."""

    text: str = ""
    links: list[Link] = field(default_factory=list)
    times: list[Tag] = field(default_factory=list)
    images: list[Tag] = field(default_factory=list)
    media: list[Tag] = field(default_factory=list)


def _scan(node: Tag | NavigableString) -> _Scan:
    """Walk a subtree once (bs4's find_all is costly per call on hot paths)."""
    scan = _Scan()
    if isinstance(node, NavigableString):
        scan.text = "" if isinstance(node, Comment) else str(node)
        return scan
    chunks: list[str] = []
    nodes = [node, *node.descendants]
    skip_under: Tag | None = None
    for item in nodes:
        if skip_under is not None:
            if _is_inside(item, skip_under):
                continue
            skip_under = None
        if isinstance(item, NavigableString):
            if not isinstance(item, Comment):
                chunks.append(str(item))
            continue
        if not isinstance(item, Tag):
            continue
        name = item.name
        if name in SKIP:
            skip_under = item
        elif name == "a" and (href := _attr(item, "href")):
            scan.links.append(Link(href=href, text=normalise_text(item.get_text())))
        elif name == "time":
            scan.times.append(item)
        elif name == "img":
            scan.images.append(item)
        elif name in MEDIA:
            scan.media.append(item)
    scan.text = "".join(chunks)
    return scan


def _is_inside(item: object, ancestor: Tag) -> bool:
    parent = getattr(item, "parent", None)
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def _links(el: Tag) -> list[Link]:
    return _scan(el).links


def _is_link_only(li: Tag) -> bool:
    scan = _scan(li)
    if not scan.links:
        return False
    return normalise_text(scan.text) == normalise_text("".join(lk.text for lk in scan.links))


def _has_block_descendant(el: Tag) -> bool:
    return any(isinstance(d, Tag) and d.name in _BLOCKISH for d in el.descendants)


def _attr(el: Tag, name: str) -> str:
    value = el.get(name)
    if isinstance(value, list):
        return " ".join(value)
    return value or ""


def _first_srcset(el: Tag) -> str:
    srcset = _attr(el, "srcset") or _attr(el, "srcSet")
    return srcset.split(",")[0].strip().split(" ")[0] if srcset else ""


def _is_boilerplate(el: Tag) -> bool:
    """Ad slots and screen-reader-only labels: kept in the snapshot, not content."""
    if el.get("data-e2e") == "advertisement":
        return True
    label = _attr(el, "aria-label")
    if label and _AD_RE.search(label):
        return True
    ident = f"{_attr(el, 'id')} {_attr(el, 'class')}"
    if ident.strip() and (_AD_RE.search(ident) or _HIDDEN_RE.search(ident)):
        return True
    return el.get("aria-hidden") == "true" and el.name in ("section", "aside", "div")
