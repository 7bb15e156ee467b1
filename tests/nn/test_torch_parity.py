"""The PyTorch twin against the NumPy engine, in float64: same forward pass, gradients, steps,
weights and training history (relative tolerance 1e-6)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import MLP, BatchNorm, softmax_cross_entropy
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import Trainer, fit

torch = pytest.importorskip("torch")

from tunery.nn.torch import (  # noqa: E402 - after the importorskip
    TorchDropout,
    TorchMLP,
    TorchTrainer,
    copy_weights,
    fit_torch,
    from_torch,
    make_torch_optimizer,
    set_torch_hyperparameters,
    to_torch,
)

RTOL = 1e-6
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "gd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "beta": 0.8},
    "rmsprop": {"lr": 0.01, "beta": 0.95, "eps": 1e-7},
    "adam": {"lr": 0.01, "beta1": 0.85, "beta2": 0.99, "eps": 1e-7},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """The tensors here are tiny: extra OpenMP threads only spin, and on a busy machine that
    makes the file 4x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_data(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def perturb_batchnorm(mlp: MLP, seed: int = 1) -> None:
    """Move γ, β and the running statistics off their initial values, so copies are tested."""
    rng = np.random.default_rng(seed)
    for layer in mlp.layers:
        if isinstance(layer, BatchNorm):
            layer.gamma[:] = rng.uniform(0.5, 1.5, layer.num_features)
            layer.beta[:] = rng.normal(0, 0.5, layer.num_features)
            layer.running_mean[:] = rng.normal(0, 1, layer.num_features)
            layer.running_var[:] = rng.uniform(0.5, 2, layer.num_features)


def torch_parameters(model: TorchMLP, mlp: MLP) -> dict[str, np.ndarray]:
    """The twin's parameters and buffers in the NumPy layout, under the NumPy keys."""
    copy = MLP(**mlp.config())
    from_torch(model, copy)
    return {**copy.parameters(), **copy.buffers()}


def torch_gradients(model: TorchMLP) -> dict[str, np.ndarray]:
    """The twin's gradients in the NumPy layout and keys (``"0.W"`` is ``weight.grad.T``)."""
    grads = {}
    for index, module in enumerate(model.layers):
        names = {torch.nn.Linear: ("W", "b"), torch.nn.BatchNorm1d: ("gamma", "beta")}
        for kind, (weight, bias) in names.items():
            if isinstance(module, kind):
                grad = module.weight.grad.numpy()
                grads[f"{index}.{weight}"] = grad.T if weight == "W" else grad
                if module.bias is not None:
                    grads[f"{index}.{bias}"] = module.bias.grad.numpy()
    return grads


def assert_same(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs)
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=RTOL, atol=1e-12, err_msg=key)


architectures = st.fixed_dictionaries(
    {
        "sizes": st.lists(st.integers(1, 7), min_size=1, max_size=3).map(
            lambda hidden: [5, *hidden, 3]
        ),
        "activation": st.sampled_from(["relu", "tanh", "sigmoid"]),
        "batchnorm": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


def test_without_torch_the_import_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.delitem(sys.modules, "tunery.nn.torch")
    with pytest.raises(ImportError, match=r"pip install 'tunery\[torch\]'"):
        importlib.import_module("tunery.nn.torch")


# --- forward and backward ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(architecture=architectures, batch=st.integers(2, 9))
def test_forward_and_gradients_match_in_train_mode(
    architecture: dict[str, Any], batch: int
) -> None:
    mlp = MLP(**architecture, dtype=np.float64)
    perturb_batchnorm(mlp)
    model = to_torch(mlp)
    x, y = make_data(batch, 5, 3, seed=architecture["seed"])

    logits = mlp.forward(x)
    cost, dlogits = softmax_cross_entropy(logits, y)
    mlp.backward(dlogits)
    torch_logits = model(torch.from_numpy(x))
    torch_cost = model.criterion(torch_logits, torch.from_numpy(y))
    torch_cost.backward()

    np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=RTOL, atol=1e-12)
    assert torch_cost.item() == pytest.approx(cost, rel=RTOL)
    assert_same(mlp.gradients(), torch_gradients(model))
    # Both folded the batch statistics into their running averages the same way.
    assert_same(
        mlp.buffers(), {k: v for k, v in torch_parameters(model, mlp).items() if "running" in k}
    )


@settings(max_examples=15, deadline=None)
@given(architecture=architectures, batch=st.integers(1, 6))
def test_forward_matches_in_eval_mode(architecture: dict[str, Any], batch: int) -> None:
    mlp = MLP(**architecture, keep_prob=0.5, dtype=np.float64)
    perturb_batchnorm(mlp)
    model = to_torch(mlp).eval()
    x, _ = make_data(batch, 5, 3)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, mlp.eval().forward(x), rtol=RTOL, atol=1e-12)


def test_twin_is_built_layer_for_layer() -> None:
    mlp = MLP([4, 6, 5, 2], batchnorm=[True, False], activation="tanh", keep_prob=0.8)
    kinds = [type(module).__name__ for module in to_torch(mlp).layers]
    first = ["Linear", "BatchNorm1d", "Tanh", "TorchDropout"]
    assert kinds == [*first, "Linear", "Tanh", "TorchDropout", "Linear"]
    model = to_torch(mlp)
    assert model.layers[0].bias is None  # β of the batch norm replaces it
    assert model.layers[4].bias is not None
    assert model.layers[1].momentum == pytest.approx(0.1)
    assert model.layers[1].eps == 1e-5
    assert isinstance(model.criterion, torch.nn.CrossEntropyLoss)


# --- copying weights -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_copy_both_ways_exactly(dtype: Any) -> None:
    mlp = MLP([6, 5, 4, 3], seed=7, dtype=dtype)
    perturb_batchnorm(mlp)
    model = to_torch(mlp)
    assert model.layers[0].weight.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
    np.testing.assert_array_equal(model.layers[0].weight.detach().numpy(), mlp.layers[0].W.T)
    np.testing.assert_array_equal(model.layers[1].running_var.numpy(), mlp.layers[1].running_var)

    other = MLP([6, 5, 4, 3], seed=8, dtype=dtype)
    assert from_torch(model, other) is other
    for key, array in {**mlp.parameters(), **mlp.buffers()}.items():
        theirs = {**other.parameters(), **other.buffers()}[key]
        np.testing.assert_array_equal(theirs, array, err_msg=key)
        assert theirs.dtype == array.dtype


def test_copy_weights_into_an_existing_twin_and_back() -> None:
    mlp = MLP([3, 4, 2], dtype=np.float64, seed=1)
    model = TorchMLP([3, 4, 2], dtype=np.float64, seed=2)
    assert not torch.equal(model.layers[0].weight, torch.from_numpy(mlp.layers[0].W.T.copy()))
    copy_weights(mlp, model)
    assert torch.equal(model.layers[0].weight, torch.from_numpy(mlp.layers[0].W.T.copy()))
    with torch.no_grad():
        model.layers[3].bias += 1.0
    copy_weights(model, mlp)
    np.testing.assert_array_equal(mlp.layers[3].b, model.layers[3].bias.detach().numpy())


def test_same_seed_same_initial_weights() -> None:
    config = {"sizes": [5, 4, 3], "seed": 11, "dtype": np.float64}
    twin, mlp = TorchMLP(**config), MLP(**config)
    np.testing.assert_array_equal(twin.layers[0].weight.detach().numpy().T, mlp.layers[0].W)
    assert twin.config() == mlp.config()


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (MLP([3, 4, 2]), TorchMLP([3, 5, 2])),
        (MLP([3, 4, 2], batchnorm=False), TorchMLP([3, 4, 2])),
        (MLP([3, 4, 2]), MLP([3, 4, 2])),
    ],
)
def test_copy_weights_refuses_other_architectures(source: Any, target: Any) -> None:
    with pytest.raises(ConfigError):
        copy_weights(source, target)


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="activation"):
        TorchMLP([3, 2], activation="swish")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dtype"):
        TorchMLP([3, 2], dtype=np.int32)


# --- optimizers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_ten_optimizer_steps_match_with_batchnorm(name: str) -> None:
    hp = HYPERPARAMETERS[name]
    mlp = MLP([6, 5, 4, 3], batchnorm=True, dtype=np.float64, seed=3)
    model = to_torch(mlp)
    ours = make_optimizer(name, **hp)
    theirs = make_torch_optimizer(name, model.parameters(), **hp)
    for step in range(10):
        x, y = make_data(8, 6, 3, seed=step)
        _, dlogits = softmax_cross_entropy(mlp.forward(x), y)
        mlp.backward(dlogits)
        ours.step(mlp.parameters(), mlp.gradients())
        theirs.zero_grad()
        model.criterion(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs.step()
    start = MLP([6, 5, 4, 3], dtype=np.float64, seed=3).parameters()
    assert not np.allclose(mlp.parameters()["0.W"], start["0.W"])  # they did move
    assert_same({**mlp.parameters(), **mlp.buffers()}, torch_parameters(model, mlp))


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_parameters_larger_than_an_update_chunk_match(name: str) -> None:
    """A 300×130 float64 weight spans three of the optimizers' cache-sized chunks (the last one
    partial); every entry still takes torch's step."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((300, 130))
    assert weight.nbytes > 2 * 128 * 1024
    tensor = torch.tensor(weight, requires_grad=True)
    ours = make_optimizer(name, **HYPERPARAMETERS[name])
    theirs = make_torch_optimizer(name, [tensor], **HYPERPARAMETERS[name])
    for _ in range(10):
        grad = rng.standard_normal(weight.shape)
        ours.step({"W": weight}, {"W": grad})
        tensor.grad = torch.from_numpy(grad)
        theirs.step()
    np.testing.assert_allclose(tensor.detach().numpy(), weight, rtol=RTOL, atol=1e-12)


def test_momentum_mapping_and_fused_adam() -> None:
    params = [torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    sgd = make_torch_optimizer("momentum", params, lr=0.5, beta=0.75)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.5 * 0.25)
    assert sgd.param_groups[0]["momentum"] == 0.75
    rms = make_torch_optimizer("RMSprop", params, lr=0.5, beta=0.7)
    assert rms.param_groups[0]["alpha"] == 0.7
    adam = make_torch_optimizer("adam", params, lr=0.5)
    assert adam.param_groups[0]["betas"] == (0.9, 0.999)
    assert adam.param_groups[0]["fused"] is True  # CPU float64 has a fused kernel
    assert type(make_torch_optimizer("gd", params, lr=0.5)) is torch.optim.SGD


@pytest.mark.parametrize(
    ("name", "hp"),
    [("nesterov", {"lr": 0.1}), ("adam", {"lr": -1.0}), ("gd", {"lr": 0.1, "beta": 0.9})],
)
def test_bad_optimizer_settings_are_config_errors(name: str, hp: dict[str, float]) -> None:
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ConfigError):
        make_torch_optimizer(name, params, **hp)


def test_changing_momentum_mid_run_keeps_the_course_average() -> None:
    """After β changes, torch's summed buffer is rescaled so the steps still match ours."""
    grads = np.random.default_rng(0).standard_normal((6, 4))
    w = np.zeros(4)
    param = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    ours = make_optimizer("momentum", lr=0.1, beta=0.9)
    theirs = make_torch_optimizer("momentum", [param], lr=0.1, beta=0.9)
    for step, grad in enumerate(grads):
        if step == 3:
            ours.set(beta=0.5)
            set_torch_hyperparameters(theirs, "momentum", lr=0.1, beta=0.5)
        ours.step({"w": w}, {"w": grad})
        param.grad = torch.from_numpy(grad.copy())
        theirs.step()
    np.testing.assert_allclose(param.detach().numpy(), w, rtol=RTOL)


# --- dropout -------------------------------------------------------------------------------------


def test_dropout_keeps_the_expected_value_and_is_seeded() -> None:
    x = torch.ones(200, 50, dtype=torch.float64)
    first, second = TorchDropout(0.8, rng=4), TorchDropout(0.8, rng=4)
    out = first(x)
    kept = (out != 0).double().mean().item()
    assert kept == pytest.approx(0.8, abs=0.02)
    assert set(torch.unique(out).tolist()) == {0.0, 1 / 0.8}
    assert torch.equal(out, second(x))  # same seed, same masks
    assert not torch.equal(out, first(x))  # a new mask each call
    assert first.eval()(x) is x
    with pytest.raises(ConfigError):
        TorchDropout(0.0)


@settings(max_examples=10, deadline=None)
@given(keep_prob=st.floats(0.3, 0.95), seed=st.integers(0, 2**16))
def test_dropout_drops_the_same_units_as_the_numpy_engine(keep_prob: float, seed: int) -> None:
    mlp = MLP([5, 7, 6, 3], keep_prob=keep_prob, seed=seed, dtype=np.float64)
    model = to_torch(mlp)  # shares mlp's generator
    x, y = make_data(9, 5, 3, seed=seed)
    state = mlp.rng.bit_generator.state
    logits = mlp.forward(x)
    _, dlogits = softmax_cross_entropy(logits, y)
    mlp.backward(dlogits)
    mlp.rng.bit_generator.state = state  # replay the same draws for the twin
    torch_logits = model(torch.from_numpy(x))
    model.criterion(torch_logits, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=RTOL, atol=1e-12)
    assert_same(mlp.gradients(), torch_gradients(model))
    # Dropout really acted: without the replay the twin draws other masks.
    other = model(torch.from_numpy(x)).detach().numpy()
    assert not np.allclose(other, logits)


# --- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_fit_torch_reproduces_fit(name: str) -> None:
    """Same batches (a trailing batch of one merged), L2, schedule and per-epoch metrics."""
    X, y = make_data(41, 6, 3)
    X_val, y_val = make_data(15, 6, 3, seed=1)
    options: dict[str, Any] = {
        "X_val": X_val,
        "y_val": y_val,
        "optimizer": name,
        "epochs": 3,
        "batch_size": 8,  # 41 = 5·8 + 1: the last example joins the fifth batch
        "l2": 0.3,
        "schedule": "inverse_time",
        "seed": 5,
        **HYPERPARAMETERS[name],
    }
    ours, theirs = MLP([6, 5, 3], dtype=np.float64), MLP([6, 5, 3], dtype=np.float64)
    expected = fit(ours, X, y, **options)
    history = fit_torch(theirs, X, y, **options)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=RTOL)
    assert history.lr == expected.lr
    assert history.train_accuracy == expected.train_accuracy
    assert history.val_accuracy == expected.val_accuracy
    assert history.outcome == expected.outcome == "complete"
    assert_same(
        {**ours.parameters(), **ours.buffers()}, {**theirs.parameters(), **theirs.buffers()}
    )


def test_trainer_batches_are_the_numpy_trainers() -> None:
    X, y = make_data(21, 4, 2)
    mlp = MLP([4, 3, 2])
    ours = Trainer(mlp, make_optimizer("gd", lr=0.1), X, y, batch_size=5, seed=9)
    theirs = TorchTrainer(mlp, make_optimizer("gd", lr=0.1), X, y, batch_size=5, seed=9)
    expected = list(ours.draw_batches())
    batches = list(theirs.draw_batches())  # one loop for both engines: the same batches
    assert [len(b) for b in batches] == [5, 5, 5, 6]
    for got, want in zip(batches, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_callback_hyperparameters_and_divergence() -> None:
    X, y = make_data(30, 4, 2)
    X *= 1e6
    seen: list[int] = []
    trainer = TorchTrainer(
        MLP([4, 3, 2], batchnorm=False, dtype=np.float64),
        make_optimizer("gd", lr=1e6),
        X,
        y,
        batch_size=10,
        callback=lambda metrics: seen.append(metrics.epoch),
    )
    trainer.set_hyperparameters(lr=1e9, l2=0.1)
    assert trainer.hyperparameters()["lr"] == 1e9
    assert trainer.l2 == 0.1
    history = trainer.run(5)
    assert history.outcome == "diverged"
    assert seen == list(range(1, len(history) + 1))  # every epoch, the diverged one too
    assert not np.isfinite(history.cost[-1])
    with pytest.raises(ConfigError):
        trainer.set_hyperparameters(l2=-1.0)


def test_callback_can_stop_training() -> None:
    X, y = make_data(30, 4, 2)
    trainer = TorchTrainer(
        MLP([4, 3, 2]), make_optimizer("adam", lr=0.01), X, y, callback=lambda m: m.epoch == 2
    )
    history = trainer.run(10)
    assert len(history) == 2
    assert history.outcome == "stopped"


def test_trainer_refuses_a_model_without_a_twin() -> None:
    X, y = make_data(10, 4, 2)
    with pytest.raises(ConfigError, match="model"):
        TorchTrainer(object(), make_optimizer("gd", lr=0.1), X, y)  # type: ignore[arg-type]


# --- checkpoints ---------------------------------------------------------------------------------


CHECKPOINT_OPTIONS: dict[str, Any] = {
    "batch_size": 8,
    "l2": 0.1,
    "schedule": "inverse_time",
    "seed": 2,
}


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_checkpoints_resume_across_engines(name: str) -> None:
    """Two epochs in one engine, a checkpoint, two more in the other: the same run as four
    epochs in NumPy alone (dropout included)."""
    X, y = make_data(40, 6, 3)
    config = {"sizes": [6, 5, 4, 3], "keep_prob": 0.8, "seed": 1, "dtype": np.float64}
    options = CHECKPOINT_OPTIONS
    hp = HYPERPARAMETERS[name]

    reference = Trainer(MLP(**config), make_optimizer(name, **hp), X, y, **options)
    reference.run(4)

    for first, second in ((TorchTrainer, Trainer), (Trainer, TorchTrainer)):
        head = first(MLP(**config), make_optimizer(name, **hp), X, y, **options)
        head.run(2)
        blob = head.to_bytes()
        tail = second.from_bytes(blob, MLP(**config), make_optimizer(name, **hp), X, y, **options)
        history = tail.run(2)
        assert tail.epoch == 4
        np.testing.assert_allclose(history.cost, reference.history.cost, rtol=RTOL)
        assert history.lr == reference.history.lr
        ours = {**reference.model.parameters(), **reference.model.buffers()}
        assert_same(ours, {**tail.model.parameters(), **tail.model.buffers()})


def test_torch_checkpoint_file_round_trip(tmp_path: Any) -> None:
    X, y = make_data(30, 4, 2)
    config = {"sizes": [4, 3, 2], "dtype": np.float64}
    trainer = TorchTrainer(MLP(**config), make_optimizer("adam", lr=0.01), X, y, batch_size=7)
    trainer.run(1)
    path = trainer.save(tmp_path / "run.ckpt")
    trainer.run(1)
    resumed = TorchTrainer.load(
        path, MLP(**config), make_optimizer("adam", lr=0.01), X, y, batch_size=7
    )
    assert resumed.epoch == 1
    resumed.run(1)
    assert resumed.history.cost == trainer.history.cost  # same arithmetic, bit for bit
    state = resumed.state_dict()
    assert state["optimizer"]["steps"]["0.W"] == 2 * 5  # 30 rows in batches of 7: 5 per epoch
