"""The study report: its plain data first (no matplotlib), then the PNGs, index.html and summary."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from rich.console import Console

from tests.strategies import float_dists, one_minus_log_floats
from tunery import ConfigError, Study
from tunery.records import TrialState
from tunery.report import (
    MIN_IMPORTANCE_TRIALS,
    StudySnapshot,
    best_trials,
    curves_data,
    format_value,
    importance,
    param_axes,
    param_points,
    print_summary,
    report_data,
    round_ranges,
    state_counts,
    write_report,
    zoom_data,
)
from tunery.report._plots import axis_limits, one_minus_log_ticks
from tunery.space import Box, Choice, Distribution, Float, Int
from tunery.study import Round

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ODD = 'act<b>&"x'  # a parameter name that HTML must escape

BATCH = Choice([32, 64, 128])
SPACE: dict[str, Distribution] = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "beta": Float(0.9, 0.999, scale="one_minus_log"),
    "units": Int(10, 100),
    "batch_size": BATCH,
}

Objective = Callable[[dict[str, Any]], float]


def lr_only(params: Mapping[str, Any]) -> float:
    """A metric that depends on lr alone: best at lr = 1e-2, falling off per decade."""
    return 1.0 - 0.2 * abs(math.log10(params["lr"]) + 2.0)


def run(study: Study, n: int, objective: Objective, space: Mapping[str, Any] = SPACE) -> None:
    """Ask and tell ``n`` trials; each reports 3 epochs rising to its value (NaN: diverged)."""
    for _ in range(n):
        trial = study.ask(space)
        value = objective(trial.params)
        for epoch in (1, 2, 3):
            trial.report(epoch, val_accuracy=value * epoch / 3, loss=1.0 / epoch)
        study.tell(trial, value)


def make_study(n: int = 30, objective: Objective = lr_only, **options: Any) -> Study:
    study = Study(options.pop("name", "s"), storage="memory", **options)
    run(study, n, objective)
    return study


# -- states and best trials ------------------------------------------------------------------------


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=15), st.sampled_from(["max", "min"]))
@settings(max_examples=20, deadline=None)
def test_best_trials_are_sorted_by_the_direction(values: list[float], direction: str) -> None:
    study = Study("s", storage="memory", direction=f"{direction}imize")
    for value in values:
        study.tell(study.ask({"x": Float(0, 1)}), value)
    best = best_trials(study, top=5)
    expected = sorted(values, reverse=direction == "max")[:5]
    assert [t.value for t in best] == pytest.approx(expected)
    assert all(t.state is TrialState.COMPLETE for t in best)


def test_best_trials_skip_unfinished_and_refuse_a_bad_top() -> None:
    study = make_study(3)
    study.tell(study.ask(SPACE), math.nan)
    study.ask(SPACE)  # left RUNNING
    assert len(best_trials(study)) == 3
    with pytest.raises(ConfigError, match="top"):
        best_trials(study, top=0)


def test_state_counts_list_every_state_and_sum_to_the_trials() -> None:
    study = make_study(4)
    study.tell(study.ask(SPACE), math.inf)
    study.tell(study.ask(SPACE), state=TrialState.FAILED)
    counts = state_counts(study)
    assert list(counts) == ["COMPLETE", "PRUNED", "DIVERGED", "FAILED", "RUNNING"]
    assert counts == {"COMPLETE": 4, "PRUNED": 0, "DIVERGED": 1, "FAILED": 1, "RUNNING": 0}
    assert sum(counts.values()) == len(study.trials)


# -- curves ----------------------------------------------------------------------------------------


def test_curves_have_a_line_per_reporting_trial_and_drop_non_finite_points() -> None:
    study = make_study(3)
    diverging = study.ask(SPACE)
    diverging.report(1, val_accuracy=0.4)
    diverging.report(2, val_accuracy=math.nan)
    study.tell(diverging, math.nan)
    study.tell(study.ask(SPACE), state=TrialState.FAILED)  # reported nothing: no line
    data = curves_data(study)
    assert data.metric == "val_accuracy"
    assert data.maximize
    assert [line.number for line in data.lines] == [0, 1, 2, 3]
    last = data.lines[-1]
    assert last.diverged
    assert (last.epochs, last.values) == ([1], [0.4])
    for line, trial in zip(data.lines[:3], study.trials, strict=False):
        assert line.epochs == [1, 2, 3]
        assert line.values[-1] == pytest.approx(trial.value)
    values = [float(t.value or 0.0) for t in study.trials[:3]]
    assert data.value_range == pytest.approx((min(values), max(values)))


def test_curves_fall_back_to_a_reported_metric() -> None:
    study = Study("s", storage="memory", metric="f1")
    trial = study.ask(SPACE)
    trial.report(1, loss=0.5)
    study.tell(trial, 0.3)
    assert curves_data(study).metric == "loss"
    assert curves_data(study, "nope").lines == []


# -- axes and points -------------------------------------------------------------------------------


def test_each_parameter_gets_its_own_scale() -> None:
    axes = param_axes(make_study(2))
    assert list(axes) == list(SPACE)
    assert axes["lr"].log
    assert (axes["lr"].low, axes["lr"].high) == (1e-4, 1.0)
    assert axes["beta"].scale == "one_minus_log"
    assert not axes["beta"].log
    assert axes["units"].scale == "linear"
    assert axes["batch_size"].categorical
    assert axes["batch_size"].options == (32, 64, 128)
    assert [axes["batch_size"].position(v) for v in (32, 128, 48)] == [0.0, 2.0, None]


def test_a_categorical_axis_tells_true_from_one() -> None:
    study = Study("s", storage="memory")
    run(study, 2, lambda p: 0.5, {"flag": Choice([1, True, "1"])})
    axis = param_axes(study)["flag"]
    assert [axis.position(v) for v in (1, True, "1")] == [0.0, 1.0, 2.0]
    assert axis.labels == ["1", "True", "1"]


def test_param_points_keep_finished_values_and_put_diverged_trials_apart() -> None:
    study = make_study(5)
    diverged = study.ask(SPACE)
    study.tell(diverged, math.nan)
    pruned = study.ask(SPACE)
    pruned.report(1, val_accuracy=0.25)
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(study.ask(SPACE), state=TrialState.FAILED)
    points = {p.axis.name: p for p in param_points(study)}
    lr = points["lr"]
    trials = study.trials
    assert lr.numbers == [0, 1, 2, 3, 4, 6]
    assert lr.x == [trials[n].params["lr"] for n in lr.numbers]
    assert lr.y == pytest.approx([*(lr_only(trials[n].params) for n in range(5)), 0.25])
    assert lr.states[-1] == "PRUNED"
    assert lr.diverged_x == [diverged.params["lr"]]
    batch = points["batch_size"]
    assert batch.x == [BATCH.index(trials[n].params["batch_size"]) for n in batch.numbers]


# -- importance ------------------------------------------------------------------------------------


@pytest.mark.parametrize("important", list(SPACE))
@given(seed=st.integers(0, 2**16))
@settings(max_examples=3, deadline=None)
def test_importance_ranks_the_parameter_the_metric_depends_on_first(
    important: str, seed: int
) -> None:
    study = make_study(30, lambda p: SPACE[important].to_unit(p[important]), seed=seed)
    ranking = importance(study, seed=seed)
    assert ranking.note is None
    assert ranking.n_trials == 30
    assert ranking.names[0] == important
    assert sorted(ranking.names) == sorted(SPACE)
    shares = [share for _, share in ranking.ranking]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] > 0.5


def test_importance_is_reproducible_by_seed() -> None:
    study = make_study(12, lambda p: lr_only(p) + p["units"] / 200)
    assert importance(study, seed=3) == importance(study, seed=3)


def test_importance_needs_enough_complete_trials() -> None:
    study = make_study(MIN_IMPORTANCE_TRIALS - 1)
    for _ in range(3):
        study.tell(study.ask(SPACE), math.nan)  # DIVERGED trials do not count
    ranking = importance(study)
    assert ranking.ranking == []
    assert ranking.n_trials == MIN_IMPORTANCE_TRIALS - 1
    assert f"at least {MIN_IMPORTANCE_TRIALS} COMPLETE" in (ranking.note or "")
    run(study, 1, lr_only)
    assert importance(study).note is None


def test_importance_of_a_constant_metric_is_no_ranking() -> None:
    ranking = importance(make_study(8, lambda p: 0.5))
    assert ranking.ranking == []
    assert "same val_accuracy" in (ranking.note or "")
    with pytest.raises(ConfigError, match="min_trials"):
        importance(make_study(1), min_trials=1)


# -- rounds and boxes ------------------------------------------------------------------------------

BASE: dict[str, Distribution] = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "beta": Float(0.9, 0.999, scale="one_minus_log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh", "sigmoid"]),
}


def snapshot(*rounds: Round) -> StudySnapshot:
    return StudySnapshot("s", "maximize", "val_accuracy", [], list(rounds))


def test_box_edges_map_back_through_the_base_space() -> None:
    box = Box({"lr": (0.25, 0.5), "beta": (0.5, 1.0), "units": (0.0, 0.5)}, {"act": ("relu",)})
    # The zoomed space differs from the base: edges must go through the base, not through it.
    narrowed = {**BASE, "lr": Float(1e-3, 1e-2, scale="log"), "beta": Float(0.99, 0.999)}
    data = snapshot(Round(1, BASE, None, "random", 0.0), Round(2, narrowed, box, "random", 1.0))
    first, zoomed = round_ranges(data)
    assert (first.origin, zoomed.origin) == ("given", "zoomed")
    assert first.ranges["lr"].describe() == "[0.0001, 1]"
    lr, beta, units = (zoomed.ranges[name] for name in ("lr", "beta", "units"))
    # log: 10^(-4 + 4u); one-minus-log: 1 - 10^(-1 - 2u); Int(10, 100): 91 bins of width 1/91.
    assert (lr.low, lr.high) == pytest.approx((1e-3, 1e-2))
    assert (beta.low, beta.high) == pytest.approx((0.99, 0.999))
    assert (units.low, units.high) == (10, 10 + math.floor(0.5 * 91))
    assert zoomed.ranges["act"].options == ("relu",)


def test_a_later_given_round_is_the_base_of_the_zooms_after_it() -> None:
    narrower = {**BASE, "lr": Float(1e-3, 1e-1, scale="log")}
    rounds = [
        Round(1, BASE, None, "random", 0.0),
        Round(2, narrower, None, "random", 1.0),
        Round(3, narrower, Box({"lr": (0.0, 0.5)}, {}), "random", 2.0),
    ]
    boxes = zoom_data(snapshot(*rounds), ("lr", "act"))
    assert boxes is not None
    given_box, zoomed_box = boxes.boxes
    assert (given_box.round, given_box.origin) == (2, "given")
    assert given_box.x == pytest.approx((1e-3, 1e-1))
    assert given_box.y == (-0.5, 2.5)  # all three options
    assert (zoomed_box.round, zoomed_box.origin) == (3, "zoomed")
    assert zoomed_box.x == pytest.approx((1e-3, 1e-2))
    assert boxes.x_axis.log


@given(u=st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted), dist=float_dists)
def test_float_box_edges_are_the_values_at_those_unit_points(u: list[float], dist: Float) -> None:
    box = Box({"p": (u[0], u[1])}, {})
    rounds = [Round(1, {"p": dist}, None, "random", 0.0), Round(2, {"p": dist}, box, "random", 1)]
    span = round_ranges(snapshot(*rounds))[1].ranges["p"]
    assert span.low is not None
    assert span.high is not None
    assert dist.low <= span.low <= span.high <= dist.high
    # Each edge sits at its unit point on the distribution's own scale.
    assert dist.to_unit(span.low) == pytest.approx(u[0], abs=1e-6)
    assert dist.to_unit(span.high) == pytest.approx(u[1], abs=1e-6)


def test_a_real_zoom_box_holds_the_best_trials_and_lies_in_the_narrowed_space() -> None:
    study = make_study(30)
    zoomed = study.zoom(top=5, min_top=3, margin=0.1)
    ranges = round_ranges(study)[1]
    for trial in best_trials(study, top=5):
        for name in ("lr", "beta", "units"):
            span = ranges.ranges[name]
            assert span.low is not None
            assert span.high is not None
            assert span.low * (1 - 1e-9) <= trial.params[name] <= span.high * (1 + 1e-9)
            narrowed = zoomed.space[name]
            assert isinstance(narrowed, Float | Int)
            assert narrowed.low * (1 - 1e-9) <= span.low <= span.high <= narrowed.high * (1 + 1e-9)
        assert trial.params["batch_size"] in ranges.ranges["batch_size"].options  # type: ignore[operator]


def test_zoom_data_draws_the_two_most_important_parameters() -> None:
    study = make_study(30, lambda p: lr_only(p) + p["units"] / 100)
    study.zoom()
    run(study, 5, lr_only)
    ranking = importance(study)
    data = zoom_data(study, ranking=ranking)
    assert data is not None
    assert (data.x_axis.name, data.y_axis.name) == tuple(ranking.names[:2])
    assert len(data.xs) == len(data.ys) == len(study.trials)
    assert [box.round for box in data.boxes] == [2]
    assert zoom_data(study, ("beta", "batch_size")) is not None
    with pytest.raises(ConfigError, match="params"):
        zoom_data(study, ("lr", "nope"))


def test_zoom_data_needs_two_parameters() -> None:
    study = Study("s", storage="memory")
    run(study, 3, lr_only, {"lr": SPACE["lr"]})
    assert zoom_data(study) is None


# -- formatting and axis helpers -------------------------------------------------------------------


@given(st.floats(0.9, 1.0, exclude_max=True))
def test_format_value_keeps_one_minus_beta(value: float) -> None:
    shown = float(format_value(value))
    assert abs((1 - shown) - (1 - value)) <= 0.01 * (1 - value)


def test_format_value_tells_near_values_apart() -> None:
    assert format_value(0.999) == "0.999"
    assert format_value(0.99949) != format_value(0.9995)
    assert [format_value(v) for v in (None, 3, True, "relu")] == ["—", "3", "True", "relu"]


@given(one_minus_log_floats())
def test_one_minus_log_ticks_are_even_on_the_axis(dist: Float) -> None:
    ticks = one_minus_log_ticks(dist.low, dist.high)
    assert len(ticks) >= 2
    assert all(dist.low - 1e-12 <= t <= dist.high + 1e-12 for t in ticks)
    steps = np.diff(-np.log10(1 - np.array(ticks)))
    assert np.allclose(steps, steps[0], rtol=1e-6)


def test_one_minus_log_ticks_are_the_decades_when_there_are_some() -> None:
    assert one_minus_log_ticks(0.85, 0.9995) == pytest.approx([0.9, 0.99, 0.999])


@given(float_dists, st.lists(st.floats(0, 1), max_size=5))
def test_axis_limits_cover_the_bounds_and_the_points(dist: Float, us: list[float]) -> None:
    axis = param_axes(snapshot(Round(1, {"p": dist}, None, "random", 0.0)))["p"]
    values = [dist.from_unit(u) for u in us]
    low, high = axis_limits(axis, values)
    assert low < dist.low  # padded, so points on the bounds are not cut in half
    assert high > dist.high
    assert all(low <= v <= high for v in values)


@pytest.mark.parametrize(
    ("name", "scale"),
    [("lr", "log"), ("beta", "function"), ("units", "linear"), ("batch_size", "linear")],
)
def test_each_parameter_is_drawn_on_its_scale(name: str, scale: str) -> None:
    from tunery.report._plots import _apply_scale, _figure

    axes = _figure(4, 3).subplots()
    _apply_scale(axes, param_axes(make_study(3))[name], "y", [])
    assert axes.get_yscale() == scale
    figure = axes.get_figure()
    figure.canvas.draw()  # tick labels are set at draw time
    labels = [label.get_text() for label in axes.get_yticklabels()]
    if name == "beta":
        assert list(axes.get_yticks()) == pytest.approx([0.9, 0.99, 0.999])
        assert labels == ["0.9", "0.99", "0.999"]
    if name == "batch_size":
        assert labels == ["32", "64", "128"]


# -- the written report ----------------------------------------------------------------------------


def _full_study() -> Study:
    """Two rounds, every state, and a parameter whose name HTML must escape."""
    space = {**SPACE, ODD: Choice(["a<b", "c&d"])}
    study = Study("study <&> one", storage="memory", seed=4)
    run(study, 20, lambda p: math.nan if p["lr"] > 0.3 else lr_only(p), space)
    pruned = study.ask(space)
    pruned.report(1, val_accuracy=0.1)
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(study.ask(space), state=TrialState.FAILED)
    study.zoom()
    run(study, 8, lr_only, space)
    return study


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Study, Path]:
    study = _full_study()
    return study, write_report(study, tmp_path_factory.mktemp("report") / "nested")


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', html)


def test_the_report_writes_every_png_and_an_index_that_links_them(
    full_report: tuple[Study, Path],
) -> None:
    _, index = full_report
    assert index.name == "index.html"
    folder = index.parent
    pngs = sorted(p.name for p in folder.glob("*.png"))
    params = [*SPACE, ODD]
    assert {"curves.png", "importance.png", "zoom.png"} <= set(pngs)
    assert len(pngs) == 3 + len(params)
    html = index.read_text(encoding="utf-8")
    for name in pngs:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        with Image.open(folder / name) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size[0] > 100
        assert f'src="{name}"' in html
    assert all((folder / link).is_file() for link in _links(html))


def test_the_index_is_self_contained_and_escapes_names(full_report: tuple[Study, Path]) -> None:
    study, index = full_report
    html = index.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert all(":" not in link and not link.startswith("/") for link in _links(html))
    assert "http" not in html
    assert ODD not in html
    assert "act&lt;b&gt;&amp;&quot;x" in html
    assert "study &lt;&amp;&gt; one" in html
    assert "a&lt;b" in html  # an option
    counts = state_counts(study)
    assert f"<td>{counts['DIVERGED']}</td>" in html
    assert counts["DIVERGED"] > 0
    best = best_trials(study, top=1)[0]
    assert format_value(best.value) in html
    ranking = importance(study).ranking
    assert len(ranking) == len(SPACE) + 1
    for _, share in ranking:
        assert f"<td>{share:.3f}</td>" in html


def test_a_small_study_reports_without_importance_and_old_pngs_go(tmp_path: Path) -> None:
    study = Study("small", storage="memory")
    run(study, 3, lr_only, {"lr": SPACE["lr"]})
    (tmp_path / "param-07-old.png").write_bytes(PNG_SIGNATURE)
    (tmp_path / "notes.txt").write_text("mine")
    index = write_report(study, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["curves.png", "index.html", "notes.txt", "param-01-lr.png"]
    html = index.read_text(encoding="utf-8")
    assert f"at least {MIN_IMPORTANCE_TRIALS} COMPLETE trials" in html
    assert "fewer than two parameters" in html


def test_an_empty_study_gets_an_index_and_no_png(tmp_path: Path) -> None:
    index = write_report(Study("empty", storage="memory"), tmp_path / "r")
    assert [p.name for p in index.parent.iterdir()] == ["index.html"]
    html = index.read_text(encoding="utf-8")
    assert "no COMPLETE trial yet" in html
    assert "no round yet" in html


def test_the_report_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "r"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="out_dir"):
        write_report(Study("empty", storage="memory"), blocker)


# -- terminal summary ------------------------------------------------------------------------------


def _summary(study: Any, **options: Any) -> str:
    console = Console(record=True, width=240, color_system=None)
    print_summary(study, console, **options)
    return console.export_text()


def test_the_summary_shows_counts_best_trials_rounds_and_the_ranking() -> None:
    study = _full_study()
    data = report_data(study)
    text = _summary(data, top=3)
    assert f"{len(study.trials)} trials" in text
    assert f"{data.counts['DIVERGED']} DIVERGED" in text
    assert "best 3 trials" in text
    for trial in data.best[:3]:
        assert re.search(rf"│\s+{trial.number} │\s+{trial.round} │", text)
    for r in data.rounds:
        assert all(span.describe() in text for span in r.ranges.values())
    section = text[text.index("importance (") :]
    rows = [section.index(f"│ {name} ") for name in data.importance.names]
    assert rows == sorted(rows)
    assert data.importance.names[0] == "lr"


def test_the_summary_of_a_small_study_says_why_there_is_no_ranking() -> None:
    study = make_study(2)
    text = _summary(study)
    assert "importance: needs at least 5 COMPLETE trials" in " ".join(text.split())
    assert "2 COMPLETE" in text


def test_importing_the_report_loads_neither_matplotlib_nor_sklearn() -> None:
    code = "import sys, tunery.report; print('matplotlib' in sys.modules, 'sklearn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]
