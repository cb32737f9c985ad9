"""Which channels a change owes a message, and when: the outbox rows the
pipeline writes in the change's own transaction.

Every significant change goes to the built-in ``reports`` channel (the report
files), at once; a noise-only change writes none (a ticking page would write
two files an hour that nobody opens: its article's site page lists it, and
``watcher diff URL --from N --to M`` renders it on demand). Notification channels get the changes their routes match; with no
routes configured, every channel gets every significant change. A route's
quiet hours hold a message until they end; a digest route's messages wait
for the end of the hour or day and go out as one message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from watcher.config import REPORTS_CHANNEL, Config, Route
from watcher.store import OutboxEntry


def plan(
    config: Config,
    *,
    verdict: str,
    kinds: Iterable[str],
    tags: Iterable[str],
    now_ms: int,
    tz: str,
    notify: bool = True,
) -> list[OutboxEntry]:
    """The outbox entries of one change. ``notify=False`` (imported history)
    writes its reports and tells no one."""
    entries = [OutboxEntry(REPORTS_CHANNEL, now_ms)] if owes_reports(verdict) else []
    if not notify:
        return entries
    kind_set, tag_set = set(kinds), set(tags)
    zone = ZoneInfo(tz)
    for route in routes_of(config):
        if not matches(route, verdict=verdict, kinds=kind_set, tags=tag_set):
            continue
        due = due_at(route, now_ms, zone)
        entries.extend(OutboxEntry(name, due, route.digest) for name in route.channels)
    return entries


def owes_reports(verdict: str) -> bool:
    """Whether a change of this verdict gets report files (``reports``)."""
    return verdict == "significant"


def routes_of(config: Config) -> tuple[Route, ...]:
    """The configured routes; without any, every channel gets significant changes."""
    if config.routes or not config.channels:
        return config.routes
    return (Route(channels=tuple(config.channels)),)


def matches(route: Route, *, verdict: str, kinds: set[str], tags: set[str]) -> bool:
    if verdict not in route.verdicts:
        return False
    if route.tags and not tags.intersection(route.tags):
        return False
    return not route.kinds or bool(kinds.intersection(route.kinds))


def due_at(route: Route, now_ms: int, zone: ZoneInfo) -> int:
    """When a message of this route may go: now, the end of its digest period,
    or the end of its quiet hours, whichever is latest."""
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    due = local
    if route.digest == "hour":
        due = (local + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    elif route.digest == "day":
        due = datetime.combine(local.date() + timedelta(days=1), time(0), zone)
    if route.quiet_hours is not None:
        due = after_quiet_hours(due, *route.quiet_hours)
    return max(now_ms, round(due.timestamp() * 1000))


def after_quiet_hours(when: datetime, start: time, end: time) -> datetime:
    """``when``, or the end of the quiet hours it falls in. ``start > end``
    spans midnight (22:00-07:00); ``start == end`` is never quiet."""
    t = when.timetz().replace(tzinfo=None)
    if start == end:
        return when
    if start < end:
        quiet = start <= t < end
        end_day = when.date()
    else:
        quiet = t >= start or t < end
        end_day = when.date() + timedelta(days=1) if t >= start else when.date()
    if not quiet:
        return when
    return datetime.combine(end_day, end, when.tzinfo)
