"""Population-based training from Python: exploit copies weights, records, nudges, bad options."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tunery
from tunery import ConfigError
from tunery.config import TuneConfig, config_from_dict
from tunery.nn.train import Trainer
from tunery.records import FrozenTrial, TrialState
from tunery.report import member_schedules, population_lineage, segment_info
from tunery.study import Study
from tunery.workflows.objective import build_trainer, load_config_dataset
from tunery.workflows.panda import branch_events
from tunery.workflows.pbt import Population, PopulationControl, pbt, quantile_size

EPOCHS = 6
INTERVAL = 2
SIZE = 4


def make_config(**pbt_options: Any) -> TuneConfig:
    tables = {
        "study": {"name": "pop", "seed": 3},
        "data": {"source": "digits"},
        "model": {"layers": [10], "epochs": EPOCHS},
        "space": {
            "lr": {"low": 1e-3, "high": 0.3, "scale": "log"},
            "beta": {"low": 0.8, "high": 0.99, "scale": "one_minus_log"},
        },
        "run": {"workers": 1},
        "pbt": {"population": SIZE, "perturbation_interval": INTERVAL, **pbt_options},
    }
    return config_from_dict(tables)


def run(storage: str = ":memory:", **options: Any) -> Study:
    study = Study("pop", storage, seed=3)
    pbt(study, make_config(), **options)
    return study


@pytest.fixture(scope="module")
def done() -> Study:
    return run()


def segments(study: Study) -> dict[tuple[int, int], FrozenTrial]:
    found = {}
    for trial in study.trials:
        info = segment_info(trial)
        found[(info["member"], info["step"])] = trial
    return found


def restored(config: TuneConfig, params: dict[str, Any], blob: bytes) -> Trainer:
    trainer = build_trainer(config, params, load_config_dataset(config))
    trainer.restore(blob)
    return trainer


def same_weights(first: Trainer, second: Trainer) -> bool:
    mine, theirs = first.model.parameters(), second.model.parameters()
    assert mine
    assert sorted(mine) == sorted(theirs)
    return all(np.array_equal(mine[name], theirs[name]) for name in mine)


def checkpoint(study: Study, trial: FrozenTrial, epoch: int) -> bytes:
    found = study.storage.load_checkpoint(trial.trial_id, epoch)
    assert found is not None
    return found[1]


# -- the population --------------------------------------------------------------------------------


def test_every_member_trains_every_step_once(done: Study) -> None:
    found = segments(done)
    steps = math.ceil(EPOCHS / INTERVAL)
    assert sorted(found) == [(m, s) for m in range(SIZE) for s in range(steps)]
    assert len(done.trials) == SIZE * steps
    assert all(t.state is TrialState.COMPLETE for t in done.trials)
    for (_, step), trial in found.items():
        assert sorted(trial.curve) == list(range(step * INTERVAL + 1, (step + 1) * INTERVAL + 1))


def test_the_bottom_quantile_exploits_a_top_member(done: Study) -> None:
    found = segments(done)
    for step in range(1, EPOCHS // INTERVAL):
        before = {m: found[(m, step - 1)] for m in range(SIZE)}
        ranked = sorted(before, key=lambda m: (-float(before[m].value or 0), m))
        size = quantile_size(SIZE, 0.25)
        top, bottom = ranked[:size], ranked[-size:]
        for member in range(SIZE):
            trial = found[(member, step)]
            assert trial.parent is not None
            source = next(t for t in done.trials if t.number == trial.parent[0])
            assert trial.parent[1] == step * INTERVAL
            if member in bottom:
                assert segment_info(source)["member"] in top
            else:
                assert source.number == before[member].number  # goes on from its own


def test_an_exploit_starts_from_the_top_members_weights(done: Study) -> None:
    """Replay the exploited segment from the source's checkpoint: the weights it ended with are
    those, trained on with the segment's new params; from its own old weights they are not."""
    config = make_config()
    found = segments(done)
    exploited = [
        t
        for (m, s), t in found.items()
        if s > 0 and t.parent is not None and t.parent[0] != found[(m, s - 1)].number
    ]
    assert exploited
    trial = exploited[0]
    info = segment_info(trial)
    start, end = info["start"], info["end"]
    source = next(t for t in done.trials if t.number == trial.parent[0])  # type: ignore[index]
    ended = restored(config, trial.params, checkpoint(done, trial, end))

    replay = restored(config, trial.params, checkpoint(done, source, start))
    replay.set_hyperparameters(**ended.hyperparameters())
    replay.run(end - start)
    assert same_weights(ended, replay)

    own_before = found[(info["member"], info["step"] - 1)]
    own = restored(config, trial.params, checkpoint(done, own_before, start))
    own.set_hyperparameters(**ended.hyperparameters())
    own.run(end - start)
    assert not same_weights(ended, own)


def test_perturbed_params_stay_in_the_space_and_move_by_a_factor_on_their_scale() -> None:
    space = make_config().space
    study = run(resample_probability=0.0)  # perturbed always, never redrawn
    by_number = {t.number: t for t in study.trials}
    exploited = 0
    for trial in study.trials:
        assert all(space[name].contains(value) for name, value in trial.params.items())
        entries = [e for e in branch_events(trial) if e.kind == "exploit"]
        if not entries:
            continue
        exploited += 1
        source = by_number[entries[0].payload["trial"]].params
        lr, beta = space["lr"], space["beta"]
        assert _by_a_factor(trial.params["lr"] / source["lr"]) or trial.params["lr"] in (
            lr.low,  # type: ignore[attr-defined]
            lr.high,  # type: ignore[attr-defined]
        )
        gap = (1 - trial.params["beta"]) / (1 - source["beta"])
        assert _by_a_factor(gap) or trial.params["beta"] in (
            beta.low,  # type: ignore[attr-defined]
            beta.high,  # type: ignore[attr-defined]
        )
    assert exploited


def _by_a_factor(ratio: float) -> bool:
    return any(math.isclose(ratio, factor, rel_tol=1e-9) for factor in (0.8, 1.25))


def test_a_rerun_of_the_same_study_seed_computes_the_same_population(done: Study) -> None:
    again = run()
    assert [(t.params, t.parent, t.value) for t in again.trials] == [
        (t.params, t.parent, t.value) for t in done.trials
    ]


def test_another_seed_draws_another_population(done: Study) -> None:
    other = Study("pop", ":memory:", seed=4)
    pbt(other, make_config(), population=SIZE)
    assert [t.params for t in other.trials[:SIZE]] != [t.params for t in done.trials[:SIZE]]


# -- what is stored --------------------------------------------------------------------------------


def test_each_exploit_is_an_event_and_a_lineage_edge(done: Study) -> None:
    events = done.storage.get_events(done.study_id, pending=False)
    exploits = [e for e in events if e.kind == "exploit"]
    assert exploits
    assert all(e.applied is not None for e in exploits)
    by_number = {t.number: t for t in done.trials}
    for event in exploits:
        trial = by_number[event.trial_number]  # type: ignore[index]
        assert trial.parent == (event.payload["trial"], event.payload["epoch"])
        source = by_number[event.payload["trial"]]
        assert segment_info(source)["member"] == event.payload["member"]
        assert event.payload["to_member"] == segment_info(trial)["member"]
        assert event.payload["params"] == trial.params
        logged = branch_events(trial)
        assert [e.kind for e in logged][:1] == ["exploit"]
        assert all(e.by == "pbt" for e in logged)


def test_the_lineage_tree_hangs_each_exploit_under_the_stretch_it_copied(done: Study) -> None:
    roots = population_lineage(done.trials)
    assert [r.member for r in roots] == list(range(SIZE))
    stretches, stack = [], list(roots)
    while stack:
        stretch = stack.pop()
        stretches.append(stretch)
        for epoch, child in stretch.children:
            assert child.source is not None
            assert child.source[2] == epoch
            assert child.source[1] in [t.number for t in stretch.trials]
            stack.append(child)
    assert sum(len(s.trials) for s in stretches) == len(done.trials)
    exploits = list(done.storage.get_events(done.study_id, pending=False))
    assert sum(1 for s in stretches if s.source is not None) == len(exploits)


def test_each_final_members_schedule_covers_every_epoch(done: Study) -> None:
    schedules = member_schedules(done.trials)
    assert [s.member for s in schedules] == list(range(SIZE))
    by_number = {t.number: t for t in done.trials}
    for schedule in schedules:
        assert schedule.epochs == list(range(1, EPOCHS + 1))
        final = by_number[schedule.trial]
        assert schedule.values["lr"][-1] == final.params["lr"]
        assert schedule.value == final.value
        for epoch, source in schedule.exploits:
            assert epoch % INTERVAL == 0
            assert 0 <= source < SIZE


def test_the_population_object_names_its_members_and_best(done: Study) -> None:
    population = Population(done, make_config(), make_config().pbt)
    members = population.members
    assert [segment_info(t)["member"] for t in members] == list(range(SIZE))
    assert population.best is not None
    assert population.best.value == max(float(t.value or 0) for t in members)
    assert population.next_step() == population.steps
    assert "test_accuracy" in population.best.user_attrs


# -- a person's nudge ------------------------------------------------------------------------------


def test_a_member_nudged_by_hand_takes_the_value_at_its_next_boundary() -> None:
    study = Study("pop", ":memory:", seed=3)
    sent: list[int] = []

    def nudge_once(trial: FrozenTrial) -> None:
        if not sent and segment_info(trial)["step"] == 0:
            event = PopulationControl(study).nudge(segment_info(trial)["member"], lr=0.0123)
            sent.append(event.event_id)

    pbt(study, make_config(), on_segment=nudge_once)
    second = segments(study)[(0, 1)]  # member 0 finished first (one worker)
    assert second.params["lr"] == 0.0123
    (entry,) = [e for e in branch_events(second) if e.event_id == sent[0]]
    assert (entry.kind, entry.by, entry.payload, entry.epoch) == (
        "nudge",
        "hand",
        {"lr": 0.0123},
        2,
    )
    assert "(by hand)" in entry.describe()
    applied = list(study.storage.get_events(study.study_id, pending=False))
    assert all(e.applied is not None for e in applied)


def test_a_bad_nudge_writes_nothing(done: Study) -> None:
    control = PopulationControl(done)
    before = done.storage.get_events(done.study_id, pending=False)
    for member, changes, field in [
        (9, {"lr": 1e-3}, "member"),
        (1, {"units": 3}, "nudge"),
        (1, {"lr": -1.0}, "lr"),
        (1, {}, "nudge"),
    ]:
        with pytest.raises(ConfigError) as error:
            control.nudge(member, **changes)
        assert error.value.field == field
    assert done.storage.get_events(done.study_id, pending=False) == before


# -- bad options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        ({"population": 1}, "pbt.population", 1),
        ({"quantile_fraction": 0.6}, "pbt.quantile_fraction", 0.6),
        ({"resample_probability": -0.1}, "pbt.resample_probability", -0.1),
        ({"perturbation_factors": (1.1, 1.2)}, "pbt.perturbation_factors", (1.1, 1.2)),
        ({"perturbation_interval": 0}, "pbt.perturbation_interval", 0),
        ({"perturbation_interval": EPOCHS}, "pbt.perturbation_interval", EPOCHS),
    ],
)
def test_a_bad_option_names_its_field_value_and_rule(
    options: dict[str, Any], field: str, value: Any
) -> None:
    study = Study("bad", ":memory:")
    with pytest.raises(ConfigError) as error:
        pbt(study, make_config(), **options)
    assert (error.value.field, error.value.value) == (field, value)
    assert error.value.expected
    assert study.trials == []


def test_a_bad_pbt_table_in_a_config_names_its_key() -> None:
    with pytest.raises(ConfigError) as error:
        make_config(quantile=0.2)
    assert error.value.field == "pbt.quantile"


def test_resuming_with_another_population_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with run(url) as study:
        count = len(study.trials)
    with Study("pop", url) as again, pytest.raises(ConfigError) as error:
        pbt(again, make_config(), population=SIZE + 1)
    assert (error.value.field, error.value.value) == ("pbt.population", SIZE + 1)
    with Study("pop", url) as reread:
        assert len(reread.trials) == count


def test_a_study_with_other_trials_is_refused() -> None:
    study = Study("mixed", ":memory:")
    study.caviar(lambda t: t.params["x"], {"x": tunery.Float(0, 1)}, n_trials=1, workers=1)
    with pytest.raises(ConfigError) as error:
        pbt(study, make_config())
    assert error.value.field == "study"


def test_a_source_that_is_no_config_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        pbt(Study("x", ":memory:"), "tune.toml")  # type: ignore[arg-type]
    assert error.value.field == "source"


def test_the_top_level_name_is_the_workflow() -> None:
    assert tunery.pbt is pbt
