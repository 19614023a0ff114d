"""A real browser for the journeys only a browser shows: Debian's `chromium`, driven by
Playwright with that executable (never a downloaded browser).

The tests use Playwright's async API on the test's own event loop: the sync API runs a
loop of its own and leaves it closed behind it, which breaks every asyncio test after.
Without `chromium` or Playwright the tests skip with the reason; on CI (``CI=true``) that
is a failure. Screenshots go to ``test-artifacts/`` (or ``NURTURE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

ARTIFACTS = Path(os.environ.get("NURTURE_TEST_ARTIFACTS") or "test-artifacts")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest_asyncio.fixture
async def page(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A page of a headless chromium the size of a phone; its screenshot is kept after."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 420, "height": 860})
        yield page
        await snap(page, request.node.name.replace("/", "_").replace("[", "-").rstrip("]"))
        await browser.close()


async def snap(page: Any, name: str) -> None:
    """Keep a screenshot of the page as it is now, as `ARTIFACTS/name.png`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
