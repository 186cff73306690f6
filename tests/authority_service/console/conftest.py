"""A real Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium) for the
console's browser tests, one per module; skipped with the reason when either is missing,
except where ``$UUNET_REQUIRE_BROWSER`` is set (``.ci/run`` sets it): there, a failure.

Screenshots of every page go to a temporary folder; the main ones (the README's) are copied to
``$UUNET_CONSOLE_SCREENSHOTS`` too when it is set (``docs/console`` refreshes them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "UUNET_REQUIRE_BROWSER"
SCREENSHOTS_ENV = "UUNET_CONSOLE_SCREENSHOTS"
WIDE = (1280, 800)
NARROW = (420, 800)


def browser_paths() -> tuple[str | None, str | None]:
    """Chromium's executable and its driver on this machine (``None`` when missing)."""
    binary = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    return binary, shutil.which("chromedriver")


def missing_browser() -> str | None:
    """Why no browser test can run here (``None``: they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    binary, driver = browser_paths()
    if binary is None or driver is None:
        return "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium at 1280x800 (``--headless=new``)."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        f"--window-size={WIDE[0]},{WIDE[1]}",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--no-first-run",
        "--disable-extensions",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports, JS errors
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_window_size(*WIDE)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where the tests save a screenshot of each page (both window sizes)."""
    return tmp_path_factory.mktemp("console-screenshots")


def main_screenshots_dir() -> Path | None:
    """Where the main screenshots are copied too: ``$UUNET_CONSOLE_SCREENSHOTS`` (``docs/console``
    refreshes the README's), or nowhere."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    if not chosen:
        return None
    Path(chosen).mkdir(parents=True, exist_ok=True)
    return Path(chosen)
