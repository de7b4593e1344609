"""A real headless browser for UI tests: Playwright for Python driving Debian's Chromium
(`apt-get install chromium`; Playwright's own browser download is never used).

With CI=true a missing browser fails the run; elsewhere the UI tests are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.databases import in_ci

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"browser unavailable in CI: {reason}")
    pytest.skip(f"browser unavailable: {reason}")


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, or a skip (a failure with CI=true)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc})")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
