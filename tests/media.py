"""Where the real media of ../shared/media live, and a marker to skip when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA_DIR = (REPO / ".." / "shared" / "media").resolve()
needs_media = pytest.mark.skipif(
    not MEDIA_DIR.is_dir(), reason=f"real media folder {MEDIA_DIR} not present"
)
