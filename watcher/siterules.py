"""Per-site extraction rules (``[sites."host"]``) applied to a parsed page. Pure.

A site whose page structure misleads the extractor (a "related stories" box
inside ``<main>``, an article that is not in ``<main>``) gets CSS selectors:
``ignore`` blocks are removed from the document before anything else looks at
it, and ``body`` names the article itself. Selectors are compiled to XPath
by cssselect through lxml (no second HTML library), once per rule set and
thread (an lxml XPath object is not shared between threads).

The rules are part of what a version was extracted with: their fingerprint
is recorded in its page metadata and folded into the raw-body shortcut, so a
rules change re-baselines a site instead of showing up as a noisy diff.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from lxml.cssselect import CSSSelector, SelectorError

from watcher import tree
from watcher.config import SiteRules
from watcher.errors import WatcherError

#: The page-metadata key (a PageMetadata field) of the rules' fingerprint.
RULES_KEY = "site_rules"

_local = threading.local()


@dataclass(frozen=True, slots=True)
class _Compiled:
    body: CSSSelector | None
    ignore: CSSSelector | None


@dataclass(frozen=True, slots=True)
class Applied:
    """What the rules did to one page: the article elements a ``body`` rule
    chose (outermost, in document order; empty when it matched nothing or
    there is none), and the body selectors that matched nothing."""

    body: tuple[etree._Element, ...]
    removed: int
    unmatched: str | None


def fingerprint(rules: SiteRules | None) -> str:
    """The rules' fingerprint; "" when there are none (no selector at all), so
    a site without rules keeps the values it had before rules existed."""
    if rules is None or not (rules.body or rules.ignore):
        return ""
    return rules.fingerprint


def recorded(metadata: Mapping[str, Any] | None) -> str:
    """The fingerprint a stored version was extracted with ("" = no rules)."""
    value = (metadata or {}).get(RULES_KEY)
    return value if isinstance(value, str) else ""


def describe(rules: SiteRules | None) -> str:
    """The rules as a ``rules`` change shows them: ``body: …; ignore: …``."""
    if rules is None or not fingerprint(rules):
        return "none"
    parts = [f"body: {', '.join(rules.body)}"] if rules.body else []
    if rules.ignore:
        parts.append(f"ignore: {', '.join(rules.ignore)}")
    return "; ".join(parts)


def describe_recorded(rules_fp: str) -> str:
    """Rules known only by the fingerprint a stored version recorded."""
    return f"rules {rules_fp}" if rules_fp else "none"


def body_digest(body_sha256: str | None, rules: SiteRules | None) -> str | None:
    """What the raw-body shortcut compares: the body's hash alone without
    rules (databases written before rules keep matching), else a hash of the
    body's hash and the rules' fingerprint, so new rules reprocess the page."""
    rules_fp = fingerprint(rules)
    if body_sha256 is None or not rules_fp:
        return body_sha256
    return hashlib.sha256(f"{body_sha256}:{rules_fp}".encode("ascii")).hexdigest()


def selector_error(selector: str) -> str | None:
    """Why ``selector`` is not a CSS selector watcher can use; None if it is."""
    try:
        CSSSelector(selector, translator="html")
    except SelectorError as exc:
        return str(exc) or type(exc).__name__
    return None


def apply(root: etree._Element, rules: SiteRules) -> Applied:
    """Remove the ``ignore`` blocks from ``root`` (in place), then find the
    ``body`` elements. Raises WatcherError for a selector that does not compile."""
    compiled = _compiled(rules)
    removed = 0
    if compiled.ignore is not None:
        for element in _outermost(compiled.ignore(root)):
            if element.getparent() is not None:
                tree.drop_tree(element)
                removed += 1
    if compiled.body is None:
        return Applied((), removed, None)
    body = tuple(_outermost(compiled.body(root)))
    return Applied(body, removed, None if body else ", ".join(rules.body))


def _compiled(rules: SiteRules) -> _Compiled:
    cache: dict[str, _Compiled] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    found = cache.get(rules.fingerprint)
    if found is None:
        found = cache[rules.fingerprint] = _Compiled(
            _selector(rules.host, rules.body), _selector(rules.host, rules.ignore)
        )
    return found


def _selector(host: str, selectors: tuple[str, ...]) -> CSSSelector | None:
    """One selector group for the list: its XPath union returns matches in
    document order, whichever selector found them."""
    if not selectors:
        return None
    for selector in selectors:
        error = selector_error(selector)
        if error is not None:
            raise WatcherError(f'[sites."{host}"]: invalid CSS selector {selector!r}: {error}')
    return CSSSelector(", ".join(selectors), translator="html")


def _outermost(found: object) -> list[etree._Element]:
    """The elements an XPath found (in document order), less those inside another."""
    items = found if isinstance(found, list) else []
    matched = [el for el in items if isinstance(el, etree._Element)]
    chosen = set(matched)
    return [el for el in matched if not any(a in chosen for a in el.iterancestors())]
