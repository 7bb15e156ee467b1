"""The run folder: save a trained model, load it back, get the exact same predictions."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError, DataError
from tunery.data import Normalizer
from tunery.nn import MLP
from tunery.trained import (
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    TrainedRun,
    load_run,
    new_run_dir,
    run_folder_name,
    save_run,
)


def _trained_like(sizes: list[int], batchnorm: bool, kind: str, seed: int) -> TrainedRun:
    """A model whose weights and BN statistics are all non-default, with a fitted normalizer."""
    rng = np.random.default_rng(seed)
    model = MLP(sizes, batchnorm=batchnorm, seed=seed)
    for array in model.parameters().values():
        array += rng.normal(scale=0.1, size=array.shape).astype(array.dtype)
    for key, array in model.buffers().items():
        # running variances must stay positive
        array[...] = (
            rng.uniform(0.5, 2.0, size=array.shape)
            if key.endswith("var")
            else rng.normal(size=array.shape)
        )
    normalizer = Normalizer.fit(rng.uniform(size=(20, sizes[0])), kind)  # type: ignore[arg-type]
    return TrainedRun(
        model=model,
        class_names=tuple(f"class{k}" for k in range(sizes[-1])),
        normalizer=normalizer,
        image_shape=(2, 2, 3) if sizes[0] == 12 else None,
        source="somewhere",
        options={"lr": 0.01, "layers": sizes[1:-1]},
        history={"cost": [1.0, 0.5, math.nan], "train_accuracy": [0.2, 0.4, None]},
        metrics={"test_accuracy": np.float64(0.5), "epochs": np.int64(3)},
    )


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), max_size=2),
    inputs=st.sampled_from([5, 12]),
    classes=st.integers(2, 4),
    batchnorm=st.booleans(),
    kind=st.sampled_from(["standardize", "scale"]),
    seed=st.integers(0, 1000),
)
def test_save_then_load_gives_the_exact_predictions(
    hidden: list[int], inputs: int, classes: int, batchnorm: bool, kind: str, seed: int
) -> None:
    run = _trained_like([inputs, *hidden, classes], batchnorm, kind, seed)
    X = np.random.default_rng(seed + 1).uniform(size=(7, inputs))
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_run(save_run(run, Path(folder) / "run"))
    np.testing.assert_array_equal(loaded.predict_proba(X), run.predict_proba(X))
    assert loaded.model.config() == run.model.config()
    assert loaded.class_names == run.class_names
    assert loaded.normalizer.to_dict() == run.normalizer.to_dict()
    assert loaded.image_shape == run.image_shape
    assert loaded.model.training is False


def test_predict_proba_normalizes_first(tmp_path: Path) -> None:
    run = _trained_like([5, 4, 3], True, "standardize", 0)
    X = np.random.default_rng(2).uniform(size=(6, 5))
    expected = run.model.predict_proba(run.normalizer.transform(X))
    np.testing.assert_array_equal(run.predict_proba(X), expected)
    assert not np.allclose(run.predict_proba(X), run.model.predict_proba(X))


def test_metadata_is_strict_json_and_comes_back(tmp_path: Path) -> None:
    run = _trained_like([12, 3, 2], False, "scale", 1)
    folder = save_run(run, tmp_path)
    for name in (RUN_FILE, HISTORY_FILE, METRICS_FILE):
        json.loads((folder / name).read_text(), parse_constant=pytest.fail)  # no NaN/Infinity
    loaded = load_run(folder)
    assert loaded.history["cost"] == [1.0, 0.5, None]
    assert loaded.metrics == {"test_accuracy": 0.5, "epochs": 3}
    assert loaded.options == {"lr": 0.01, "layers": [3]}
    assert loaded.source == "somewhere"
    assert loaded.outcome == "complete"
    assert loaded.is_image_model
    assert not _trained_like([5, 2], False, "scale", 1).is_image_model


def test_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_run(tmp_path)
    assert caught.value.field == "run"
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        (MODEL_FILE, b"not a zip", "weights"),
        (RUN_FILE, b"{not json", RUN_FILE),
        (RUN_FILE, b'{"format": 99}', "format 99"),
        (RUN_FILE, b'{"format": 1}', "missing entry"),
    ],
)
def test_damaged_files_are_named(tmp_path: Path, file: str, content: bytes, message: str) -> None:
    save_run(_trained_like([5, 2], False, "scale", 0), tmp_path)
    (tmp_path / file).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_run(tmp_path)


def test_class_names_must_match_the_model() -> None:
    run = _trained_like([5, 3], False, "scale", 0)
    with pytest.raises(ConfigError) as caught:
        TrainedRun(run.model, ("a", "b"), run.normalizer)
    assert caught.value.field == "class_names"
    with pytest.raises(ConfigError) as caught:
        TrainedRun(run.model, run.class_names, Normalizer.fit(np.zeros((3, 4)), "scale"))
    assert caught.value.field == "normalizer.num_features"


def test_run_folder_name_is_stamped_and_safe() -> None:
    now = datetime(2024, 1, 31, 14, 25, 1)
    assert run_folder_name("digits", [25, 12], now) == "20240131-142501-digits-25-12"
    assert run_folder_name("/data/my photos", [], now) == "20240131-142501-my_photos"


def test_new_run_dir_never_reuses_a_folder_with_files(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path / "runs", "a")
    assert first == tmp_path / "runs" / "a"
    assert first.is_dir()
    assert new_run_dir(tmp_path / "runs", "a") == first  # still empty: reused
    (first / "run.json").write_text("{}")
    second = new_run_dir(tmp_path / "runs", "a")
    assert second == tmp_path / "runs" / "a-2"
    (second / "x").write_text("")
    assert new_run_dir(tmp_path / "runs", "a") == tmp_path / "runs" / "a-3"


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_new_run_dir_refuses_paths_as_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        new_run_dir(tmp_path, name)
    assert caught.value.field == "name"


def test_new_run_dir_refuses_a_file_as_out(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as caught:
        new_run_dir(tmp_path / "file", "a")
    assert caught.value.field == "out"
