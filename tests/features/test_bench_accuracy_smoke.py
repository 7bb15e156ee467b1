"""``bench/accuracy.py`` and ``bench/bn_robustness.py``: their ``--quick`` modes run end to end
(bundled digits, seconds) and write the table, the PNG and the JSON they promise; the width of
bn_robustness's good region is what its docstring says."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy", "torch"] if HAS_TORCH else ["numpy"]


def run_quick(script: str, out: Path, *options: str) -> None:
    subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--out", str(out), *options],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def accuracy_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("accuracy")
    run_quick("accuracy.py", out)
    return out


@pytest.fixture(scope="module")
def sized_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rows (g), (h) on a small folder of solid-colour photos: the digits are never resized."""
    from tests.data.helpers import make_image_folder

    photos = tmp_path_factory.mktemp("photos")
    make_image_folder(photos, {str(digit): 12 for digit in range(6)})
    out = tmp_path_factory.mktemp("accuracy_sized")
    run_quick("accuracy.py", out, "--data", str(photos), "--rows", "gh")
    return out


@pytest.fixture(scope="module")
def bn_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bn_robustness")
    run_quick("bn_robustness.py", out)
    return out


def test_quick_accuracy_writes_a_row_per_row_and_engine_and_the_plot(accuracy_out: Path) -> None:
    markdown = (accuracy_out / "accuracy.md").read_text()
    assert "| row | engine | epochs | train | validation | test | test by seed |" in markdown
    for key in "abcd":
        for backend in BACKENDS:
            assert sum(
                line.startswith(f"| ({key}) ") and f"| {backend} |" in line
                for line in markdown.splitlines()
            ), (key, backend)
    assert "- rows (a), (b), (c), (d): command `python " in markdown
    assert "CPUs; date: " in markdown
    assert "a smoke run on the bundled 8 × 8 digits" in markdown.lower()
    assert "](benchmarks/accuracy.png)" in markdown
    assert (accuracy_out / "accuracy.png").read_bytes()[:8] == PNG_MAGIC


def test_quick_accuracy_records_every_evaluation_and_the_studies_winners(
    accuracy_out: Path,
) -> None:
    record = json.loads((accuracy_out / "accuracy.json").read_text())
    evaluations = record["evaluations"]
    assert sorted((e["row"], e["backend"]) for e in evaluations) == sorted(
        (key, backend) for key in "abcd" for backend in BACKENDS
    )
    for e in evaluations:
        assert e["outcome"] == "complete"
        assert all(0.0 <= e[name] <= 1.0 for name in ("train", "val", "test"))
    tuned, searched = record["studies"]["c"], record["studies"]["d"]
    assert set(tuned["best_params"]) == {"lr", "beta", "batch_size", "l2", "keep_prob"}
    assert set(searched["best_params"]) == set(tuned["best_params"]) | {"units", "num_layers"}
    for study in (tuned, searched):
        assert 1e-4 <= study["best_params"]["lr"] <= 1e-1
        assert sum(study["trials"].values()) == record["plan"]["study"]["trials"]
        # The winner, retrained with the study's seed on the NumPy engine, is the same run.
        key = "c" if study is tuned else "d"
        again = next(
            e for e in evaluations if (e["row"], e["seed"], e["backend"]) == (key, 0, "numpy")
        )
        assert again["val"] == pytest.approx(study["best_val"])


def test_quick_accuracy_skips_the_size_rows_on_the_digits(accuracy_out: Path) -> None:
    record = json.loads((accuracy_out / "accuracy.json").read_text())
    assert [row["key"] for row in record["rows"]] == list("abcd")


def test_quick_accuracy_searches_the_input_size_of_photos(sized_out: Path) -> None:
    record = json.loads((sized_out / "accuracy.json").read_text())
    assert [row["key"] for row in record["rows"]] == ["g", "h"]
    sizes = {16, 24, 32, 48, 64}
    for key in "gh":
        study = record["studies"][key]
        assert study["space"]["image_size"] == {"choices": sorted(sizes)}
        assert study["best_params"]["image_size"] in sizes
        again = next(
            e
            for e in record["evaluations"]
            if (e["row"], e["seed"], e["backend"]) == (key, 0, "numpy")
        )
        # Retrained at the winner's size: the same run as the study's, so the same accuracy.
        assert again["val"] == pytest.approx(study["best_val"])
    markdown = (sized_out / "accuracy.md").read_text()
    assert "(g) ≥ 0.90" in markdown
    assert "(h) ≥ 0.92" in markdown


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_quick_accuracy_engines_agree(accuracy_out: Path) -> None:
    record = json.loads((accuracy_out / "accuracy.json").read_text())
    by_run = {(e["row"], e["seed"], e["backend"]): e["test"] for e in record["evaluations"]}
    for (row, seed, backend), test in by_run.items():
        if backend == "numpy":
            assert abs(test - by_run[(row, seed, "torch")]) <= 0.02, row


def test_quick_bn_robustness_writes_both_arms_and_the_plot(bn_out: Path) -> None:
    markdown = (bn_out / "bn_robustness.md").read_text()
    assert "| batch norm | " in markdown
    assert "| no batch norm | " in markdown
    assert "](benchmarks/bn_robustness.png)" in markdown
    assert (bn_out / "bn_robustness.png").read_bytes()[:8] == PNG_MAGIC
    record = json.loads((bn_out / "bn_robustness.json").read_text())
    draws = []
    for result in record["arms"].values():
        points = result["points"]
        assert len(points) == record["plan"]["trials"]
        assert all(1e-5 <= p["lr"] <= 10.0 for p in points)
        draws.append([p["lr"] for p in points])
    assert draws[0] == draws[1]  # the same study, so the same learning rates in both arms


# -- the good region ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bn_module() -> Iterator[ModuleType]:
    """``bench/bn_robustness.py`` imported; the thread variables it sets are put back after."""
    saved_environ, saved_path, saved_modules = dict(os.environ), list(sys.path), set(sys.modules)
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bn_robustness", BENCH / "bn_robustness.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.path[:] = saved_path
        for name in ("bn_robustness", "accuracy"):  # the bench scripts, not tunery's modules
            if name not in saved_modules:
                sys.modules.pop(name, None)


scores = st.lists(
    st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), min_size=1, max_size=30
).filter(lambda values: any(not math.isnan(v) for v in values))


@given(values=scores, tolerance=st.sampled_from([0.0, 0.02, 0.05]))
def test_good_region_is_the_run_around_the_best_within_tolerance(
    bn_module: Any, values: list[float], tolerance: float
) -> None:
    lrs = [10.0 ** (i / 4 - 5) for i in range(len(values))]  # increasing
    region = bn_module.good_region(lrs, values, tolerance)
    best = max(v for v in values if not math.isnan(v))
    assert region.best == best
    first, last = lrs.index(region.low), lrs.index(region.high)
    assert first <= lrs.index(region.best_lr) <= last
    assert region.count == last - first + 1
    assert all(values[i] >= best - tolerance for i in range(first, last + 1))
    for outside in (first - 1, last + 1):  # the run cannot grow: NaN or too far below the best
        if 0 <= outside < len(values):
            assert not values[outside] >= best - tolerance
    assert region.decades == pytest.approx(math.log10(region.high / region.low))


@given(values=scores)
def test_smoothing_over_no_neighbours_keeps_each_value_and_over_all_gives_the_mean(
    bn_module: Any, values: list[float]
) -> None:
    lrs = [10.0 ** (i / 4 - 5) for i in range(len(values))]  # a quarter decade apart
    as_scores = [0.0 if math.isnan(v) else v for v in values]  # a diverged trial counts as 0
    assert bn_module.smoothed(lrs, values, 0.1) == pytest.approx(as_scores)
    mean = sum(as_scores) / len(as_scores)
    assert bn_module.smoothed(lrs, values, 100.0) == pytest.approx([mean] * len(values))
