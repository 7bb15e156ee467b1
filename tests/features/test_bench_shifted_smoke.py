"""``bench/shifted.py``: its shifted photos (seeded, in range, unlike the originals) and its
``--quick`` mode end to end; ``bench/augment_cost.py --quick`` too."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import SIGNS

REPO = Path(__file__).resolve().parents[2]


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    saved = dict(os.environ)  # the script pins thread variables for itself on import
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


@pytest.fixture(scope="module")
def shifted() -> ModuleType:
    return _module("shifted")


def test_white_balance_is_neutral_at_6500_k_and_warm_below(shifted: ModuleType) -> None:
    np.testing.assert_allclose(shifted.kelvin_gains(6_500), 1.0)
    warm, cool = shifted.kelvin_gains(3_000), shifted.kelvin_gains(9_000)
    assert warm[2] < warm[1] < warm[0]  # less blue than green than red
    assert cool[0] < cool[2]


def test_a_shifted_photo_is_seeded_in_range_and_unlike_the_original(shifted: ModuleType) -> None:
    photo = np.random.default_rng(0).uniform(0.2, 0.8, (64, 64, 3))
    first = shifted.shift_photo(photo, np.random.default_rng(1))
    again = shifted.shift_photo(photo, np.random.default_rng(1))
    other = shifted.shift_photo(photo, np.random.default_rng(2))
    assert first.shape == photo.shape
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.min() >= 0
    assert first.max() <= 1
    assert np.abs(first - photo).mean() > 0.05


@pytest.mark.skipif(not SIGNS.is_dir(), reason=f"no sign-language photos at {SIGNS}")
def test_the_quick_mode_writes_its_table_with_the_cnn_row_accounted_for(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "shifted.py"), "--quick", "--out", str(tmp_path)],
        check=True, capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    table = (tmp_path / "shifted.md").read_text()
    for row in ("(a) untuned MLP", "(b) tuned MLP", "(c) tuned MLP, augmentation searched"):
        assert f"| {row}" in table
    assert "(d) tuned CNN" in table  # run, or skipped with its reason
    rows = json.loads((tmp_path / "shifted.json").read_text())
    for row in rows:
        for run in row["runs"]:
            assert 0 <= run["clean"] <= 1
            assert 0 <= run["shifted"] <= 1


def test_the_augment_cost_quick_mode_prints_its_ratios() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "augment_cost.py"), "--quick"],
        check=True, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert "fg/none" in done.stdout
    assert "25-12" in done.stdout
