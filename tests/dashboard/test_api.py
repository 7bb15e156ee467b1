"""Every read route of the dashboard's JSON API, against a store filled by a real small study.

Each answer is checked against what the store itself holds (``SqliteStorage`` read directly): the
counts, the best trial, the curves' values, the downsampled series' totals, the table's order.
The client is httpx over ``ASGITransport``: the app is called directly, no server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.dashboard.conftest import ESCAPED_NAME, NUDGED_LR, SPACE, client
from tunery.dashboard import create_app
from tunery.dashboard._importance import FOREST_TREES
from tunery.records import FrozenTrial, TrialState
from tunery.report import importance
from tunery.storage import SqliteStorage
from tunery.study import Study, load_study

pytestmark = pytest.mark.anyio

STATES = [state.name for state in TrialState]
BEST_PARAMS = {"lr": 0.01, "beta": 0.95, "units": 50, "act": "relu"}


@pytest.fixture(scope="module")
def app(caviar_db: Path) -> Iterator[Any]:
    made = create_app(f"sqlite:///{caviar_db}")
    yield made
    made.state.store.close()


@pytest.fixture(scope="module")
def truth(caviar_db: Path) -> Iterator[list[FrozenTrial]]:
    """Study "digits" as the store holds it."""
    with SqliteStorage(caviar_db) as store:
        info = store.get_study("digits")
        assert info is not None
        yield store.get_all_trials(info.study_id)


async def get(app: Any, path: str, status: int = 200, **params: Any) -> Any:
    async with client(app) as c:
        answer = await c.get(path, params=params or None)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


def complete(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state is TrialState.COMPLETE]


def best_of(trials: list[FrozenTrial]) -> FrozenTrial:
    return max(complete(trials), key=lambda t: t.value or -math.inf)


# -- studies -------------------------------------------------------------------------------------


async def test_config_names_the_store_and_the_version(app: Any, caviar_db: Path) -> None:
    found = await get(app, "/api/config")
    assert found == {
        "read_only": False,
        "version": version("tunery"),
        "storage": f"sqlite:///{caviar_db}",
    }


async def test_studies_list_counts_best_and_last_activity(
    app: Any, truth: list[FrozenTrial]
) -> None:
    studies = {s["name"]: s for s in (await get(app, "/api/studies"))["studies"]}
    assert set(studies) == {"digits", ESCAPED_NAME}
    digits = studies["digits"]
    expected = dict.fromkeys(STATES, 0) | Counter(t.state.name for t in truth)
    assert digits["counts"] == expected
    assert digits["n_trials"] == len(truth) == 24
    assert (digits["direction"], digits["metric"]) == ("maximize", "val_accuracy")
    assert digits["best_value"] == best_of(truth).value
    latest = max(max(t.started or 0.0, t.finished or 0.0) for t in truth)
    shown = datetime.fromisoformat(digits["last_activity"].replace("Z", "+00:00"))
    assert digits["last_activity"].endswith("Z")
    assert shown.timestamp() == pytest.approx(latest, abs=1e-3)
    assert studies[ESCAPED_NAME]["direction"] == "minimize"
    assert studies[ESCAPED_NAME]["counts"]["COMPLETE"] == 3


async def test_a_study_has_its_best_params_scales_rounds_and_metrics(
    app: Any, truth: list[FrozenTrial]
) -> None:
    study = await get(app, "/api/studies/digits")
    best = best_of(truth)
    assert study["best"] == {"number": best.number, "value": best.value, "params": best.params}
    assert study["n_trials"] == 24
    assert study["counts"]["PRUNED"] == sum(t.state is TrialState.PRUNED for t in truth)
    params = study["params"]
    assert params["lr"] == {
        "kind": "float",
        "scale": "log",
        "low": 1e-4,
        "high": 1.0,
        "choices": None,
    }
    assert (params["beta"]["scale"], params["beta"]["low"]) == ("one_minus_log", 0.9)
    assert (params["units"]["kind"], params["units"]["low"], params["units"]["high"]) == (
        "int",
        10,
        100,
    )
    assert params["act"]["kind"] == "choice"
    assert params["act"]["choices"] == ["relu", "tanh"]
    assert sorted(study["metrics"]) == ["loss", "val_accuracy"]
    assert study["panda"] is False


async def test_rounds_boxes_hold_the_trials_of_their_round(
    app: Any, truth: list[FrozenTrial]
) -> None:
    rounds = (await get(app, "/api/studies/digits"))["rounds"]
    assert [(r["number"], r["origin"]) for r in rounds] == [(1, "given"), (2, "zoomed")]
    first, second = rounds[0]["box"], rounds[1]["box"]
    assert first["lr"] == pytest.approx([SPACE["lr"].low, SPACE["lr"].high])
    assert first["units"] == [10, 100]
    assert rounds[0]["choices"] == {"act": ["relu", "tanh"]}
    for name in ("lr", "beta", "units"):  # a zoomed box lies inside the first
        assert first[name][0] <= second[name][0] < second[name][1] <= first[name][1]
    assert rounds[1]["choices"]["act"] == sorted({t.params["act"] for t in truth if t.round == 2})
    for trial in truth:
        box = rounds[trial.round - 1]["box"]
        for name in ("lr", "beta", "units"):
            low, high = box[name]
            assert low * (1 - 1e-9) <= trial.params[name] <= high * (1 + 1e-9), (trial, name)


async def test_an_unknown_study_is_a_404_naming_it(app: Any) -> None:
    for path in (
        "",
        "/trials",
        "/best",
        "/curves",
        "/scatter?param=lr",
        "/importance",
        "/trials/0",
    ):
        found = await get(app, f"/api/studies/nope{path}", 404)
        assert "'nope'" in found["error"]


# -- the trials table ----------------------------------------------------------------------------


async def test_trials_filter_by_state_and_round(app: Any, truth: list[FrozenTrial]) -> None:
    for state in ("COMPLETE", "PRUNED", "FAILED", "RUNNING"):
        page = await get(app, "/api/studies/digits/trials", state=state, limit=1000)
        wanted = [t.number for t in truth if t.state.name == state]
        assert page["total"] == len(wanted)
        assert [t["number"] for t in page["trials"]] == wanted
    both = await get(app, "/api/studies/digits/trials", state="PRUNED,FAILED", round=2)
    assert [t["number"] for t in both["trials"]] == [
        t.number for t in truth if t.round == 2 and t.state.name in ("PRUNED", "FAILED")
    ]


async def test_a_trial_line_carries_its_record(app: Any, truth: list[FrozenTrial]) -> None:
    lines = (await get(app, "/api/studies/digits/trials", limit=1000))["trials"]
    assert len(lines) == len(truth)
    for line, trial in zip(lines, truth, strict=True):
        assert line["number"] == trial.number
        assert line["state"] == trial.state.name
        assert line["round"] == trial.round
        assert line["value"] == trial.value
        assert line["params"] == trial.params
        assert line["epochs"] == len(trial.curve)
        assert trial.finished is not None
        assert trial.started is not None
        assert line["duration"] == pytest.approx(trial.finished - trial.started)


async def test_trials_sort_by_value_with_nulls_last(app: Any, truth: list[FrozenTrial]) -> None:
    valued = [t for t in truth if t.value is not None]
    for order in ("asc", "desc"):
        page = await get(app, "/api/studies/digits/trials", sort="value", order=order, limit=1000)
        values = [t["value"] for t in page["trials"]]
        known = sorted((t.value or 0.0 for t in valued), reverse=order == "desc")
        assert values == [*known, *[None] * (len(truth) - len(valued))]
    by_number = await get(app, "/api/studies/digits/trials", order="desc", limit=1000)
    assert [t["number"] for t in by_number["trials"]] == list(range(23, -1, -1))
    by_duration = await get(app, "/api/studies/digits/trials", sort="duration", limit=1000)
    durations = [t["duration"] for t in by_duration["trials"]]
    assert durations == sorted(durations)


async def test_trials_pages_add_up_to_the_whole(app: Any) -> None:
    whole = await get(app, "/api/studies/digits/trials", sort="value", limit=1000)
    pages = []
    for offset in range(0, 24, 5):
        page = await get(app, "/api/studies/digits/trials", sort="value", offset=offset, limit=5)
        assert page["total"] == 24
        pages += page["trials"]
    assert pages == whole["trials"]


async def test_trials_filter_by_value_range(app: Any, truth: list[FrozenTrial]) -> None:
    low, high = 0.85, 0.9
    page = await get(app, "/api/studies/digits/trials", value_min=low, value_max=high)
    expected = [t.number for t in truth if t.value is not None and low <= t.value <= high]
    assert expected  # the range is not empty, so the filter is tested
    assert [t["number"] for t in page["trials"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "DONE"}, "state"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"sort": "colour"}, "sort"),
        ({"order": "up"}, "order"),
        ({"round": "-1"}, "round"),
        ({"value_min": "nan"}, "value_min"),
    ],
)
async def test_a_bad_query_is_a_400_naming_the_field(
    app: Any, query: dict[str, str], field: str
) -> None:
    found = await get(app, "/api/studies/digits/trials", 400, **query)
    assert f"'{field}'" in found["error"]
    assert repr(next(iter(query.values()))) in found["error"]


# -- charts --------------------------------------------------------------------------------------


async def test_best_so_far_keeps_every_change_when_downsampled(
    app: Any, truth: list[FrozenTrial]
) -> None:
    done = complete(truth)
    full = await get(app, "/api/studies/digits/best")
    assert full["total"] == len(done)
    assert full["numbers"] == [t.number for t in done]
    assert full["values"] == [t.value for t in done]
    running_best = [max(t.value or 0.0 for t in done[: i + 1]) for i in range(len(done))]
    assert full["best"] == running_best
    small = await get(app, "/api/studies/digits/best", max_points=3)
    assert small["total"] == len(done)
    changes = {
        done[i].number for i in range(len(done)) if i == 0 or running_best[i] != running_best[i - 1]
    }
    assert changes <= set(small["numbers"])
    assert len(small["numbers"]) <= 3 + len(changes)
    assert small["best"][-1] == best_of(truth).value
    assert small["numbers"] == sorted(small["numbers"])


async def test_curves_are_downsampled_and_equal_the_stored_ones(
    app: Any, truth: list[FrozenTrial], caviar_db: Path
) -> None:
    by_number = {t.number: t for t in truth}
    full = await get(app, "/api/studies/digits/curves")
    assert full["metric"] == "val_accuracy"
    assert full["total"] == full["shown"] == len(truth)  # every trial reported epochs
    for line in full["curves"]:
        trial = by_number[line["number"]]
        assert line["epochs"] == sorted(trial.curve)
        assert line["values"] == [trial.curve[e]["val_accuracy"] for e in line["epochs"]]
        assert (line["state"], line["value"]) == (trial.state.name, trial.value)
    with SqliteStorage(caviar_db) as store:
        assert full["cursor"] == store.curve_cursor()
    small = await get(app, "/api/studies/digits/curves", metric="loss", max_trials=5, max_points=3)
    assert (small["shown"], small["total"]) == (5, len(truth))
    assert best_of(truth).number in [line["number"] for line in small["curves"]]
    for line in small["curves"]:
        trial = by_number[line["number"]]
        epochs = sorted(trial.curve)
        assert len(line["epochs"]) <= 3
        assert (line["epochs"][0], line["epochs"][-1]) == (epochs[0], epochs[-1])
        assert line["values"] == [trial.curve[e]["loss"] for e in line["epochs"]]


async def test_curves_of_an_unknown_metric_are_empty(app: Any) -> None:
    found = await get(app, "/api/studies/digits/curves", metric="nope")
    assert (found["curves"], found["shown"]) == ([], 0)


async def test_scatter_puts_each_param_on_its_scale(app: Any, truth: list[FrozenTrial]) -> None:
    shown = [t for t in truth if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value]
    for param, scale in (("lr", "log"), ("beta", "one_minus_log"), ("units", "linear")):
        found = await get(app, "/api/studies/digits/scatter", param=param)
        assert (found["param"], found["scale"], found["total"]) == (param, scale, len(shown))
        assert found["numbers"] == [t.number for t in shown]
        assert found["x"] == [t.params[param] for t in shown]
        assert found["y"] == [t.value for t in shown]
        assert found["rounds"] == [t.round for t in shown]
    act = await get(app, "/api/studies/digits/scatter", param="act")
    assert (act["kind"], act["choices"]) == ("choice", ["relu", "tanh"])
    assert act["x"] == [float(["relu", "tanh"].index(t.params["act"])) for t in shown]
    few = await get(app, "/api/studies/digits/scatter", param="lr", max_points=4)
    assert (len(few["x"]), few["total"]) == (4, len(shown))
    assert set(few["numbers"]) <= set(found["numbers"])


async def test_scatter_of_an_unknown_param_is_a_400(app: Any) -> None:
    found = await get(app, "/api/studies/digits/scatter", 400, param="momentum")
    assert "'param'" in found["error"]
    assert "'momentum'" in found["error"]
    missing = await get(app, "/api/studies/digits/scatter", 400)
    assert "'param'" in missing["error"]


async def test_importance_is_the_reports(app: Any, caviar_db: Path) -> None:
    with SqliteStorage(caviar_db) as store:  # the dashboard's smaller forest, on every trial
        ranking = importance(load_study("digits", store), n_estimators=FOREST_TREES)
    found = await get(app, "/api/studies/digits/importance")
    assert found["n_trials"] == ranking.n_trials == 19
    assert found["note"] is None
    assert found["importance"] == dict(ranking.ranking)
    assert set(found["importance"]) == {"lr", "beta", "units", "act"}
    assert sum(found["importance"].values()) == pytest.approx(1.0)


async def test_importance_of_too_few_trials_says_why(app: Any) -> None:
    found = await get(app, f"/api/studies/{quote(ESCAPED_NAME, safe='')}/importance")
    assert found["importance"] == {}
    assert "COMPLETE" in found["note"]


async def test_compare_puts_studies_side_by_side(app: Any, truth: list[FrozenTrial]) -> None:
    names = f"digits,{ESCAPED_NAME}"
    found = await get(app, "/api/compare", studies=names, param="units")
    first, second = found["studies"]
    assert (first["name"], second["name"]) == ("digits", ESCAPED_NAME)
    assert (first["direction"], second["direction"]) == ("maximize", "minimize")
    assert first["best"] == await get(app, "/api/studies/digits/best")
    assert (
        first["scatter"]["x"] == (await get(app, "/api/studies/digits/scatter", param="units"))["x"]
    )
    assert second["scatter"] is None  # that study has no "units"
    assert second["best"]["total"] == 3
    assert second["best"]["best"] == sorted(second["best"]["best"], reverse=True)  # minimize
    missing = await get(app, "/api/compare", 404, studies="digits,nope")
    assert "'nope'" in missing["error"]


async def test_compare_takes_names_with_commas_as_repeated_params(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'commas.db'}"
    names = ["lr, wide", "lr, narrow", "plain", "other"]
    for k, name in enumerate(names):
        with Study(name, url, "minimize", seed=k) as study:
            study.caviar(
                lambda t: t.params["lr"], {"lr": SPACE["lr"]}, n_trials=3 + k, workers=1, live=False
            )
    app = create_app(url)
    try:
        found = await get(app, f"/api/compare?study={quote(names[0])}&study={quote(names[1])}")
        assert [s["name"] for s in found["studies"]] == names[:2]
        assert [s["best"]["total"] for s in found["studies"]] == [3, 4]
        old_form = await get(app, "/api/compare", studies="plain,other")  # still works
        assert [s["name"] for s in old_form["studies"]] == ["plain", "other"]
        split = await get(app, "/api/compare", 404, studies=f"{names[0]},plain")
        assert "'lr'" in split["error"]  # the old form cannot say "lr, wide": why the new one
        nothing = await get(app, "/api/compare", 400)
        assert "'study'" in nothing["error"]
    finally:
        app.state.store.close()


# -- a trial -------------------------------------------------------------------------------------


async def test_a_trial_page_has_its_record_and_curves(app: Any, truth: list[FrozenTrial]) -> None:
    failed = next(t for t in truth if t.state is TrialState.FAILED)
    found = await get(app, f"/api/studies/digits/trials/{failed.number}")
    assert (found["number"], found["state"], found["round"]) == (
        failed.number,
        "FAILED",
        failed.round,
    )
    assert found["params"] == failed.params
    assert found["error"] == failed.error
    assert "a bad batch" in found["error"]
    for metric in ("val_accuracy", "loss"):
        line = found["curves"][metric]
        assert line["epochs"] == sorted(failed.curve)
        assert line["values"] == [failed.curve[e][metric] for e in line["epochs"]]
    assert (found["panda"], found["nudgeable"], found["events"]) == (False, {}, [])
    assert (found["lineage"], found["checkpoints"], found["path_curves"]) == ([], [], None)
    assert found["running"] is False


@pytest.mark.parametrize("number", ["24", "-1", "x", "1e3"])
async def test_a_missing_trial_is_a_404(app: Any, number: str) -> None:
    found = await get(app, f"/api/studies/digits/trials/{number}", 404)
    assert number in found["error"]


async def test_a_study_name_with_a_slash_is_reached_encoded(app: Any) -> None:
    path = f"/api/studies/{quote(ESCAPED_NAME, safe='')}"
    study = await get(app, path)
    assert study["name"] == ESCAPED_NAME
    assert (await get(app, f"{path}/trials"))["total"] == 3
    assert (await get(app, f"{path}/trials/0"))["number"] == 0


# -- a panda trial -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panda_app(panda_db: Path) -> Iterator[Any]:
    made = create_app(f"sqlite:///{panda_db}")
    yield made
    made.state.store.close()


@pytest.fixture(scope="module")
def panda_truth(panda_db: Path) -> Iterator[tuple[SqliteStorage, list[FrozenTrial]]]:
    with SqliteStorage(panda_db) as store:
        info = store.get_study("cub")
        assert info is not None
        yield store, store.get_all_trials(info.study_id)


async def test_a_panda_study_says_so(panda_app: Any) -> None:
    study = await get(panda_app, "/api/studies/cub")
    assert study["panda"] is True
    assert study["n_trials"] == 2


async def test_a_panda_branch_shows_lineage_events_and_checkpoints(
    panda_app: Any, panda_truth: tuple[SqliteStorage, list[FrozenTrial]]
) -> None:
    store, (first, second) = panda_truth
    branch0 = await get(panda_app, "/api/studies/cub/trials/0")
    branch1 = await get(panda_app, "/api/studies/cub/trials/1")
    lineage = [
        {"number": 0, "parent": None, "origin": "start", "state": "PRUNED"},
        {"number": 1, "parent": [0, 2], "origin": "rollback", "state": "COMPLETE"},
    ]
    assert branch0["lineage"] == branch1["lineage"] == lineage
    assert branch0["checkpoints"] == store.checkpoint_epochs(first.trial_id) == [0, 1, 2, 3, 4]
    assert branch1["checkpoints"] == store.checkpoint_epochs(second.trial_id) == [2, 3, 4, 5]
    kinds = [(e["kind"], e["epoch"]) for e in branch0["events"]]
    assert kinds == [("nudge", 3), ("rollback", 4)]
    nudge = branch0["events"][0]
    assert nudge["payload"] == {"lr": NUDGED_LR}
    assert nudge["applied"] is not None
    assert branch1["events"] == []
    assert branch0["curves"]["val_accuracy"]["epochs"] == [1, 2, 3, 4]
    assert branch1["curves"]["val_accuracy"]["epochs"] == [3, 4, 5]
    path = branch1["path_curves"]["val_accuracy"]
    assert path["epochs"] == [1, 2, 3, 4, 5]  # epochs 1-2 are the parent's
    assert path["values"][:2] == [first.curve[e]["val_accuracy"] for e in (1, 2)]
    assert (branch0["head"], branch1["head"]) == (1, 1)
    assert branch0["panda"]
    assert "lr" in branch0["nudgeable"]
    assert branch0["nudgeable"]["lr"]["scale"] == "log"
    assert branch0["hyperparameters"]["lr"] == NUDGED_LR
    assert branch1["hyperparameters"]["lr"] == pytest.approx(first.params["lr"])


# -- a running trial -----------------------------------------------------------------------------


async def test_a_running_trial_is_counted_shown_first_and_sorted_last(fresh_db: Path) -> None:
    with SqliteStorage(fresh_db) as store:
        info = store.get_study("digits")
        assert info is not None
        running = store.create_trial(info.study_id, round=2, sample_id=None, params=BEST_PARAMS)
        for epoch in (1, 2):
            store.report(running.trial_id, epoch, {"val_accuracy": 0.1 * epoch, "loss": 1.0})
        store.heartbeat([running.trial_id], 4e9)
    app = create_app(f"sqlite:///{fresh_db}")
    listed = {s["name"]: s for s in (await get(app, "/api/studies"))["studies"]}["digits"]
    study = await get(app, "/api/studies/digits")
    curves = await get(app, "/api/studies/digits/curves", max_trials=3)
    table = await get(app, "/api/studies/digits/trials", sort="duration", order="desc", limit=1000)
    only = await get(app, "/api/studies/digits/trials", state="RUNNING")
    page = await get(app, "/api/studies/digits/trials/24")
    app.state.store.close()
    assert (listed["counts"]["RUNNING"], listed["n_trials"], study["counts"]["RUNNING"]) == (
        1,
        25,
        1,
    )
    assert listed["last_activity"].startswith("2096-")  # the heartbeat: 4e9 s after 1970
    assert curves["curves"][-1]["number"] == 24  # running: always among the shown
    assert curves["curves"][-1]["state"] == "RUNNING"
    assert curves["curves"][-1]["values"] == [0.1, 0.2]
    assert curves["total"] == 25
    assert table["trials"][-1]["number"] == 24  # no duration yet: last either way
    assert table["trials"][-1]["duration"] is None
    assert [(t["number"], t["epochs"], t["value"]) for t in only["trials"]] == [(24, 2, None)]
    assert (page["state"], page["running"], page["finished"]) == ("RUNNING", True, None)
