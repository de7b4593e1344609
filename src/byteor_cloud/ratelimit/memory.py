"""The in-process backend: a sliding log per key, in bounded memory.

Keys are kept in least-recently-used order. Before a new key is added, keys whose whole
log has left its window are dropped from the cold end; if the table is still full, the
least recently used key is evicted and forgets its hits (it may then get up to one extra
window of requests — the price of bounded memory, paid by the coldest key only). Memory is
at most `max_keys` logs of at most `limit` timestamps each.

A threading lock guards the table: a hit never awaits while holding it, so it is safe for
concurrent tasks on one loop and for threads alike.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from byteor_cloud.ratelimit.base import RateDecision, check_arguments

DEFAULT_MAX_KEYS = 10_000
# Expired keys dropped per new key at most, so one hit never pays for a long sweep.
_SWEEP_BATCH = 64


@dataclass
class _Log:
    window_s: float
    hits: deque[float] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self.hits and self.hits[0] <= horizon:
            self.hits.popleft()

    def expired(self, now: float) -> bool:
        return not self.hits or self.hits[-1] <= now - self.window_s


class MemoryRateLimiter:
    """See module docstring. `clock` returns seconds on a monotonic scale (tests inject one)."""

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def key_count(self) -> int:
        return len(self._logs)

    async def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        check_arguments(limit, window_s)
        with self._lock:
            # Read the clock under the lock so every log stays in time order.
            now = self._clock()
            log = self._log_for(key, window_s, now)
            log.prune(now)
            allowed = len(log.hits) < limit
            if allowed:
                log.hits.append(now)
            reset_after_s = log.hits[0] + window_s - now if log.hits else 0.0
            return RateDecision(
                allowed=allowed,
                limit=limit,
                remaining=max(0, limit - len(log.hits)),
                reset_after_s=reset_after_s,
            )

    def _log_for(self, key: str, window_s: float, now: float) -> _Log:
        log = self._logs.get(key)
        if log is not None:
            self._logs.move_to_end(key)
            log.window_s = window_s
            return log
        self._make_room(now)
        log = self._logs[key] = _Log(window_s)
        return log

    def _make_room(self, now: float) -> None:
        for _ in range(_SWEEP_BATCH):
            if not self._logs:
                return
            coldest_key, coldest = next(iter(self._logs.items()))
            if not coldest.expired(now):
                break
            del self._logs[coldest_key]
        while len(self._logs) >= self.max_keys:
            self._logs.popitem(last=False)

    async def aclose(self) -> None:
        with self._lock:
            self._logs.clear()
