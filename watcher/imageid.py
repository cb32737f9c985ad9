"""Image identity: which picture an image URL shows, whatever serves it.

The same photo reaches a page by many addresses: behind an image proxy, on
another host of the publisher's CDN, at another width, in another format.
:func:`origin_url` unwraps the proxy (the address a reader would call the
image's own); :func:`image_key` reduces that origin to a key that two URLs
of the same picture share. Alignment pairs image blocks by this key and the
diff compares it instead of the URL, so a picture re-served elsewhere is
markup only, and one that moved is a move.

Proxies unwrapped (:func:`origin_url`), repeatedly, so a proxy of a proxy
unwraps too:

* the origin in a ``url=`` query parameter (images.weserv.nl / wsrv.nl,
  Next.js ``/_next/image``, most resizing proxies);
* an absolute ``http(s)://`` URL embedded in the path (thumbor's
  ``/unsafe/640x360/https://…``, Cloudinary's ``/image/fetch/…/https://…``,
  web.archive.org's ``/web/<time>id_/https://…``);
* Jetpack's Photon CDN (``i0.wp.com``–``i3.wp.com``), whose path is the
  origin's host and path and whose query only resizes.

The key (:func:`image_key`) of the origin then leaves out what selects a
rendition of the file rather than the file:

* the scheme, and the host below its registrable domain (``api.dw.com`` and
  ``static.dw.com`` are one family; ``bbci.co.uk``-style country domains keep
  their second level). Sibling hosts of one domain serving *different* files
  at the same path would collide; on one article's page that does not happen;
* percent-encoding (``%E5%9B%BE`` and ``图`` are one path) and doubled slashes;
* a directory that only states a size or rendition option: ``/640/``,
  ``/1340x754/``, ``/w640-h480/``, ``/s1600/``, ``/540w/``, ``/w:310/``; a bare
  number (``/600/`` vs ``/640/``) only when it is not a year and the file name
  is long enough (:data:`_DISTINCT_NAME`) to name the picture by itself, since
  in ``/gallery/12/1.jpg`` the number is what tells pictures apart;
* Drupal image styles (``/styles/<style>/public/``), and renditions below a
  file (Plone/Zope ``…/photo.jpg/image_large``, ``…/@@images/<scale>``, a
  trailing ``/image``);
* in the file name: a ``-600x400``/``_600x400`` size suffix (WordPress
  thumbnails), a ``1182x768_`` size prefix, a ``@2x`` density suffix,
  WordPress's ``-scaled``, and the image format extension (``.jpg``/``.webp``);
* query parameters that resize, crop, re-encode or sign a rendition
  (:data:`RENDITION_PARAMS`: ``w``, ``width``, ``resize``, ``quality``,
  ``itok``, …); the others stay, sorted, since they may name the file.

Anything else differing (another file name, another id, ``?v=2``) is another
picture: when unsure the key keeps them apart, so a real photo swap is never
hidden as markup.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

#: Query parameters that choose a size, crop, encoding or signature of one file.
RENDITION_PARAMS = frozenset(
    {
        "w", "h", "width", "height", "size", "resize", "fit", "crop", "dpr",
        "q", "quality", "format", "fm", "auto", "ssl", "strip", "itok",
    }
)  # fmt: skip
#: Image file extensions: the format of a rendition, not the picture.
IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "avif", "bmp", "tif", "tiff", "heic"}
)  # fmt: skip
# Second-level labels under a two-letter country domain that are not a site
# (bbci.co.uk, cna.com.tw, rti.org.tw): the registrable domain has three labels.
_GENERIC_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go"})
# A bare-number directory is a width only beside a file name this long.
_DISTINCT_NAME = 8
_MAX_UNWRAP = 4

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_EMBEDDED_URL = re.compile(r"/(https?)(?::|%3A)(?:/|%2F){1,2}", re.IGNORECASE)
_PHOTON_HOST = re.compile(r"^i[0-3]\.wp\.com$", re.IGNORECASE)
_SIZE_DIR = re.compile(
    r"""^(?:
        \d{2,4}x\d{2,4}                   # 1340x754
      | [wsh]\d{2,5}(?:-[a-z]{1,2}\d*)*   # w640-h480, s1600, s1600-c
      | \d{2,4}w                          # 540w
      | [a-z]{1,10}:[^/]*                 # w:310, p:16x9, filters:quality(80)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_WIDTH_DIR = re.compile(r"^\d{3,4}$")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_DRUPAL_STYLE = re.compile(r"/styles/[^/]+/(?:public|private)/")
_PLONE_SCALE = re.compile(r"^image(?:_\w+)?$")
_NAME_SIZE = re.compile(
    r"(?:[-_]\d{2,4}x\d{2,4}|@\d(?:\.\d)?x|-scaled)$"  # suffix: -600x400, _600x400, @2x, -scaled
    r"|^\d{2,4}x\d{2,4}[-_](?=.)",  # prefix: 1182x768_
    re.IGNORECASE,
)


def origin_url(src: str) -> str:
    """The URL of the image itself, with image proxies unwrapped (see module doc)."""
    for _ in range(_MAX_UNWRAP):
        inner = _unwrap(src)
        if inner == src:
            break
        src = inner
    return src


@lru_cache(maxsize=8192)
def image_key(src: str) -> str:
    """A key two URLs of the same picture share (see module doc).

    ``src`` may be the URL as written or its :func:`origin_url`; a relative
    URL keys on its path alone."""
    try:
        parts = urlsplit(origin_url(src).strip())
    except ValueError:
        return src
    family = registrable_domain(parts.hostname or "")
    path = _canonical_path(parts.path)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in RENDITION_PARAMS]
    return f"{family}{path}?{urlencode(sorted(query))}" if query else f"{family}{path}"


# -- unwrapping ---------------------------------------------------------------
def _unwrap(src: str) -> str:
    """One layer of proxy taken off ``src``, or ``src`` itself."""
    try:
        parts = urlsplit(src)
    except ValueError:  # e.g. "http://[not-an-ip]/?url=…"
        return src
    if "url=" in parts.query and (inner := parse_qs(parts.query).get("url")):
        return _absolute(inner[0])
    if (embedded := _EMBEDDED_URL.search(parts.path)) is not None:
        rest = parts.path[embedded.start() + 1 :] + (f"?{parts.query}" if parts.query else "")
        return _absolute(unquote(rest))
    if _PHOTON_HOST.match(parts.hostname or "") and parts.path.count("/") >= 2:
        return "https://" + parts.path.lstrip("/")
    return src


def _absolute(target: str) -> str:
    """A proxied target as an absolute URL (proxies accept ``//host`` and ``host/path``)."""
    if target.startswith("//"):
        return "https:" + target
    if not _SCHEME.match(target):
        return "https://" + target
    # A proxy path may have collapsed "https://" to "https:/".
    return re.sub(r"^(https?):/(?!/)", r"\1://", target, flags=re.IGNORECASE)


# -- the key ------------------------------------------------------------------
def registrable_domain(host: str) -> str:
    """The registrable domain: ``static.dw.com`` → ``dw.com``, ``ichef.bbci.co.uk`` → ``bbci.co.uk``
    (the site a host belongs to; extract.py asks it whether a canonical URL is on the page's site)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) <= 2 or labels[-1].isdigit():  # a bare domain or an IP address
        return ".".join(labels)
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _GENERIC_SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def _canonical_path(path: str) -> str:
    path = _DRUPAL_STYLE.sub("/", re.sub(r"/{2,}", "/", unquote(path)))
    segments = path.split("/")
    segments = _drop_renditions(segments)
    *dirs, name = segments
    stem, ext = _split_extension(name)
    stem = _NAME_SIZE.sub("", stem)
    distinct = len(stem) >= _DISTINCT_NAME
    dirs = [d for d in dirs if not _is_size_dir(d, distinct)]
    return "/".join([*dirs, stem if ext else name])


def _drop_renditions(segments: list[str]) -> list[str]:
    """Cut the path after the file a rendition is made from: what follows a
    segment with an image extension, a Zope ``@@`` view and what follows it,
    a trailing Plone ``image``/``image_<scale>``."""
    for k, segment in enumerate(segments[1:-1], start=1):
        if _split_extension(segment)[1]:
            return segments[: k + 1]
        if segment.startswith("@@") and k > 1:
            return segments[:k]
    if len(segments) > 2 and _PLONE_SCALE.match(segments[-1]):
        return segments[:-1]
    return segments


def _split_extension(name: str) -> tuple[str, str]:
    """``("photo", "jpg")`` for an image file name, ``(name, "")`` otherwise."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in IMAGE_EXTENSIONS:
        return stem, ext.lower()
    return name, ""


def _is_size_dir(segment: str, distinct_name: bool) -> bool:
    if _SIZE_DIR.match(segment):
        return True
    return distinct_name and bool(_WIDTH_DIR.match(segment)) and not _YEAR.match(segment)
