"""Article identity for imports: one normalised URL per article.

Archives write the same article's URL in several spellings (``HTTP://Host``,
``:443``, a trailing slash, ``#comments``, ``?utm_source=rss``). Import groups
files by the normalised URL, so these spellings become one watch:

* scheme and host lower-case (as :func:`watcher.fetch.validate_url` does),
  the default port (80 for http, 443 for https) dropped;
* the fragment dropped;
* a trailing slash dropped from a non-empty path (``/a/b/`` → ``/a/b``); an
  empty path becomes ``/``;
* tracking parameters removed from the query, the others kept in their order:
  every ``utm_*``; :data:`TRACKING_PARAMS` (click ids and share markers:
  ``fbclid``, ``gclid``, ``spm``, BBC's ``at_medium``/``at_campaign``, ...);
  and ``from``/``ref``/``source``/``src`` only when their value names a feed
  or share channel (:data:`FEED_VALUES`: ``rss``, ``feed``, ``timeline``, ...),
  because elsewhere these names can select content.

Only http and https URLs are accepted (``InvalidURLError`` otherwise), of at
most :data:`MAX_URL_LENGTH` characters, with no whitespace or control
characters inside (percent-encode them: ``%20``): a URL is shown in tables,
reports and logs, and these would corrupt every one of them.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from watcher.errors import InvalidURLError
from watcher.fetch import validate_url
from watcher.safetext import UNSAFE_CHARS

#: The longest URL watcher accepts. Browsers and servers commonly stop near
#: 8 KB too; a longer one is a mistake or an attack on every table it appears in.
MAX_URL_LENGTH = 8192

TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "spm", "scm",
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
    }
)  # fmt: skip
CHANNEL_PARAMS = frozenset({"from", "ref", "source", "src"})
FEED_VALUES = frozenset(
    {
        "rss", "rss2", "feed", "feeds", "atom", "feedly", "newsletter", "email",
        "share", "twitter", "facebook", "weibo", "wechat", "weixin", "timeline",
        "singlemessage", "groupmessage",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """The article's identity; raises InvalidURLError for non-web URLs, URLs
    over :data:`MAX_URL_LENGTH`, and URLs with whitespace or control characters."""
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURLError(
            text[:60] + "…", f"longer than {MAX_URL_LENGTH} characters ({len(text)})"
        )
    parts = urlsplit(validate_url(text))
    _refuse_unsafe_characters(text)
    netloc = parts.netloc
    port = parts.port
    if port is not None and _DEFAULT_PORTS.get(parts.scheme) == port:
        netloc = netloc.rsplit(":", 1)[0]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme, netloc, path, _clean_query(parts.query), ""))


def _refuse_unsafe_characters(url: str) -> None:
    """InvalidURLError naming the first whitespace, control or bidi character."""
    if url.isascii() and url.isprintable() and " " not in url:
        return  # the usual URL, in one pass in C: `add` of 10,000 URLs checks them all
    for position, char in enumerate(url, 1):
        if char.isspace() or unicodedata.category(char) == "Cc" or UNSAFE_CHARS.match(char):
            raise InvalidURLError(
                url,
                f"contains whitespace or a control character (U+{ord(char):04X} at "
                f"character {position}); percent-encode it",
            )


def is_tracking(name: str, value: str) -> bool:
    key = name.lower()
    if key.startswith(TRACKING_PREFIXES) or key in TRACKING_PARAMS:
        return True
    return key in CHANNEL_PARAMS and value.strip().lower() in FEED_VALUES


def _clean_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not is_tracking(k, v)]
    if len(kept) == len(pairs):
        return query  # untouched: keep the original encoding byte for byte
    return urlencode(kept)
