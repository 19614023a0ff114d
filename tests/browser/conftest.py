"""A real browser for the journeys only a browser shows: Debian's `chromium`, driven by
Playwright with that executable (never a downloaded browser).

Without `chromium` or Playwright the tests skip with the reason; on CI (``CI=true``) that is
a failure. Screenshots go to ``test-artifacts/`` (or ``NURTURE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(os.environ.get("NURTURE_TEST_ARTIFACTS") or "test-artifacts")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium, headless, for the whole session."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; its screenshot is kept under `ARTIFACTS` after the test."""
    context = browser.new_context(viewport={"width": 420, "height": 860})  # a phone
    page = context.new_page()
    yield page
    snap(page, request.node.name.replace("/", "_").replace("[", "-").rstrip("]"))
    context.close()


def snap(page: Any, name: str) -> None:
    """Keep a screenshot of the page as it is now, as `ARTIFACTS/name.png`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
