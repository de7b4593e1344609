"""The one source of "now": timezone-aware UTC, whole microseconds, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - swapped by tests


def utcnow() -> datetime:
    """The current time in UTC."""
    return _now()


def set_clock(now: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests only); None restores the wall clock."""
    global _now
    _now = now or (lambda: datetime.now(UTC))


def rfc3339(value: datetime) -> str:
    """RFC 3339 UTC text with a `Z` suffix, as every API time is written."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
