"""Training on augmented images: fresh transforms per epoch for training only, bit-for-bit seeded,
checkpoint-resumable, the same with or without the prefetching thread, on both engines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tunery import ConfigError
from tunery.data import Augmenter, AugmentSettings
from tunery.nn import MLP, make_optimizer
from tunery.nn.engine import NumpyEngine
from tunery.nn.train import Trainer
from tunery.workflows.augmenting import AUGMENT_GENERATOR, AugmentingEngine, augmenting_engine

SHAPE = (6, 6, 3)
SETTINGS = AugmentSettings(rotation=20, scale=0.1, flip=True, brightness=0.2, hue=0.05)


def _data(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 108)).astype(np.float32), rng.integers(0, 3, n)


def _augmenter() -> Augmenter:
    return Augmenter(SETTINGS, SHAPE, mean=np.full(108, 0.4), std=np.full(108, 0.2))


def _trainer(*, prefetch: bool = True, seed: int = 0, engine: Any = NumpyEngine) -> Trainer:
    X, y = _data()
    X_val, y_val = _data(16, seed=1)
    model = MLP([108, 10, 3], batchnorm=True, keep_prob=0.8, seed=seed, dtype=np.float64)
    factory = augmenting_engine(engine, _augmenter(), seed=seed, prefetch=prefetch)
    optimizer = make_optimizer("adam", lr=0.01)
    return Trainer(model, optimizer, X, y, X_val=X_val, y_val=y_val, batch_size=16, engine=factory)


def _weights(trainer: Trainer) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in trainer.model.parameters().items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class _Spy:
    """An inner engine that records what it is given to train on and to measure."""

    def __init__(self, model: Any, optimizer: Any) -> None:
        self.numpy = NumpyEngine(model, optimizer)
        self.loaded: list[np.ndarray] = []
        self.measured: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.numpy, name)

    def load_data(self, X: np.ndarray, y: np.ndarray) -> None:
        self.loaded.append(X.copy())
        self.numpy.load_data(X, y)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        self.measured.append(X)
        return self.numpy.accuracy(X, y)


def test_each_epoch_trains_on_new_transforms_and_measures_the_clean_sets() -> None:
    trainer = _trainer(engine=_Spy)
    spy = trainer.engine.inner  # type: ignore[attr-defined]
    clean = trainer.X.copy()
    trainer.run(3)
    first, *epochs = spy.loaded
    assert np.array_equal(first, clean)  # what load_data was given at construction
    assert len(epochs) == 3
    assert all(not np.allclose(e, clean) for e in epochs)
    assert not np.allclose(epochs[0], epochs[1])
    assert np.array_equal(trainer.X, clean)  # the training set itself is never changed
    assert all(X is trainer.X or X is trainer.X_val for X in spy.measured)
    val = np.mean(trainer.model.predict(trainer.X_val) == trainer.y_val)
    assert trainer.history.val_accuracy[-1] == pytest.approx(val)


def test_a_seed_repeats_bit_for_bit_and_prefetching_changes_nothing() -> None:
    runs = [_trainer(prefetch=prefetch) for prefetch in (True, True, False)]
    for trainer in runs:
        trainer.run(4)
    assert _same(_weights(runs[0]), _weights(runs[1]))
    assert _same(_weights(runs[0]), _weights(runs[2]))
    other = _trainer(seed=1)
    other.run(4)
    assert not _same(_weights(runs[0]), _weights(other))


def test_augmentation_changes_training_but_not_the_other_generators() -> None:
    plain_model = MLP([108, 10, 3], batchnorm=True, keep_prob=0.8, seed=0, dtype=np.float64)
    X, y = _data()
    plain = Trainer(plain_model, make_optimizer("adam", lr=0.01), X, y, batch_size=16)
    augmented = _trainer()
    assert set(augmented._generators()) == {*plain._generators(), AUGMENT_GENERATOR}
    plain.run(2)
    augmented.run(2)
    assert not _same(_weights(plain), _weights(augmented))


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_checkpoint_resumes_the_augmented_run_bit_for_bit(prefetch: bool) -> None:
    whole = _trainer(prefetch=prefetch)
    whole.run(5)
    first = _trainer(prefetch=prefetch)
    first.run(2)
    blob = first.to_bytes()
    first.run(1)  # the prefetched epoch of this trainer must not leak into the resumed one
    resumed = _trainer(prefetch=prefetch)
    resumed.restore(blob)
    resumed.run(3)
    assert _same(_weights(whole), _weights(resumed))
    assert whole.history.to_dict() == resumed.history.to_dict()


def test_a_checkpoint_without_the_augmentation_generator_is_refused() -> None:
    X, y = _data()
    model = MLP([108, 10, 3], batchnorm=True, keep_prob=0.8, seed=0, dtype=np.float64)
    plain = Trainer(model, make_optimizer("adam", lr=0.01), X, y, batch_size=16)
    plain.run(1)
    with pytest.raises(ConfigError, match="generators"):
        _trainer().restore(plain.to_bytes())


def test_a_failing_prefetch_is_redone_in_the_foreground() -> None:
    trainer = _trainer(prefetch=True)
    engine = trainer.engine
    assert isinstance(engine, AugmentingEngine)
    calls: list[int] = []
    real = engine._augmented

    def flaky(seed: int) -> np.ndarray:
        calls.append(seed)
        if len(calls) == 2:  # the first prefetch
            raise RuntimeError("boom")
        return real(seed)

    engine._augmented = flaky  # type: ignore[method-assign]
    reference = _trainer(prefetch=False)
    trainer.run(3)
    reference.run(3)
    assert _same(_weights(trainer), _weights(reference))


def test_the_torch_twin_trains_on_the_same_augmented_images() -> None:
    torch_module = pytest.importorskip("tunery.nn.torch")
    numpy_run = _trainer(prefetch=False)
    torch_run = _trainer(prefetch=True, engine=torch_module.TorchEngine)
    numpy_run.run(3)
    torch_run.run(3)
    ours, theirs = _weights(numpy_run), _weights(torch_run)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-8)


def test_an_idle_augmenter_trains_exactly_as_no_augmenter_and_keeps_its_generator() -> None:
    X, y = _data()

    def trainer(engine: Any) -> Trainer:
        model = MLP([108, 10, 3], batchnorm=True, keep_prob=0.8, seed=0, dtype=np.float64)
        return Trainer(model, make_optimizer("adam", lr=0.01), X, y, batch_size=16, engine=engine)

    idle = Augmenter(AugmentSettings(), SHAPE)
    plain, quiet = trainer(NumpyEngine), trainer(augmenting_engine(NumpyEngine, idle))
    plain.run(3)
    quiet.run(3)
    assert _same(_weights(plain), _weights(quiet))
    assert AUGMENT_GENERATOR in quiet._generators()


def test_checkpoints_pass_between_active_and_idle_augmentation() -> None:
    """A PBT member whose searched amounts are perturbed to 0 still restores its parent."""
    active = _trainer()
    active.run(2)
    X, y = _data()
    model = MLP([108, 10, 3], batchnorm=True, keep_prob=0.8, seed=0, dtype=np.float64)
    idle = Augmenter(AugmentSettings(), SHAPE)
    engine = augmenting_engine(NumpyEngine, idle)
    quiet = Trainer(model, make_optimizer("adam", lr=0.01), X, y, batch_size=16, engine=engine)
    quiet.restore(active.to_bytes())
    quiet.run(1)
    back = _trainer()
    back.restore(quiet.to_bytes())
    assert back.epoch == 3


def test_pbt_explores_searched_augmentation_amounts_through_checkpoints() -> None:
    """A member that exploits another restores its checkpoint and trains on (with the other's
    augmentation amounts, which PBT copies); every segment completes."""
    from tunery.config import config_from_dict
    from tunery.records import TrialState
    from tunery.report import segment_info
    from tunery.study import Study
    from tunery.workflows.pbt import pbt

    config = config_from_dict(
        {
            "study": {"name": "pop-augment", "seed": 3},
            "data": {"source": "digits", "augment": {"flip": True}},
            "model": {"layers": [10], "epochs": 4},
            "space": {
                "lr": {"low": 1e-3, "high": 0.1, "scale": "log"},
                "augment.rotation": {"low": 0.0, "high": 30.0},
                "augment.brightness": {"low": 0.0, "high": 0.3},
            },
            "run": {"workers": 1},
            "pbt": {"population": 4, "perturbation_interval": 2, "resample_probability": 0.5},
        }
    )
    study = Study("pop-augment", ":memory:", seed=3)
    pbt(study, config)
    trials = study.trials
    assert len(trials) == 8  # 4 members × 2 segments
    assert all(t.state is TrialState.COMPLETE for t in trials)
    rotation = {
        (segment_info(t)["member"], segment_info(t)["step"]): t.params["augment.rotation"]
        for t in trials
    }
    exploits = [
        member
        for member in range(4)
        if rotation[member, 1] != rotation[member, 0]
        and rotation[member, 1] in {rotation[other, 0] for other in range(4) if other != member}
    ]
    assert exploits  # at least one member continued from another's augmented checkpoint
