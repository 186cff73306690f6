"""Where CI requires the browser (``.ci/run`` sets ``$UUNET_REQUIRE_BROWSER``), it is there: the
console's browser tests never skip there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.authority_service.console.conftest import REQUIRE_ENV, missing_browser

REPO = Path(__file__).resolve().parents[3]


def test_ci_installs_the_browser_and_requires_it():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "chromium chromium-driver" in ci and f"export {REQUIRE_ENV}=1" in ci


def test_the_browser_is_there_where_ci_requires_it():
    if not os.environ.get(REQUIRE_ENV):
        pytest.skip(f"{REQUIRE_ENV} is not set (only CI requires the browser)")
    assert missing_browser() is None
