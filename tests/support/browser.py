"""A real browser for the UI tests: Debian's chromium driven by Playwright (no downloads)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from resources.settings import PROJECT_ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


@contextmanager
def chromium_page(width: int = 1600, height: int = 1000) -> Iterator[object]:
    """A fresh page in headless chromium; closed (with the browser) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def open_page(page, url: str, settle_ms: int = 1500) -> str:
    """Load ``url``, let the app render, and return the page's visible text."""
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(settle_ms)
    return page.inner_text("body")


def screenshot(page, name: str) -> Path:
    """Save a screenshot as a test artifact (git-ignored ``tests/artifacts/``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
