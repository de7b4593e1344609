"""The `RateLimiter` protocol every backend implements, and the decision it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one hit.

    `reset_after_s` is the exact time until the oldest hit counted in the window leaves it
    (so `remaining` grows by one); 0 when nothing is counted. `failed_open` marks a hit let
    through uncounted because the backend could not be reached.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: float
    failed_open: bool = False

    @property
    def reset_header_s(self) -> int:
        """`reset_after_s` in whole seconds, rounded up: never earlier than the truth."""
        return max(0, math.ceil(self.reset_after_s))

    @property
    def retry_after_s(self) -> int:
        """Whole seconds a refused caller should wait (at least 1); 0 when allowed."""
        return 0 if self.allowed else max(1, self.reset_header_s)

    @classmethod
    def unmetered(cls, limit: int) -> RateDecision:
        """The decision of a backend that failed open: allowed, nothing counted."""
        return cls(allowed=True, limit=limit, remaining=limit, reset_after_s=0.0, failed_open=True)


class RateLimiter(Protocol):
    """A sliding-window counter shared by everyone who hits the same key."""

    async def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        """Count one request on `key` if fewer than `limit` were allowed in `window_s`."""
        ...

    async def aclose(self) -> None:
        """Release connections; safe to call more than once."""
        ...


def check_arguments(limit: int, window_s: float) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not window_s > 0:
        raise ValueError("window_s must be positive")
