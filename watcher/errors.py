"""One error tree for everything watcher raises on purpose.

Third-party errors (httpx, SQLAlchemy, lxml) are translated into these where
they enter, so callers handle ``WatcherError`` and nothing else. This module
imports nothing from watcher.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base class: a clear, one-line message a user can act on.

    ``reason`` is the short form a check row or a summary records (without
    the URL or file the message starts with, where the error names one).
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        self.reason = message if reason is None else reason
        super().__init__(message)


class SnapshotFormatError(WatcherError):
    """A snapshot file is not in the seed format (or a variant we accept)."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}", reason=reason)


class InvalidURLError(WatcherError):
    """A URL that watcher cannot watch (not http/https, no host, ...)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{url!r}: {reason}", reason=reason)


class FetchError(WatcherError):
    """Fetching a URL failed; ``reason`` is short and suitable for a log line."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{url}: {reason}", reason=reason)


class FetchTimeoutError(FetchError):
    """The server did not answer in time (after retries)."""


class BodyTooLargeError(FetchError):
    """The response body exceeded the configured maximum size."""


class RefusedAddressError(FetchError):
    """The URL (or a redirect hop) leads somewhere watcher must not fetch from:
    a non-public address (see WATCHER_ALLOW_HOSTS) or a scheme other than
    http/https. Never retried."""


class HTTPStatusError(FetchError):
    """The server answered with an error status we do not treat as a value."""

    def __init__(self, url: str, status: int, reason: str | None = None) -> None:
        self.status = status
        super().__init__(url, reason or f"HTTP {status}")


class NotAnArticleError(WatcherError):
    """A page answered 200 but holds no article to archive: a PDF, an image,
    plain text, an empty or unextractable body. Recorded as a failed check
    (``reason`` names the content type and size), never as a version."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{url}: {reason}", reason=reason)


class ConfigError(WatcherError):
    """The config file cannot be used: not TOML, an unknown key, a bad value.

    One line, ``FILE:LINE: KEY: what is wrong``, so an editor can jump to it;
    ``reason`` is the part after the file and line.
    """

    def __init__(
        self, path: str, reason: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = f"{path}:{line}" if line is not None else path
        short = f"{key}: {reason}" if key else reason
        super().__init__(f"{where}: {short}", reason=short)


class ChangeRecordError(WatcherError):
    """A stored change record cannot be read (a newer schema, damage)."""


class StoreError(WatcherError):
    """The database or archive folder could not be read or written."""


class SchemaOutOfDateError(StoreError):
    """The database schema is older than this version of watcher expects."""


class DaemonAlreadyRunningError(WatcherError):
    """Another daemon already holds this data folder."""


class DeliveryError(WatcherError):
    """A notification channel did not take a message; ``reason`` is one line
    for the outbox row (the outbox retries later, then gives up)."""

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        super().__init__(f"channel {channel!r}: {reason}", reason=reason)
