"""Storage: the only part of watcher that imports SQLAlchemy.

Tables (all times are epoch milliseconds, UTC, in BIGINT columns):

- ``watches``: one tracked URL (unique, normalised by the caller), its
  schedule (``interval_s`` NULL = adaptive), ``state``, ``tags`` (JSON list),
  HTTP validators (``etag``, ``last_modified``), ``last_body_sha256`` of the
  raw body last fetched, counters for back-off and the adaptive schedule,
  and the worker lease (``claimed_by``, ``claimed_until``).
- ``contents``: snapshot text without its capture-time line, keyed by the
  ``sha256`` of that text so identical versions share one row; kept
  zstd-compressed, mostly as a delta against the watch's previous version
  (``codec``, ``data``, ``base_sha256``, ``depth``: :mod:`watcher.store.codec`).
- ``versions``: the captures of a watch, ``seq`` 1, 2, 3... per watch, with
  HTTP status, final URL, title, ``archive_path`` (relative path of the
  seed-format file in the data folder; NULL for a noise-only version, which
  has none) and ``page_metadata`` (JSON; ``metadata_seq`` names the earlier
  version holding it when it did not change).
- ``checks``: every fetch attempt and its ``outcome``; the newest
  ``check_retention`` per watch are kept (pruned every ~retention/10 checks,
  so up to ~10% more in between).
- ``changes``: the classified difference between two versions: ``verdict``,
  ``kinds`` (JSON list), ``summary``, ``record`` (the serialised change,
  opaque here) and ``reverted_to_version_id``.
- ``deliveries``: the outbox, one row per change and channel (the report
  files are the built-in ``reports`` channel), written with the change in one
  transaction and leased by senders (see :mod:`watcher.store.outbox`).
- ``sources``: feeds and section pages whose article links become watches.
- ``search_texts`` (PostgreSQL only): each version's title and plain text,
  with GIN indexes over their trigrams: the database's full-text index
  (:mod:`watcher.store.searchtexts`; SQLite's is a file beside it).

Migrations are in the top-level ``alembic/`` folder; :func:`upgrade` runs
them and :func:`check_schema` refuses a database that is behind.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported when first used (PEP 562), so that ``watcher list`` can read through
# the driver alone (watcher.store.listing) without paying for SQLAlchemy.
if TYPE_CHECKING:
    from watcher.store.engine import open_engine, safe_url
    from watcher.store.records import (
        CHECKED_STATES,
        KEEP,
        ChangeRecord,
        ChangeVerdict,
        CheckOutcome,
        CheckRecord,
        DeliveryRecord,
        DeliveryState,
        Keep,
        OutboxEntry,
        QuietCheck,
        SourceRecord,
        SourceSync,
        VersionRecord,
        WatchRecord,
        WatchState,
        WatchSummary,
    )
    from watcher.store.repository import (
        Repository,
        Store,
        Transaction,
        now_ms,
    )
    from watcher.store.schema import check_schema, current_revision, head_revision, upgrade

_HOMES = {
    "open_engine": "engine",
    "safe_url": "engine",
    "Repository": "repository",
    "Store": "repository",
    "Transaction": "repository",
    "now_ms": "repository",
    "check_schema": "schema",
    "current_revision": "schema",
    "head_revision": "schema",
    "upgrade": "schema",
}


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOMES.get(name, 'records')}")
    value = getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKED_STATES",
    "KEEP",
    "ChangeRecord",
    "ChangeVerdict",
    "CheckOutcome",
    "CheckRecord",
    "DeliveryRecord",
    "DeliveryState",
    "Keep",
    "OutboxEntry",
    "QuietCheck",
    "Repository",
    "SourceRecord",
    "SourceSync",
    "Store",
    "Transaction",
    "VersionRecord",
    "WatchRecord",
    "WatchState",
    "WatchSummary",
    "check_schema",
    "current_revision",
    "head_revision",
    "now_ms",
    "open_engine",
    "safe_url",
    "upgrade",
]
