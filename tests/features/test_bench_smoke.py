"""The benchmark scripts' ``--quick`` modes run end to end and write what they promise."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import spaces
from tunery.space import Float, Space

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "search_efficiency.py"
SYNTHETIC = ("synthetic-lr", "synthetic-lr-beta")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``search_efficiency.py --quick`` into a fresh folder (synthetic objectives: seconds)."""
    out = tmp_path_factory.mktemp("search_efficiency")
    subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    return out


def test_quick_search_efficiency_writes_the_table_and_a_plot_per_objective(
    quick_run: Path,
) -> None:
    markdown = (quick_run / "search_efficiency.md").read_text()
    for name in SYNTHETIC:
        assert f"### {name}" in markdown
        png = quick_run / f"search_efficiency_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](benchmarks/{png.name})" in markdown
    assert "| method | best @ 8 | best @ 16 | trials to grid's best |" in markdown
    assert "coarse to fine, 2 rounds" in markdown
    # The exact command is recorded (with its nice level when it ran niced).
    assert re.search(
        r"- command: `(nice -n \d+ )?python \S*search_efficiency\.py --quick", markdown
    )
    assert "CPUs; date: " in markdown


def test_quick_search_efficiency_records_every_method_for_every_seed(quick_run: Path) -> None:
    records = json.loads((quick_run / "search_efficiency.json").read_text())
    assert set(records) == set(SYNTHETIC)
    expected = {
        "grid",
        "random-linear",
        "random",
        "sobol",
        "c2f-2",
        "c2f-3",
        "c2f-2-gp",
        "c2f-2-tpe",
    }
    if importlib.util.find_spec("optuna") is not None:
        expected |= {"optuna-random", "optuna-tpe"}
    for record in records.values():
        assert record["budgets"] == [8, 16]
        assert record["seeds"] == [0, 1]
        assert set(record["runs"]) == expected
        for by_seed in record["runs"].values():
            assert set(by_seed) == {"0", "1"}
            for by_budget in by_seed.values():
                # One run of the largest budget, or one run per budget; as many values as trials.
                assert all(len(values) <= int(budget) for budget, values in by_budget.items())
                assert "16" in by_budget


def test_quick_search_efficiency_scores_each_pick_where_no_search_looked(quick_run: Path) -> None:
    records = json.loads((quick_run / "search_efficiency.json").read_text())
    for name, record in records.items():
        test = bench.make_objective(name).test
        for method, by_seed in record["picks"].items():
            for seed, pick in by_seed.items():
                values = record["runs"][method][seed]["16"]
                assert pick["value"] == pytest.approx(max(values), rel=1e-5)  # its best trial
                assert pick["test"] == test(pick["params"])  # the noise-free value
                assert pick["test"] != pick["value"]


# --- the script's helpers, imported from its file ----------------------------------------------


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("search_efficiency", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_efficiency"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_a_methods_rerun_brings_back_its_rows_and_keeps_the_others(
    quick_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    shutil.copytree(quick_run, out)
    path = out / "search_efficiency.json"
    before = json.loads(path.read_text())
    dropped = {name: {**record, "runs": dict(record["runs"])} for name, record in before.items()}
    for record in dropped.values():
        del record["runs"]["c2f-2-gp"]
    path.write_text(json.dumps(dropped))
    command = [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--methods", "c2f-2-gp"]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, cwd=REPO)
    after = json.loads(path.read_text())
    for name, record in after.items():
        assert record["runs"] == before[name]["runs"]  # the rerun row is back, the others kept
        sources = record["sources"]
        assert [source["methods"] for source in sources] == [
            [m for m in before[name]["runs"] if m != "c2f-2-gp"],
            ["c2f-2-gp"],
        ]
        assert sources[1]["command"].endswith("--methods c2f-2-gp")
    markdown = (out / "search_efficiency.md").read_text()
    assert re.search(r"- rows c2f-2-gp: command: `.*--methods c2f-2-gp`", markdown)


def test_an_unknown_method_exits_2_naming_it() -> None:
    command = [sys.executable, str(SCRIPT), "--quick", "--methods", "c2f-2,bayes"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert "unknown method 'bayes'" in done.stderr
    assert "Traceback" not in done.stderr


@settings(max_examples=60, deadline=None)
@given(space=spaces(max_size=4), budget=st.integers(1, 64))
def test_the_grid_is_the_fullest_that_fits_the_budget(space: Space, budget: int) -> None:
    counts = bench.grid_counts(space, budget)
    caps = {name: bench._axis_cap(dist) for name, dist in space.items()}
    assert list(counts) == list(space)
    assert math.prod(counts.values()) <= budget
    assert all(1 <= counts[name] <= caps[name] for name in space)
    for name in space:  # no axis can take one more point within the budget
        bigger = math.prod(counts.values()) // counts[name] * (counts[name] + 1)
        assert counts[name] == caps[name] or bigger > budget
    points = bench.grid_points(space, budget)
    assert len(points) <= budget
    assert all(space[name].contains(p[name]) for p in points for name in space)
    assert len({tuple(map(repr, p.values())) for p in points}) == len(points)


def test_the_grid_gives_earlier_parameters_more_points() -> None:
    space = {"lr": Float(1e-4, 1.0, scale="log"), "beta": Float(0.8, 0.999), "l2": Float(0, 1)}
    assert list(bench.grid_counts(space, 32).values()) == [4, 4, 2]
    axis = [p["lr"] for p in bench.grid_points(space, 32)][::8]
    np.testing.assert_allclose(np.log10(axis), [-3.5, -2.5, -1.5, -0.5])  # cell centres


@given(values=st.lists(st.one_of(st.floats(-10, 10), st.just(math.nan)), max_size=20))
def test_best_so_far_is_the_running_maximum_skipping_failed_trials(values: list[float]) -> None:
    curve = bench.best_so_far(values)
    expected = np.fmax.accumulate(np.array(values, dtype=float)) if values else np.array([])
    np.testing.assert_array_equal(np.array(curve, dtype=float), expected)


def test_trials_to_reach_counts_trials_or_the_smallest_budget_that_did() -> None:
    anytime = bench.METHOD_BY_NAME["random"]
    budgeted = bench.METHOD_BY_NAME["c2f-2"]
    assert bench.trials_to_reach(anytime, {8: [0.1, math.nan, 0.5, 0.9]}, 0.5) == 3
    assert bench.trials_to_reach(anytime, {8: [0.1, 0.2]}, 0.5) == math.inf
    runs = {8: [0.1] * 8, 16: [0.2] * 15 + [0.6], 32: [0.7] * 32}
    assert bench.trials_to_reach(budgeted, runs, 0.5) == 16


def test_optuna_and_sklearn_sample_beta_as_one_minus_a_log_uniform() -> None:
    space = {"beta": Float(0.9, 0.999, scale="one_minus_log")}
    draws = bench._sklearn_distributions(space)["beta"].rvs(size=4000, random_state=0)
    assert np.all((draws >= 0.9) & (draws <= 0.999))
    # tunery's scale puts half the draws above 0.99 (its median); so must the stand-ins.
    assert abs(np.mean(draws > 0.99) - 0.5) < 0.05
    optuna = pytest.importorskip("optuna")
    trial = optuna.trial.FixedTrial({"one_minus_beta": 0.01})
    assert bench._optuna_params(trial, space) == {"beta": pytest.approx(0.99)}
