"""PBT's segments on Ray tasks: the same executor seam as caviar, the same population as local."""

from __future__ import annotations

import pytest

from tunery.config import TuneConfig, config_from_dict
from tunery.records import FrozenTrial, TrialState
from tunery.report import segment_info
from tunery.study import Study
from tunery.workflows.pbt import pbt

pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunery[ray]')")


def config(**run: object) -> TuneConfig:
    return config_from_dict(
        {
            "study": {"name": "ray-pop"},
            "model": {"layers": [10], "epochs": 4},
            "space": {"lr": {"low": 1e-3, "high": 0.3, "scale": "log"}},
            "run": run,
            "pbt": {"population": 3, "perturbation_interval": 2},
        }
    )


def by_segment(trials: list[FrozenTrial]) -> dict[tuple[int, int], tuple[object, ...]]:
    return {
        (segment_info(t)["member"], segment_info(t)["step"]): (t.params, t.value, t.parent)
        for t in trials
    }


@pytest.mark.slow
def test_ray_tasks_train_the_same_population_as_this_process() -> None:
    on_ray = Study("ray-pop", ":memory:")
    pbt(on_ray, config(executor="ray", resources={"cpu": 0.5}))
    local = Study("ray-pop", ":memory:")
    pbt(local, config(workers=1))
    assert all(t.state is TrialState.COMPLETE for t in on_ray.trials)
    ray_segments, local_segments = by_segment(on_ray.trials), by_segment(local.trials)
    assert {k: v[:2] for k, v in ray_segments.items()} == {
        k: v[:2] for k, v in local_segments.items()
    }
