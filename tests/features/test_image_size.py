"""A searched ``image_size``: each value trains on its own resized dataset (studies, pandas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.data.helpers import balanced_labels, make_image_folder, write_h5
from tunery import ConfigError
from tunery.config import TuneConfig, config_from_dict
from tunery.study import Study, TrialState
from tunery.workflows.objective import TrainerObjective, build_trainer, run_study
from tunery.workflows.panda import babysit

SIZES = (4, 6)


def make_config(source: Path, **space: Any) -> TuneConfig:
    tables: dict[str, Any] = {
        "study": {"name": "sizes", "storage": ":memory:"},
        "data": {"source": str(source), "image_size": 8},
        "model": {"layers": [6], "epochs": 2, "batchnorm": True, "batch_size": 8},
        "space": {
            "lr": {"low": 1e-3, "high": 1e-2, "scale": "log"},
            "image_size": {"choices": list(SIZES)},
            **space,
        },
        "run": {"trials": 6, "workers": 1},
    }
    return config_from_dict(tables)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    make_image_folder(root, {"a": 14, "b": 14, "c": 14})
    return root


def test_each_trial_trains_on_its_own_image_size(photos: Path) -> None:
    config = make_config(photos)
    objective = TrainerObjective(config)
    study = run_study(config, objective=objective)
    trials = study.trials
    assert {trial.state for trial in trials} == {TrialState.COMPLETE}
    assert {trial.params["image_size"] for trial in trials} == set(SIZES)
    for trial in trials:
        size = trial.params["image_size"]
        dataset = objective.dataset_for(trial.params)
        assert dataset.num_features == size * size * 3
        assert dataset.image_shape == (size, size, 3)
        assert objective.dataset_for(trial.params) is dataset  # loaded once, then kept
        trainer = build_trainer(config, trial.params)
        assert trainer.model.sizes[0] == size * size * 3
    assert objective.dataset.num_features == 8 * 8 * 3  # [data].image_size when not searched


def test_the_split_is_the_same_photos_at_every_size(photos: Path) -> None:
    objective = TrainerObjective(make_config(photos))
    small, large = (objective.dataset_for({"image_size": size}) for size in SIZES)
    for name in ("y_train", "y_val", "y_test"):
        assert (getattr(small, name) == getattr(large, name)).all()


def test_an_h5_source_refuses_a_searched_image_size(tmp_path: Path) -> None:
    write_h5(tmp_path / "train_signs.h5", "train", balanced_labels(6))
    write_h5(tmp_path / "test_signs.h5", "test", balanced_labels(2))
    objective = TrainerObjective(make_config(tmp_path / "train_signs.h5"))
    with pytest.raises(ConfigError, match="keep their size") as bad:
        objective.dataset  # noqa: B018 - the property loads and checks
    assert bad.value.field == "space.image_size"


def test_a_panda_trains_at_the_size_it_is_given(photos: Path, tmp_path: Path) -> None:
    config = make_config(photos)
    with Study("sizes", tmp_path / "panda.db") as study:
        panda = babysit(study, config, {"lr": 3e-3, "image_size": 6}, epochs=2)
        assert panda.run_epoch() is not None
        assert panda.trainer.model.sizes[0] == 6 * 6 * 3
        with pytest.raises(ConfigError):
            panda.nudge(image_size=4)  # the inputs cannot change under a running model


def test_the_dataset_cache_keeps_the_most_recently_used(photos: Path) -> None:
    from tunery.config import DataSection
    from tunery.workflows.objective import DatasetCache

    cache = DatasetCache(capacity=2)
    sections = [DataSection(source=str(photos), image_size=size) for size in (3, 4, 5)]
    first = cache.get(sections[0])
    second = cache.get(sections[1])
    assert cache.get(sections[0]) is first  # used again: now the most recent
    cache.get(sections[2])  # evicts sections[1], the least recently used
    assert len(cache) == 2
    assert cache.get(sections[0]) is first
    again = cache.get(sections[1])
    assert again is not second  # loaded again
    assert again.num_features == 4 * 4 * 3
