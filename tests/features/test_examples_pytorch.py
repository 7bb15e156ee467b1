"""The PyTorch example tunes a user's own nn.Module through the objective protocol."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tunery import Study, TrialState

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pytorch_objective.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pytorch_objective", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_completes_a_small_study_that_beats_chance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = _load_example()
    study = example.main(n_trials=6, storage=":memory:", epochs=4)
    assert isinstance(study, Study)
    trials = study.trials
    assert len(trials) == 6
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert {t.round for t in trials} == {1, 2}  # coarse to fine
    assert study.best_value > 0.3  # 10 digits: chance is 0.1
    for trial in trials:
        assert set(trial.params) == set(example.SPACE)
        assert all("val_accuracy" in row and "loss" in row for row in trial.curve.values())
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert all(sorted(t.curve) == [1, 2, 3, 4] for t in complete)
    assert f"val_accuracy {study.best_value:.4f}" in capsys.readouterr().out


def test_the_model_is_the_users_own_module() -> None:
    import torch

    example = _load_example()
    model = example.DigitNet(64, 32, 10, 0.1)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.zeros(5, 64)).shape == (5, 10)
