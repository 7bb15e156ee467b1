"""The training loop: learning, hyperparameter changes, divergence, batches, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunery import ConfigError, Diverged, Pruned, StorageError
from tunery.nn import MLP, softmax_cross_entropy
from tunery.nn.optimizers import GD, Optimizer, make_optimizer
from tunery.nn.train import EpochMetrics, History, StopTraining, Trainer, fit

Array = np.ndarray


def blobs(n: int, seed: int = 0, classes: int = 3, features: int = 4) -> tuple[Array, Array]:
    """Well separated Gaussian clusters: ``X: (n, features)``, ``y: (n,)``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.normal(size=(n, features)), y


def trainer(
    model: MLP | None = None, optimizer: Optimizer | None = None, n: int = 120, **options: Any
) -> Trainer:
    X, y = blobs(n)
    model = model or MLP([4, 8, 3], keep_prob=0.8, seed=1)
    optimizer = optimizer or make_optimizer("adam", lr=0.01)
    return Trainer(model, optimizer, X, y, **options)


# --- learning -------------------------------------------------------------------------------------


def test_learns_a_separable_problem() -> None:
    X, y = blobs(300, seed=3)
    X, X_val, y, y_val = X[:240], X[240:], y[:240], y[240:]
    history = fit(MLP([4, 16, 3], seed=0), X, y, X_val=X_val, y_val=y_val, lr=0.01, epochs=15)
    assert history.outcome == "complete"
    assert len(history) == 15
    assert history.train_accuracy[-1] >= 0.95
    assert history.val_accuracy[-1] is not None
    assert history.val_accuracy[-1] >= 0.95
    assert history.cost[-1] < 0.5 * history.cost[0]


def test_train_accuracy_is_measured_in_eval_mode_after_the_epoch() -> None:
    run = trainer()
    metrics = run.run_epoch()
    assert metrics.train_accuracy == np.mean(run.model.predict(run.X) == run.y)
    assert metrics.val_accuracy is None
    assert run.history.val_accuracy == [None]
    assert run.model.training  # predict went back to train mode


def test_the_cost_is_cross_entropy_plus_l2_and_the_gradient_adds_l2_over_m_times_w() -> None:
    X, y = blobs(32, seed=4)
    model = MLP([4, 5, 3], batchnorm=False, seed=2, dtype=np.float64)
    reference = MLP([4, 5, 3], batchnorm=False, seed=2, dtype=np.float64)
    l2, lr, m = 0.7, 0.1, len(X)
    run = Trainer(model, GD(lr), X, y, batch_size=m, l2=l2)  # one batch: the whole set
    metrics = run.run_epoch()

    loss, dlogits = softmax_cross_entropy(reference.forward(X), y)
    reference.backward(dlogits)
    penalty = sum(np.sum(reference.parameters()[k] ** 2) for k in reference.weight_keys())
    assert metrics.cost == pytest.approx(loss + l2 / (2 * m) * penalty, rel=1e-12)
    grads, before = reference.gradients(), reference.parameters()
    for key, after in model.parameters().items():
        decay = l2 / m * before[key] if key in reference.weight_keys() else 0.0
        np.testing.assert_allclose(after, before[key] - lr * (grads[key] + decay), rtol=1e-10)


def test_float64_data_is_cast_once_to_the_models_dtype() -> None:
    run = trainer()
    assert run.X.dtype == np.float32
    assert run.run_epoch().cost > 0


def test_data_of_the_models_dtype_is_used_without_a_copy() -> None:
    X, y = blobs(50)
    X32 = X.astype(np.float32)
    run = Trainer(MLP([4, 3]), GD(0.1), X32, y)
    assert run.X is X32


def test_fit_takes_a_ready_optimizer() -> None:
    optimizer = GD(0.1)
    history = fit(MLP([4, 8, 3]), *blobs(50), optimizer=optimizer, epochs=3, batch_size=20)
    assert len(history) == 3
    assert set(optimizer.state_dict()["steps"].values()) == {9}  # 3 epochs x 3 batches


# --- hyperparameters between epochs ---------------------------------------------------------------


def test_changing_lr_between_epochs_takes_effect() -> None:
    tiny, normal = (
        trainer(MLP([4, 8, 3], seed=1), GD(0.5), batch_size=16),
        trainer(MLP([4, 8, 3], seed=1), GD(0.5), batch_size=16),
    )
    tiny.run(1)
    normal.run(1)
    tiny.set_hyperparameters(lr=1e-12)
    frozen = {k: v.copy() for k, v in tiny.model.parameters().items()}
    tiny.run(1)
    normal.run(1)
    assert tiny.history.lr == [0.5, 1e-12]
    assert normal.history.lr == [0.5, 0.5]
    after = tiny.model.parameters()
    assert all(np.allclose(after[k], frozen[k], rtol=0, atol=1e-9) for k in frozen)
    moved = normal.model.parameters()
    assert not all(np.allclose(moved[k], frozen[k], rtol=0, atol=1e-6) for k in frozen)


def test_lr_sets_the_base_rate_that_the_schedule_decays() -> None:
    run = trainer(schedule="exponential")  # rate 0.95
    run.run(2)
    run.set_hyperparameters(lr=1.0)
    assert run.optimizer.lr == pytest.approx(0.95**2)  # what epoch 3 will use
    run.run(2)
    assert run.history.lr == pytest.approx([0.01, 0.01 * 0.95, 0.95**2, 0.95**3])
    assert run.hyperparameters()["lr"] == 1.0


def test_other_hyperparameters_go_to_the_optimizer_or_the_trainer() -> None:
    run = trainer(optimizer=make_optimizer("momentum", lr=0.1, beta=0.9))
    run.set_hyperparameters(beta=0.5, l2=0.01, batch_size=7)
    assert (run.optimizer.hyperparameters()["beta"], run.l2, run.batch_size) == (0.5, 0.01, 7)
    before = run.hyperparameters()
    bad_values = [({"beta": 1.0}, "beta"), ({"l2": -1}, "l2"), ({"batch_size": 0}, "batch_size")]
    for bad, field in bad_values:
        with pytest.raises(ConfigError) as error:
            run.set_hyperparameters(lr=0.5, **bad)
        assert error.value.field == field
        assert run.hyperparameters() == before  # all or nothing


# --- divergence -----------------------------------------------------------------------------------


def test_a_huge_learning_rate_ends_as_diverged_without_raising() -> None:
    X, y = blobs(64)
    history = fit(MLP([4, 16, 3], batchnorm=False), X, y, optimizer="gd", lr=1e6, epochs=10)
    assert history.outcome == "diverged"
    assert len(history) < 10
    assert not np.isfinite(history.cost[-1])
    assert np.isfinite(history.cost[:-1]).all()


def test_a_diverged_trainer_runs_no_more_epochs() -> None:
    run = trainer(MLP([4, 8, 3], batchnorm=False), GD(1e30))
    run.run(5)
    assert run.outcome == "diverged"
    assert run.epoch == 1
    assert run.run(5) is run.history
    assert run.epoch == 1


def test_raise_on_divergence_raises_diverged_after_recording_the_epoch() -> None:
    run = trainer(MLP([4, 8, 3], batchnorm=False), GD(1e30), raise_on_divergence=True)
    with pytest.raises(Diverged) as error:
        run.run(5)
    assert error.value.epoch == 1
    assert run.outcome == "diverged"
    assert len(run.history) == 1


# --- mini-batches ---------------------------------------------------------------------------------


def recorded_batches(run: Trainer) -> list[list[Array]]:
    """Run two epochs and return, per epoch, the row ids (``X[:, 0]``) of each training batch."""
    epochs: list[list[Array]] = [[], []]
    forward = run.model.forward

    def spy(x: Array) -> Array:
        if run.model.training:
            epochs[run.epoch].append(np.asarray(x)[:, 0].copy())
        return forward(x)

    run.model.forward = spy  # type: ignore[method-assign]
    run.run(2)
    return epochs


def ids_trainer(n: int, batch_size: int, batchnorm: bool, seed: int = 0) -> Trainer:
    X, y = blobs(n)
    X[:, 0] = np.arange(n)  # a row id
    model = MLP([4, 6, 3], batchnorm=batchnorm)
    return Trainer(model, make_optimizer("gd", lr=1e-3), X, y, batch_size=batch_size, seed=seed)


@pytest.mark.parametrize(
    ("n", "batch_size", "batchnorm", "sizes"),
    [
        (21, 10, True, [10, 11]),  # a trailing batch of one joins the previous one
        (21, 10, False, [10, 10, 1]),  # ... only when batch norm needs it
        (22, 10, True, [10, 10, 2]),  # the last partial batch is kept
        (11, 10, True, [11]),
        (5, 64, True, [5]),
        (3, 2, True, [3]),  # batch size 1 with batch norm is refused up front
    ],
)
def test_batch_sizes(n: int, batch_size: int, batchnorm: bool, sizes: list[int]) -> None:
    epochs = recorded_batches(ids_trainer(n, batch_size, batchnorm))
    for batches in epochs:
        assert [len(b) for b in batches] == sizes
        assert sorted(np.concatenate(batches)) == list(range(n))  # every example once per epoch


def test_shuffling_is_seeded_and_differs_between_epochs() -> None:
    first = recorded_batches(ids_trainer(40, 40, False, seed=5))
    again = recorded_batches(ids_trainer(40, 40, False, seed=5))
    other = recorded_batches(ids_trainer(40, 40, False, seed=6))
    assert np.array_equal(first[0][0], again[0][0])
    assert np.array_equal(first[1][0], again[1][0])
    assert not np.array_equal(first[0][0], first[1][0])
    assert not np.array_equal(first[0][0], other[0][0])


def test_one_example_with_batch_norm_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        Trainer(MLP([4, 3, 2]), GD(0.1), np.zeros((1, 4)), np.zeros(1, dtype=int))
    assert error.value.field == "X"


# --- callback -------------------------------------------------------------------------------------


def test_callback_is_called_once_per_epoch_with_that_epochs_metrics() -> None:
    seen: list[EpochMetrics] = []
    history = trainer(callback=seen.append).run(4)
    assert [m.epoch for m in seen] == [1, 2, 3, 4]
    assert [m.cost for m in seen] == history.cost
    assert list(history) == seen


@pytest.mark.parametrize("how", ["return", "raise"])
def test_callback_stops_the_run(how: str) -> None:
    def stop_after_two(metrics: EpochMetrics) -> bool:
        if metrics.epoch < 2:
            return False
        if how == "raise":
            raise StopTraining
        return True

    run = trainer(callback=stop_after_two)
    history = run.run(10)
    assert (history.outcome, len(history), run.epoch) == ("stopped", 2, 2)
    run.callback = None
    assert run.run(1).outcome == "complete"
    assert run.epoch == 3


def test_other_exceptions_from_the_callback_propagate() -> None:
    def prune(metrics: EpochMetrics) -> None:
        raise Pruned

    with pytest.raises(Pruned):
        trainer(callback=prune).run(3)


# --- checkpoints ----------------------------------------------------------------------------------


def resumable(seed: int) -> Trainer:
    """Dropout and batch norm on, a schedule and L2: everything a resume has to carry."""
    model = MLP([4, 8, 6, 3], keep_prob=0.7, seed=seed)
    X, y = blobs(90)
    return Trainer(
        model,
        make_optimizer("adam", lr=0.02),
        X,
        y,
        X_val=X[:20],
        y_val=y[:20],
        batch_size=16,
        l2=0.05,
        schedule="inverse_time",
        seed=3,
    )


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for name in ("parameters", "buffers"):
        left, right = getattr(a.model, name)(), getattr(b.model, name)()
        assert left.keys() == right.keys()
        assert all(np.array_equal(left[k], right[k]) for k in left), name
    left, right = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert all(np.array_equal(left["arrays"][k], right["arrays"][k]) for k in left["arrays"])
    assert {k: v for k, v in left.items() if k != "arrays"} == {
        k: v for k, v in right.items() if k != "arrays"
    }
    assert a.history == b.history
    assert a.epoch == b.epoch


def test_resuming_from_a_file_reproduces_the_run_bit_for_bit(tmp_path: Path) -> None:
    uninterrupted = resumable(seed=1)
    uninterrupted.run(2)
    path = uninterrupted.save(tmp_path / "epoch2.npz")
    uninterrupted.run(3)

    # Another seed: the weights, dropout generator and everything else must come from the file.
    resumed = Trainer.load(
        path,
        MLP([4, 8, 6, 3], keep_prob=0.7, seed=99),
        make_optimizer("adam", lr=0.5),
        *blobs(90),
        X_val=blobs(90)[0][:20],
        y_val=blobs(90)[1][:20],
        schedule="inverse_time",
    )
    assert resumed.epoch == 2
    assert resumed.batch_size == 16
    assert resumed.l2 == 0.05
    resumed.run(3)
    assert_same_state(resumed, uninterrupted)


def test_rolling_back_in_place_from_bytes_replays_the_same_epochs() -> None:
    run = resumable(seed=1)
    run.run(1)
    blob = run.to_bytes()
    run.run(2)
    first_pass = run.state_dict()
    run.restore(blob)
    assert run.epoch == 1
    assert len(run.history) == 1
    run.run(2)
    again = Trainer.from_bytes(run.to_bytes(), *_fresh_parts())
    for key, array in first_pass["parameters"].items():
        assert np.array_equal(run.model.parameters()[key], array)
        assert np.array_equal(again.model.parameters()[key], array)
    assert run.history.to_dict() == first_pass["history"]


def _fresh_parts() -> tuple[MLP, Optimizer, Array, Array]:
    return MLP([4, 8, 6, 3], keep_prob=0.7, seed=7), make_optimizer("adam", lr=1.0), *blobs(90)


def test_checkpoint_is_a_plain_npz_with_json_metadata(tmp_path: Path) -> None:
    run = resumable(seed=1)
    run.run(1)
    path = run.save(tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
    assert "meta" in names
    assert {f"parameters/{k}" for k in run.model.parameters()} <= names
    assert {f"buffers/{k}" for k in run.model.buffers()} <= names
    assert any(name.startswith("optimizer/") for name in names)


def test_bad_checkpoints_are_refused(tmp_path: Path) -> None:
    run = resumable(seed=1)
    with pytest.raises(StorageError):
        run.restore(b"not a checkpoint")
    with pytest.raises(StorageError):
        run.restore(tmp_path / "missing.npz")
    with pytest.raises(StorageError):
        run.save(tmp_path / "no" / "such" / "dir.npz")
    other = Trainer(MLP([4, 5, 3]), make_optimizer("adam", lr=0.1), *blobs(30))
    with pytest.raises(ConfigError):
        other.restore(run.to_bytes())


def test_a_failed_save_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunery._files

    run = resumable(seed=1)
    path = run.save(tmp_path / "run.npz")
    saved = path.read_bytes()
    run.run(1)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tunery._files.os, "fsync", full_disk)
    with pytest.raises(StorageError, match="No space left"):
        run.save(path)
    assert path.read_bytes() == saved
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_history_round_trips_through_a_dict() -> None:
    run = trainer(X_val=blobs(10)[0], y_val=blobs(10)[1])
    history = run.run(3)
    data = history.to_dict()
    assert data["epoch"] == [1, 2, 3]
    assert data["outcome"] == "complete"
    assert History.from_dict(data) == history
    last = [data[key][2] for key in ("cost", "train_accuracy", "val_accuracy", "lr")]
    assert history[-1] == EpochMetrics(3, *last)


# --- bad arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"l2": -0.1}, "l2"),
        ({"l2": float("nan")}, "l2"),
        ({"seed": -1}, "seed"),
        ({"schedule": "cosine"}, "schedule"),
        ({"schedule": 3}, "schedule"),
        ({"callback": 3}, "callback"),
        ({"X_val": np.zeros((3, 4))}, "y_val"),
        ({"X_val": np.zeros((3, 4)), "y_val": np.zeros(2, dtype=int)}, "y_val"),
        ({"y": np.zeros(5, dtype=int)}, "y"),
        ({"y": np.zeros(120)}, "y"),
        ({"X": np.zeros(120)}, "X"),
        ({"X": np.zeros((120, 5))}, "X"),
        ({"y": np.full(120, 3)}, "y"),  # MLP([4, 3]) has classes 0, 1, 2
        ({"y": np.full(120, -1)}, "y"),
        ({"X_val": np.zeros((3, 4)), "y_val": np.array([0, 1, 7])}, "y_val"),
        ({"optimizer": "adam"}, "optimizer"),
    ],
)
def test_bad_trainer_arguments_name_the_field(options: dict[str, Any], field: str) -> None:
    X, y = blobs(120)
    arguments: dict[str, Any] = {"X": X, "y": y, "optimizer": GD(0.1), **options}
    optimizer, X, y = arguments.pop("optimizer"), arguments.pop("X"), arguments.pop("y")
    with pytest.raises(ConfigError) as error:
        Trainer(MLP([4, 3]), optimizer, X, y, **arguments)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"optimizer": "sgdd"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"beta1": 1.0}, "beta1"),
        ({"optimizer": "gd", "beta": 0.9}, "beta"),
    ],
)
def test_bad_fit_arguments_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        fit(MLP([4, 3]), *blobs(20), **options)
    assert error.value.field == field


def test_a_batch_of_one_is_refused_up_front_with_batch_norm() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)).astype(np.float32), rng.integers(0, 2, 20)
    with_bn = MLP([4, 3, 2], batchnorm=True)
    with pytest.raises(ConfigError) as info:
        Trainer(with_bn, make_optimizer("gd", lr=0.1), X, y, batch_size=1)
    assert info.value.field == "batch_size"
    trainer = Trainer(with_bn, make_optimizer("gd", lr=0.1), X, y, batch_size=4)
    with pytest.raises(ConfigError, match="batch norm"):
        trainer.set_hyperparameters(batch_size=1)
    assert trainer.batch_size == 4
    # Without batch norm a batch of one is plain stochastic gradient descent.
    plain = Trainer(
        MLP([4, 3, 2], batchnorm=False), make_optimizer("gd", lr=0.1), X, y, batch_size=1
    )
    assert plain.run_epoch().epoch == 1
