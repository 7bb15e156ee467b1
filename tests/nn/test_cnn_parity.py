"""The CNN's PyTorch twin against the NumPy CNN in float64: forward, gradients, running statistics,
10 optimizer steps, Trainer runs and checkpoints across engines (relative tolerance 1e-6)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import softmax_cross_entropy
from tunery.nn.cnn import CNN
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import Trainer, fit

torch = pytest.importorskip("torch")

from tunery.nn.torch import (  # noqa: E402 - after the importorskip
    TorchCNN,
    TorchTrainer,
    copy_weights,
    fit_torch,
    from_torch,
    make_torch_optimizer,
    to_torch,
)

RTOL = 1e-6
SHAPE = (8, 7, 2)  # H, W, C: rows flattened channels-last, as tunery.data gives them
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "gd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "beta": 0.8},
    "rmsprop": {"lr": 0.01, "beta": 0.95, "eps": 1e-7},
    "adam": {"lr": 0.01, "beta1": 0.85, "beta2": 0.99, "eps": 1e-7},
}

architectures = st.fixed_dictionaries(
    {
        "conv": st.lists(
            st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=2
        ).map(lambda blocks: [list(b) for b in blocks]),
        "dense": st.lists(st.integers(2, 5), max_size=1),
        "batchnorm": st.booleans(),
        "instance_norm": st.booleans(),
        "pool": st.integers(1, 2),
        "seed": st.integers(0, 2**16),
    }
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_data(n: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, int(np.prod(SHAPE)))), rng.integers(0, classes, n)


def perturb(cnn: CNN, seed: int = 1) -> None:
    """Move biases, γ, β and the running statistics off their initial values."""
    rng = np.random.default_rng(seed)
    for key, array in {**cnn.parameters(), **cnn.buffers()}.items():
        if key.endswith((".b", ".beta", ".running_mean")):
            array[:] = rng.normal(0, 0.5, array.shape)
        elif key.endswith((".gamma", ".running_var")):
            array[:] = rng.uniform(0.5, 1.5, array.shape)


def torch_state(model: TorchCNN, cnn: CNN) -> dict[str, np.ndarray]:
    """The twin's parameters and buffers in the NumPy layout, under the NumPy keys."""
    copy = CNN.from_config(cnn.config())
    from_torch(model, copy)
    return {**copy.parameters(), **copy.buffers()}


def torch_gradients(model: TorchCNN) -> dict[str, np.ndarray]:
    names = {
        torch.nn.Linear: ("W", "b"),
        torch.nn.Conv2d: ("W", "b"),
        torch.nn.BatchNorm1d: ("gamma", "beta"),
        torch.nn.BatchNorm2d: ("gamma", "beta"),
    }
    grads = {}
    for index, module in enumerate(model.layers):
        for kind, (weight, bias) in names.items():
            if isinstance(module, kind):
                grad = module.weight.grad.numpy()
                grads[f"{index}.{weight}"] = grad.T if grad.ndim == 2 else grad
                if module.bias is not None:
                    grads[f"{index}.{bias}"] = module.bias.grad.numpy()
    return grads


def assert_same(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs)
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=RTOL, atol=1e-12, err_msg=key)


@settings(max_examples=20, deadline=None)
@given(architecture=architectures, batch=st.integers(2, 6))
def test_forward_and_gradients_match_in_train_mode(
    architecture: dict[str, Any], batch: int
) -> None:
    cnn = CNN(SHAPE, 3, **architecture, dtype=np.float64)
    perturb(cnn, architecture["seed"])
    model = to_torch(cnn)
    x, y = make_data(batch, seed=architecture["seed"])
    logits = cnn.forward(x)
    cost, dlogits = softmax_cross_entropy(logits, y)
    cnn.backward(dlogits)
    torch_logits = model(torch.from_numpy(x))
    torch_cost = model.criterion(torch_logits, torch.from_numpy(y))
    torch_cost.backward()
    np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=RTOL, atol=1e-12)
    assert torch_cost.item() == pytest.approx(cost, rel=RTOL)
    assert_same(cnn.gradients(), torch_gradients(model))
    running = {k: v for k, v in torch_state(model, cnn).items() if "running" in k}
    assert_same(cnn.buffers(), running)


@settings(max_examples=10, deadline=None)
@given(architecture=architectures, batch=st.integers(1, 4))
def test_forward_matches_in_eval_mode(architecture: dict[str, Any], batch: int) -> None:
    cnn = CNN(SHAPE, 3, **architecture, dtype=np.float64)
    perturb(cnn, architecture["seed"])
    model = to_torch(cnn).eval()
    x, _ = make_data(batch)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, cnn.eval().forward(x), rtol=RTOL, atol=1e-12)


def test_twin_is_built_layer_for_layer_and_takes_images_too() -> None:
    cnn = CNN(SHAPE, 3, conv=[[4, 3], [5, 2]], dense=[6], dtype=np.float64)
    model = to_torch(cnn)
    kinds = [type(module).__name__ for module in model.layers]
    block = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert kinds == [*block, *block, "Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert model.layers[0].padding == (1, 1)
    assert model.layers[0].bias is None
    assert model.layers[1].momentum == pytest.approx(0.1)
    x, _ = make_data(3)
    images = torch.from_numpy(x.reshape(3, 8, 7, 2).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        torch.testing.assert_close(model(images), model(torch.from_numpy(x)))
    assert model.config() == cnn.config()


def test_weights_copy_both_ways_and_other_architectures_are_refused() -> None:
    cnn = CNN(SHAPE, 3, conv=[[3, 3]], dense=[4], seed=1, dtype=np.float64)
    perturb(cnn)
    model = TorchCNN(SHAPE, 3, conv=[[3, 3]], dense=[4], seed=2, dtype=np.float64)
    copy_weights(cnn, model)
    np.testing.assert_array_equal(model.layers[0].weight.detach().numpy(), cnn.layers[0].W)
    np.testing.assert_array_equal(model.layers[5].weight.detach().numpy(), cnn.layers[5].W.T)
    assert_same({**cnn.parameters(), **cnn.buffers()}, torch_state(model, cnn))
    with pytest.raises(ConfigError):
        copy_weights(cnn, TorchCNN(SHAPE, 3, conv=[[3, 5]], dense=[4]))
    with pytest.raises(ConfigError):
        copy_weights(cnn, TorchCNN(SHAPE, 3, conv=[[3, 3]], dense=[4], pool=1))


@pytest.mark.parametrize("instance_norm", [False, True])
@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_ten_optimizer_steps_match(name: str, instance_norm: bool) -> None:
    hp = HYPERPARAMETERS[name]
    settings = {"instance_norm": instance_norm, "dtype": np.float64, "seed": 3}
    cnn = CNN(SHAPE, 3, conv=[[3, 3], [4, 3]], dense=[5], **settings)
    model = to_torch(cnn)
    ours = make_optimizer(name, **hp)
    theirs = make_torch_optimizer(name, model.parameters(), **hp)
    for step in range(10):
        x, y = make_data(6, seed=step)
        _, dlogits = softmax_cross_entropy(cnn.forward(x), y)
        cnn.backward(dlogits)
        ours.step(cnn.parameters(), cnn.gradients())
        theirs.zero_grad()
        model.criterion(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs.step()
    start = CNN.from_config(cnn.config()).parameters()
    first_conv = f"{int(instance_norm)}.W"
    assert not np.allclose(cnn.parameters()[first_conv], start[first_conv])  # they did move
    assert_same({**cnn.parameters(), **cnn.buffers()}, torch_state(model, cnn))


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_fit_torch_reproduces_fit_over_ten_steps(name: str) -> None:
    """2 epochs of 5 batches (L2 on every weight, a decaying schedule): the same costs,
    accuracies and final weights."""
    X, y = make_data(40)
    X_val, y_val = make_data(12, seed=1)
    options: dict[str, Any] = {
        "X_val": X_val,
        "y_val": y_val,
        "optimizer": name,
        "epochs": 2,
        "batch_size": 8,
        "l2": 0.3,
        "schedule": "inverse_time",
        "seed": 5,
        **HYPERPARAMETERS[name],
    }
    config: dict[str, Any] = {"conv": [[3, 3], [4, 2]], "dense": [5], "dtype": np.float64}
    ours, theirs = CNN(SHAPE, 3, **config), CNN(SHAPE, 3, **config)
    expected = fit(ours, X, y, **options)
    history = fit_torch(theirs, X, y, **options)
    np.testing.assert_allclose(history.cost, expected.cost, rtol=RTOL)
    assert history.train_accuracy == expected.train_accuracy
    assert history.val_accuracy == expected.val_accuracy
    assert_same(
        {**ours.parameters(), **ours.buffers()}, {**theirs.parameters(), **theirs.buffers()}
    )


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_checkpoints_resume_across_engines(name: str) -> None:
    X, y = make_data(24)
    config = CNN(SHAPE, 3, conv=[[3, 3]], dense=[4], seed=1, dtype=np.float64).config()
    options: dict[str, Any] = {"batch_size": 8, "l2": 0.1, "seed": 2}
    hp = HYPERPARAMETERS[name]
    reference = Trainer(CNN.from_config(config), make_optimizer(name, **hp), X, y, **options)
    reference.run(4)
    for first, second in ((TorchTrainer, Trainer), (Trainer, TorchTrainer)):
        head = first(CNN.from_config(config), make_optimizer(name, **hp), X, y, **options)
        head.run(2)
        tail = second.from_bytes(
            head.to_bytes(), CNN.from_config(config), make_optimizer(name, **hp), X, y, **options
        )
        history = tail.run(2)
        np.testing.assert_allclose(history.cost, reference.history.cost, rtol=RTOL)
        ours = {**reference.model.parameters(), **reference.model.buffers()}
        assert_same(ours, {**tail.model.parameters(), **tail.model.buffers()})
