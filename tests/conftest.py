"""Shared fixtures: where the shared data lives, and a skip marker for tests that need it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SIGNS = SHARED_DATA / "sign-language-digits" / "images"

needs_signs = pytest.mark.skipif(
    not SIGNS.is_dir(),
    reason=f"the sign-language photos are not at {SIGNS} (../shared beside the checkout)",
)
