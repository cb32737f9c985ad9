"""A simulated clock: tests move it forward so "14 分钟前" can honestly become
"1 小时前" between checks."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE_MS = 60_000


@dataclass
class Clock:
    """Callable returning the current time in epoch milliseconds."""

    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += minutes * MINUTE_MS
