"""Logging, configured once at the entry point: plain lines or JSON lines.

JSON lines (``WATCHER_LOG_FORMAT=json``) carry the check fields (url, status,
duration_ms, outcome, error) as keys, for journald or a log shipper.

Log lines quote URLs, titles and server messages: text lines go through
:func:`watcher.safetext.for_terminal`, so none can steer the terminal or the
journal viewer (JSON lines escape control characters already).
"""

from __future__ import annotations

import logging
import sys

from watcher.errors import WatcherError
from watcher.safetext import for_terminal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SafeTextFormatter(logging.Formatter):
    """Plain lines, with escape sequences and unsafe characters removed."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record))


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr at ``level``; WatcherError (one line) for an unknown level."""
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise WatcherError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        # opt-in (WATCHER_LOG_FORMAT=json): only then is its library imported
        from pythonjsonlogger.json import JsonFormatter  # noqa: PLC0415

        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True)
        )
    else:
        handler.setFormatter(SafeTextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
