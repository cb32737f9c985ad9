"""Store tests use the shared database fixtures of ``tests/conftest.py``
(``db_url``, ``store``, ``dialect``, ``pg_url``): every test runs on SQLite and
on PostgreSQL."""

from __future__ import annotations

from watcher.diff import extend
from watcher.models import Change, ChangeItem, ChangeKind, Verdict


def change_of(*kinds: str, significant: bool = True) -> Change:
    """A classified change with one item of each kind, as the diff stage makes them."""
    items = [ChangeItem(ChangeKind(kind), significant, f"#{n}") for n, kind in enumerate(kinds)]
    frame = Change("https://news.example.com/a", "t", "t", 1, 2, (), Verdict.NONE, "")
    return extend(frame, items)
