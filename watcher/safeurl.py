"""Archived URLs as a browser reads them, so checks see what a click would run (pure).

Pages hide ``javascript:`` from a naive prefix check in every way a browser
forgives: ``java&#x09;script:`` and ``jav&#x0A;ascript:`` (the HTML parser
decodes the reference, then WHATWG URL parsing removes every tab and
newline), a leading ``&#x01;`` or space (C0 controls and spaces are stripped
from both ends), ``JaVaScRiPt:``, ``javascript&colon;``. :func:`browser_url`
does what the browser does before it reads the scheme, so :func:`scheme`
answers for the URL that would actually be followed. Values are taken as an
HTML parser hands them over: character references already decoded.

Imports nothing from watcher: the extract stage, the reports and the feed use it.
"""

from __future__ import annotations

import re

SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "mocha"})
"""Schemes whose URL is code: following one runs it in the page's origin."""
WEB_SCHEMES = frozenset({"http", "https"})

_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)")


def browser_url(value: str) -> str:
    """``value`` after the WHATWG URL parser's clean-up: C0 controls and spaces
    stripped from both ends, every tab, line feed and carriage return removed."""
    return _TAB_OR_NEWLINE.sub("", value.strip(_C0_OR_SPACE))


def scheme(value: str) -> str:
    """The lower-case scheme a browser reads in ``value``; "" for a relative URL."""
    match = _SCHEME.match(browser_url(value))
    return match.group().lower() if match else ""


def is_script(value: str) -> bool:
    """Whether following ``value`` would run code (``javascript:`` and its kin)."""
    return scheme(value) in SCRIPT_SCHEMES
