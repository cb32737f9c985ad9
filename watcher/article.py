"""Snapshot body HTML -> Article: ordered, typed blocks with resolved times.

The body is parsed with lxml's HTML parser (libxml2) and the element tree is
walked directly. This used to go through BeautifulSoup with the same lxml
parser underneath; building bs4's tree and walking its Python objects was
most of the cost (median ~3 ms per corpus snapshot, 4–5 ms on larger BBC
pages on a 2-core machine), while libxml2 builds the same tree in C: walking
it directly measured ~1.1 ms median (bench/bench_parse.py), same output. Text
follows lxml's model: an element's ``.text`` comes before its first child and
the text after it is its ``.tail``. ``<br>`` is read as a newline.

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
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from lxml import etree

from watcher import times
from watcher.imageid import origin_url
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
_BLOCKISH_TAGS = tuple(_BLOCKISH)
_SCAN_OR_SKIP_TAGS = ("a", "time", "img", *MEDIA, *SKIP)
# HTML void elements libxml2 does not know as void: it nests what follows them
# inside them (``<picture><source><img></picture>`` puts the <img> in <source>,
# which is skipped), so the tree is mended after parsing (_unnest).
_UNKNOWN_VOID = ("source", "track", "embed", "wbr", "keygen")
# Text inside these is not "visible text" of an enclosing link, time or media
# element (ruby annotations, code); bs4's get_text() left it out the same way.
_NOT_TEXT = {"rt", "rp", "script", "style", "template"}
_NOT_TEXT_TAGS = tuple(_NOT_TEXT)
# Below this many nested containers the rest of a subtree is read as one
# paragraph, so pathological nesting cannot exhaust the Python stack.
_MAX_DEPTH = 200
# libxml2 stops building a tree 2048 elements deep; past that the page is
# rebuilt from parse events with deeper elements left out.
_MAX_TREE_DEPTH = 1000
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

# An lxml element, or a run of text (an element's .text or .tail).
_Node = etree._Element | str


def normalise_text(text: str) -> str:
    """Visible text as a reader sees it: NBSP, full-width and runs of spaces folded."""
    # str.split() splits on exactly the Unicode spaces (NBSP, U+3000, U+2000–U+200A,
    # …), and is several times faster than a regex substitution on this hot path.
    return " ".join(_INVISIBLE.sub("", text).split())


def parse_article(snapshot: Snapshot) -> Article:
    """Parse a snapshot into an Article; never raises on odd HTML."""
    walker = _Walker(snapshot.captured_at)
    blocks: list[Block] = []
    root = _parse_html(snapshot.body) if snapshot.body.strip() else None
    if root is not None:
        body = next(root.iter("body"), None)
        if body is None:
            # Everything went to <head> (a lone <script>, <style>, <title>):
            # walk the document itself, which holds just <html>.
            blocks = walker.children(None, (root,), root=True)
        else:
            blocks = walker.container(_content_root(body), root=True)
    return Article(
        url=snapshot.url,
        title=normalise_text(snapshot.title),
        captured_at=snapshot.captured_at,
        blocks=tuple(blocks),
        dropped_boilerplate=walker.dropped,
    )


_local = threading.local()


def _parser() -> etree.HTMLParser:
    """One parser per thread: an lxml parser serialises the threads sharing it.
    ``huge_tree`` lifts libxml2's nesting limit (256), past which it stops
    parsing and drops the rest of the page; comments never carry content."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            huge_tree=True, remove_comments=True, remove_pis=True
        )
    return parser


def _parse_html(body: str) -> etree._Element | None:
    """The document's <html> element, or None when there is nothing to parse."""
    if body.startswith("\ufeff"):
        body = body[1:]
    parser = _parser()
    try:
        try:
            root = etree.fromstring(body, parser)
            last = parser.error_log.last_error
            complete = last is None or last.level != etree.ErrorLevels.FATAL
        except ValueError:  # str input with an XML encoding declaration
            complete = False
        if not complete:
            # libxml2 gave up part way and dropped the rest of the page
            # (nesting deeper than it builds trees for, a lone surrogate it
            # cannot decode). Parse UTF-8 bytes and build the tree from the
            # parse events instead.
            capped = etree.HTMLParser(target=_CappedTree(), encoding="utf-8", huge_tree=True)
            root = etree.fromstring(body.encode("utf-8", "replace"), capped)
    except (etree.LxmlError, ValueError):
        return None
    if root is None:
        return None
    brs: list[etree._Element] = []
    for el in list(root.iter("br", *_UNKNOWN_VOID)):
        if el.tag == "br":
            brs.append(el)
        elif len(el) or el.text:
            _unnest(el)
    if brs:
        # A line break is a newline in the text, as it reads.
        for br in brs:
            br.tail = "\n" + br.tail if br.tail else "\n"
        etree.strip_tags(root, "br")
    return root


def _unnest(el: etree._Element) -> None:
    """Give back to the parent what libxml2 nested inside a void element:
    its text and children follow it again, in the same order."""
    parent = el.getparent()
    if parent is None:
        return
    kids = list(el)
    text, tail = el.text, el.tail
    el.text = None
    el.tail = text
    at = parent.index(el)
    for offset, kid in enumerate(kids, start=1):
        parent.insert(at + offset, kid)  # moves it, with its tail
    last = kids[-1] if kids else el
    if tail:
        last.tail = (last.tail or "") + tail


class _CappedTree:
    """Parser target building the same tree as the parser itself, except that
    elements nested deeper than _MAX_TREE_DEPTH are left out (their text is kept).
    The parameter types are lxml's ``ParserTarget`` protocol (an HTML parser
    passes str)."""

    def __init__(self) -> None:
        self._builder = etree.TreeBuilder()
        self._depth = 0

    def start(self, tag: str | bytes, attrib: dict[str | bytes, str | bytes]) -> None:
        self._depth += 1
        if self._depth <= _MAX_TREE_DEPTH:
            self._builder.start(tag, attrib)
        elif tag == "br":
            self._builder.data("\n")

    def end(self, tag: str | bytes) -> None:
        if self._depth <= _MAX_TREE_DEPTH:
            self._builder.end(tag)
        self._depth -= 1

    def data(self, data: str | bytes) -> None:
        self._builder.data(data)

    def comment(self, text: str | bytes) -> None:
        """Comments are left out, as the main parser does (remove_comments)."""

    def close(self) -> etree._Element:
        return self._builder.close()


def _content_root(node: etree._Element) -> etree._Element:
    """Descend through wrappers that hold everything, so figure folding never
    swallows a whole short article."""
    while True:
        kids = [c for c in node if c.tag.__class__ is str and c.tag not in SKIP]
        if len(kids) != 1 or kids[0].tag not in {"div", "main", "article", "section"}:
            return node
        if (node.text and node.text.strip()) or any(c.tail and c.tail.strip() for c in node):
            return node  # loose text beside the wrapper
        node = kids[0]


@dataclass
class _Walker:
    base_ms: int | None
    dropped: int = 0
    _depth: int = 0

    # -- containers -------------------------------------------------------
    def container(self, el: etree._Element, root: bool = False, quote: bool = False) -> list[Block]:
        if self._depth >= _MAX_DEPTH:
            return self._leaf(el, BlockKind.QUOTE if quote else BlockKind.PARAGRAPH)
        self._depth += 1
        blocks = self.children(el.text, el, root, quote, standalone_time=_is_standalone_time(el))
        self._depth -= 1
        return blocks

    def children(
        self,
        text: str | None,
        kids: Iterable[etree._Element],
        root: bool = False,
        quote: bool = False,
        standalone_time: bool = True,
    ) -> list[Block]:
        """Blocks of a sequence of sibling nodes: runs of text and inline
        elements become one paragraph, block elements their own blocks."""
        blocks: list[Block] = []
        run: list[_Node] = [text] if text else []
        for child in kids:
            tag = child.tag
            if tag.__class__ is str:  # not a comment or processing instruction
                if (tag in INLINE and not _has_block_descendant(child)) or (
                    tag == "time" and not standalone_time
                ):
                    run.append(child)
                else:
                    if run:
                        blocks.extend(self._flush(run, quote))
                        run = []
                    blocks.extend(self.element(child, quote))
            if child.tail:
                run.append(child.tail)
        if run:
            blocks.extend(self._flush(run, quote))
        if not root:
            blocks = _fold_figure(blocks)
        return blocks

    def element(self, el: etree._Element, quote: bool) -> list[Block]:
        name = el.tag
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
            return self.container(el, quote=True)
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
    def _flush(self, run: list[_Node], quote: bool) -> list[Block]:
        chunks: list[str] = []
        links: list[Link] = []
        time_els: list[etree._Element] = []
        image_els: list[etree._Element] = []
        for node in run:
            if isinstance(node, str):
                chunks.append(node)
                continue
            part = _scan(node)
            chunks.append(part.text)
            links += part.links
            time_els += part.times
            image_els += part.images
        text = normalise_text("".join(chunks))
        images = [b for img in image_els for b in self._image(img)]
        if not text:
            return images
        kind = BlockKind.QUOTE if quote else BlockKind.PARAGRAPH
        return [self._make_text_block(kind, text, links, time_els), *images]

    def _leaf(self, el: etree._Element, kind: BlockKind, level: int = 0) -> list[Block]:
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
        self,
        kind: BlockKind,
        text: str,
        links: list[Link],
        time_els: list[etree._Element],
        level: int = 0,
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
        stable = _mask_stamps(stable, mentions)
        return Block(kind, text, stable, tuple(links), tuple(mentions), level=level)

    def _resolve_time_el(self, el: etree._Element) -> TimeMention:
        text = normalise_text(_get_text(el))
        return times.resolve_time_element(text, el.get("datetime") or None, self.base_ms)

    def _time_block(self, el: etree._Element) -> list[Block]:
        mention = self._resolve_time_el(el)
        if not mention.text and not mention.datetime_attr:
            return []
        stable = times.mask_all(mention.text) if mention.relative else mention.text
        return [Block(BlockKind.TIME, mention.text, stable, times=(mention,))]

    def _list(self, el: etree._Element, quote: bool) -> list[Block]:
        scans = [_scan(c) for c in el if c.tag == "li"]
        if scans and all(_is_link_only(scan) for scan in scans):
            links = [lk for scan in scans for lk in scan.links]
            text = " | ".join(lk.text for lk in links)
            return [Block(BlockKind.LINK_LIST, text, text, tuple(links))]
        return self.container(el, quote=quote)

    def _table(self, el: etree._Element, quote: bool) -> list[Block]:
        blocks: list[Block] = []
        for row in el.iterdescendants("tr"):
            cells = [_scan(c) for c in row.iterdescendants("td", "th")]
            text = " | ".join(t for c in cells if (t := normalise_text(c.text)))
            if text:
                kind = BlockKind.QUOTE if quote else BlockKind.PARAGRAPH
                links = [lk for c in cells for lk in c.links]
                times_ = [t for c in cells for t in c.times]
                blocks.append(self._make_text_block(kind, text, links, times_))
        return blocks

    def _image(self, el: etree._Element) -> list[Block]:
        src = next((c for c in _image_sources(el) if c and not c.startswith("data:")), "")
        if not src:
            return []
        alt = normalise_text(el.get("alt", ""))
        image = Image(src=src, origin_src=origin_url(src), alt=alt)
        return [_image_block(image)]

    def _media(self, el: etree._Element) -> Block:
        src = el.get("src") or el.get("data") or ""
        if not src and (source := next(el.iterdescendants("source"), None)) is not None:
            src = source.get("src", "")
        title = normalise_text(el.get("title") or _get_text(el))
        return Block(BlockKind.MEDIA, title, f"{src} {title}".strip(), media_src=src)


def _is_standalone_time(parent: etree._Element) -> bool:
    return parent.tag not in LEAF_TEXT and parent.tag not in INLINE


def _mask_stamps(stable: str, mentions: list[TimeMention]) -> str:
    """Mask the date/time stamps of a byline or dateline ("Author 2020-07-21T09:01:06Z")
    and add them to ``mentions``, so a stamp that changes is judged by the time
    rules, not as an edit. A ``<time>`` element's own text is already a mention."""
    found = times.find_stamps(stable)
    if not found:
        return stable
    known = {m.text for m in mentions}
    mentions.extend(times.resolve_stamp(m) for m in found if m.group(0).strip() not in known)
    return times.mask_stamps(stable, found)


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


@dataclass(slots=True)
class _Scan:
    """What one pass over an element's subtree finds: text, links, times, images."""

    text: str = ""
    links: list[Link] = field(default_factory=list)
    times: list[etree._Element] = field(default_factory=list)
    images: list[etree._Element] = field(default_factory=list)
    media: list[etree._Element] = field(default_factory=list)


def _scan(node: _Node) -> _Scan:
    """Text of a subtree (its tail excluded) outside SKIP elements, and the
    links, times, images and media in it."""
    if isinstance(node, str):
        return _Scan(text=node)
    el = node
    scan = _Scan()
    if el.tag in SKIP:
        return scan
    found = list(el.iter(_SCAN_OR_SKIP_TAGS))
    if not any(item.tag in SKIP for item in found):
        # The common case: lxml finds the elements and gathers the text in C.
        for item in found:
            _note(scan, item)
        scan.text = "".join(_itertext(el))
        return scan
    _note(scan, el)
    scan.text = _walk_text(el, SKIP, lambda child: _note(scan, child))
    return scan


def _note(scan: _Scan, item: etree._Element) -> None:
    name = item.tag
    if name == "a":
        if href := item.get("href"):
            scan.links.append(Link(href=href, text=normalise_text(_get_text(item))))
    elif name == "time":
        scan.times.append(item)
    elif name == "img":
        scan.images.append(item)
    elif name in MEDIA:
        scan.media.append(item)


def _get_text(el: etree._Element) -> str:
    """All text of a subtree (not its tail), without ruby annotations, scripts,
    styles and templates: what bs4's get_text() returned."""
    if next(el.iterancestors("rt", "rp"), None) is not None:
        return ""
    if next(el.iterdescendants(_NOT_TEXT_TAGS), None) is None:
        return "".join(_itertext(el))
    return _walk_text(el, _NOT_TEXT)


def _itertext(el: etree._Element) -> Iterator[str]:
    """``el.itertext()``: lxml-stubs type it ``str | bytes`` for any tree, but
    a tree from the HTML parser only holds str."""
    return cast("Iterator[str]", el.itertext())


def _walk_text(
    el: etree._Element,
    skip: frozenset[str] | set[str],
    visit: Callable[[etree._Element], None] | None = None,
) -> str:
    """The text of a subtree in document order, leaving out ``skip`` elements
    (and comments); ``visit`` sees every element kept. A loop, not recursion:
    archived pages can nest thousands of levels deep."""
    chunks: list[str] = [el.text] if el.text else []
    stack: list[tuple[Iterable[etree._Element], str | None]] = [(iter(el), None)]
    while stack:
        kids, tail = stack[-1]
        for child in kids:
            tag = child.tag
            if tag.__class__ is str and tag not in skip:
                if visit is not None:
                    visit(child)
                if child.text:
                    chunks.append(child.text)
                if len(child):
                    stack.append((iter(child), child.tail))
                    break
            if child.tail:
                chunks.append(child.tail)
        else:
            stack.pop()
            if tail:
                chunks.append(tail)
    return "".join(chunks)


def _is_link_only(scan: _Scan) -> bool:
    if not scan.links:
        return False
    return normalise_text(scan.text) == normalise_text("".join(lk.text for lk in scan.links))


def _has_block_descendant(el: etree._Element) -> bool:
    return next(el.iterdescendants(_BLOCKISH_TAGS), None) is not None


def _attr(el: etree._Element, name: str) -> str:
    """An attribute as bs4 gave it: ``class`` is a list of names joined by one space."""
    value = el.get(name)
    if not value:
        return ""
    return " ".join(value.split()) if name == "class" else value


def _image_sources(el: etree._Element) -> Iterator[str | None]:
    """Where an <img> may name its picture, in order: ``src``, the lazy-loading
    ``data-src``/``data-lazy-src``, the first ``srcset``/``data-srcset`` candidate,
    then the <source> elements of its <picture>. The caller skips ``data:``
    placeholders."""
    yield el.get("src")
    yield el.get("data-src")
    yield el.get("data-lazy-src")
    yield _first_srcset(el.get("srcset"))
    yield _first_srcset(el.get("data-srcset"))
    parent = el.getparent()
    if parent is not None and parent.tag == "picture":
        for source in parent.iterchildren("source"):
            yield _first_srcset(source.get("srcset"))
            yield _first_srcset(source.get("data-srcset"))


def _first_srcset(srcset: str | None) -> str:
    return srcset.split(",")[0].strip().split(" ")[0] if srcset else ""


def _is_boilerplate(el: etree._Element) -> bool:
    """Ad slots and screen-reader-only labels: kept in the snapshot, not content."""
    if el.get("data-e2e") == "advertisement":
        return True
    label = el.get("aria-label")
    if label and _AD_RE.search(label):
        return True
    ident = f"{el.get('id', '')} {_attr(el, 'class')}"
    if ident.strip() and (_AD_RE.search(ident) or _HIDDEN_RE.search(ident)):
        return True
    return el.get("aria-hidden") == "true" and el.tag in ("section", "aside", "div")
