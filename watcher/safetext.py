"""Archived and user-supplied text made safe to show: one rule for every output.

Titles, page text, URLs and file names come from strangers. Printed as they
are, an escape sequence retitles or repaints the reader's terminal
(``ESC ] 0 ; … BEL``), a carriage return overwrites what came before, and a
bidi override (U+202E) makes text read backwards. :data:`UNSAFE_CHARS` is the
rule: C0 and C1 controls (except tab and newline) and the bidi marks,
embeddings, overrides and isolates.

* :func:`for_terminal` removes them (and whole escape sequences, so no
  ``[31m`` debris is left), for what the CLI prints;
* :func:`one_line` does the same and turns tabs and newlines into spaces, for
  table cells and error messages;
* :func:`escape_unsafe` makes them visible as ``\\uXXXX``, for reports and for
  JSON, where the escape is valid syntax and keeps the data.

This module imports nothing from watcher, so the CLI and the reports can both
use it.
"""

from __future__ import annotations

import re

# C0/C1 controls (minus tab and newline) and bidi marks, overrides and isolates.
UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# ECMA-48 sequences, 7-bit (ESC ...) and 8-bit (C1) forms: CSI (ESC [ or 0x9b);
# the string commands OSC, DCS, SOS, PM and APC up to BEL or ST (or the end,
# which is where a terminal would stop swallowing too); any other ESC + final.
ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Colour and emphasis only (SGR): what watcher's own coloured output uses.
SGR_SEQUENCE = re.compile(r"(\x1b\[[0-9;]*m)")
_LINE_BREAKS = re.compile(r"[\t\n]+")


def for_terminal(text: str) -> str:
    """``text`` without escape sequences and unsafe characters; tabs and newlines kept."""
    return UNSAFE_CHARS.sub("", ESCAPE_SEQUENCE.sub("", text))


def for_colour_terminal(text: str) -> str:
    """Like :func:`for_terminal`, but the SGR colour sequences in ``text`` kept:
    for output that watcher coloured itself, after cleaning what it quotes."""
    parts = SGR_SEQUENCE.split(text)
    return "".join(part if i % 2 else for_terminal(part) for i, part in enumerate(parts))


def one_line(text: str) -> str:
    """:func:`for_terminal`, with every run of tabs and newlines made one space."""
    return _LINE_BREAKS.sub(" ", for_terminal(text))


def escape_unsafe(text: str) -> str:
    """Unsafe characters made visible as ``\\uXXXX``, not obeyed (nothing removed)."""
    return UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
