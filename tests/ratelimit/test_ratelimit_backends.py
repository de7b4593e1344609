"""One behavioural suite over both rate-limit backends (in-process and the real Redis), plus
the in-process backend's bounded memory and thread safety."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from byteor_cloud.ratelimit import MemoryRateLimiter, RateLimiter

MakeLimiter = Callable[..., RateLimiter]


class FakeClock:
    """A clock the test moves by hand, in seconds."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- both backends ------------------------------------------------------------------------


async def test_allows_up_to_the_limit_then_refuses_until_the_oldest_hit_leaves(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(clock)
    first = await limiter.hit("k", limit=5, window_s=60)
    assert (first.allowed, first.limit, first.remaining, first.reset_after_s) == (True, 5, 4, 60)
    assert first.retry_after_s == 0
    for remaining in (3, 2, 1, 0):
        clock.advance(1)
        decision = await limiter.hit("k", limit=5, window_s=60)
        assert decision.allowed
        assert decision.remaining == remaining
    clock.advance(6)  # 10 s after the first hit

    refused = await limiter.hit("k", limit=5, window_s=60)

    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.reset_after_s == 50  # the first hit leaves the window 60 s after it
    assert refused.retry_after_s == 50
    assert refused.reset_header_s == 50
    assert not refused.failed_open


async def test_the_window_slides_one_slot_at_a_time(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    limiter = make_limiter(clock)
    for _ in range(3):  # hits at 0, 2 and 4 s
        assert (await limiter.hit("k", limit=3, window_s=10)).allowed
        clock.advance(2)
    clock.advance(4)  # 10 s: the hit at 0 leaves

    freed = await limiter.hit("k", limit=3, window_s=10)
    again = await limiter.hit("k", limit=3, window_s=10)
    clock.advance(1.5)
    almost = await limiter.hit("k", limit=3, window_s=10)
    clock.advance(0.5)  # 12 s: the hit at 2 leaves
    next_slot = await limiter.hit("k", limit=3, window_s=10)

    assert freed.allowed
    assert freed.remaining == 0
    assert freed.reset_after_s == 2  # the hit at 2 s is now the oldest
    assert not again.allowed
    assert again.retry_after_s == 2
    assert not almost.allowed
    assert almost.reset_after_s == pytest.approx(0.5)
    assert almost.retry_after_s == 1  # rounded up: never invites a retry too early
    assert next_slot.allowed


async def test_refused_hits_are_not_counted(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    for _ in range(2):
        assert (await limiter.hit("k", limit=2, window_s=10)).allowed
    for _ in range(9):  # a client hammering while refused
        clock.advance(1)
        assert not (await limiter.hit("k", limit=2, window_s=10)).allowed
    clock.advance(1)

    decision = await limiter.hit("k", limit=2, window_s=10)

    assert decision.allowed
    assert decision.remaining == 1


async def test_keys_are_counted_independently(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    limiter = make_limiter(clock)
    for _ in range(3):
        await limiter.hit("people:alice", limit=3, window_s=60)
    assert not (await limiter.hit("people:alice", limit=3, window_s=60)).allowed

    other_subject = await limiter.hit("people:bob", limit=3, window_s=60)
    other_class = await limiter.hit("agents:alice", limit=3, window_s=60)

    assert (other_subject.allowed, other_subject.remaining) == (True, 2)
    assert (other_class.allowed, other_class.remaining) == (True, 2)


async def test_concurrent_hits_admit_exactly_the_limit(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()

    decisions = await asyncio.gather(
        *(limiter.hit("burst", limit=50, window_s=60) for _ in range(100))
    )

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 50
    # Each admitted hit saw a distinct count: no two read the same state.
    assert sorted(d.remaining for d in allowed) == list(range(50))
    assert all(d.retry_after_s >= 1 for d in decisions if not d.allowed)


async def test_the_window_slides_in_real_time(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    for _ in range(2):
        assert (await limiter.hit("k", limit=2, window_s=1.0)).allowed

    refused = await limiter.hit("k", limit=2, window_s=1.0)
    assert not refused.allowed
    assert 0 < refused.reset_after_s <= 1.0
    assert refused.retry_after_s == 1
    await asyncio.sleep(refused.reset_after_s + 0.05)

    assert (await limiter.hit("k", limit=2, window_s=1.0)).allowed


@pytest.mark.parametrize(("limit", "window_s"), [(0, 60), (5, 0), (5, -1)])
async def test_nonsense_limits_are_refused(
    make_limiter: MakeLimiter, limit: int, window_s: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        await make_limiter().hit("k", limit=limit, window_s=window_s)


# -- the in-process backend -----------------------------------------------------------------


async def test_memory_stays_bounded_under_many_keys(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(max_keys=100, clock=clock)
    for n in range(5_000):
        await limiter.hit(f"k{n}", limit=5, window_s=60)
        clock.advance(0.001)

    assert limiter.key_count == 100
    recent = await limiter.hit("k4999", limit=5, window_s=60)
    assert recent.remaining == 3  # the most recent keys keep their counts


async def test_live_keys_are_evicted_least_recently_used_first(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(max_keys=3, clock=clock)
    for key in ("a", "b", "c"):
        await limiter.hit(key, limit=5, window_s=60)
        clock.advance(1)
    await limiter.hit("a", limit=5, window_s=60)  # a is now used more recently than b

    await limiter.hit("d", limit=5, window_s=60)

    assert limiter.key_count == 3
    assert (await limiter.hit("a", limit=5, window_s=60)).remaining == 2  # kept
    # b was evicted (forgot its hit); re-adding it evicts c, the coldest then.
    assert (await limiter.hit("b", limit=5, window_s=60)).remaining == 4


async def test_expired_keys_are_dropped_when_new_ones_arrive(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(max_keys=1_000, clock=clock)
    for n in range(50):
        await limiter.hit(f"old{n}", limit=5, window_s=10)
    clock.advance(11)

    await limiter.hit("new", limit=5, window_s=10)

    assert limiter.key_count == 1


def test_memory_backend_is_safe_across_threads() -> None:
    limiter = MemoryRateLimiter()

    def burst() -> int:
        async def hits() -> int:
            decisions = [await limiter.hit("shared", limit=100, window_s=60) for _ in range(25)]
            return sum(d.allowed for d in decisions)

        return asyncio.run(hits())

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = sum(pool.map(lambda _: burst(), range(8)))

    assert allowed == 100
