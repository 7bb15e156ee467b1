"""The NumPy CNN: gradients against finite differences (float64), the channels-last rows it takes,
its config, its errors, and training by the one Trainer (every optimizer, checkpoints)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import numerical_gradient, softmax_cross_entropy
from tunery.nn.cnn import CNN, model_from_config
from tunery.nn.model import MLP
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import Trainer

TOL = 1e-6
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "gd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "beta": 0.8},
    "rmsprop": {"lr": 0.003, "beta": 0.95},
    "adam": {"lr": 0.01},
}

architectures = st.fixed_dictionaries(
    {
        "conv": st.lists(
            st.tuples(st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=2
        ).map(lambda blocks: [list(b) for b in blocks]),
        "dense": st.lists(st.integers(2, 4), max_size=1),
        "batchnorm": st.booleans(),
        "instance_norm": st.booleans(),
        "pool": st.integers(1, 2),
        "seed": st.integers(0, 2**16),
    }
)


def images(n: int, shape: tuple[int, ...], classes: int, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, int(np.prod(shape)))), rng.integers(0, classes, n)


def perturb(model: CNN, seed: int) -> None:
    """Move biases, γ and β off 0 and 1: a zero bias behind a dead ReLU sits on the kink, where a
    finite difference sees half a slope, and a γ of 1 would hide a missing factor."""
    rng = np.random.default_rng(seed)
    for key, array in model.parameters().items():
        if key.endswith((".b", ".beta")):
            array[:] = rng.normal(0, 0.5, array.shape)
        elif key.endswith(".gamma"):
            array[:] = rng.uniform(0.5, 1.5, array.shape)


@settings(max_examples=20, deadline=None)
@given(architecture=architectures, channels=st.integers(1, 2))
def test_every_parameter_gradient_matches_finite_differences(
    architecture: dict[str, Any], channels: int
) -> None:
    shape = (8, 7, channels)
    model = CNN(shape, 3, **architecture, dtype=np.float64)
    perturb(model, architecture["seed"])
    x, y = images(4, shape, 3, seed=architecture["seed"])
    assert_gradients_match_differences(model, x, y)


def assert_gradients_match_differences(model: CNN, x: np.ndarray, y: np.ndarray) -> None:
    """Every parameter's gradient of the mean cross-entropy against a centered difference.

    Relative to 1e-6, or absolutely to 1e-8: batch norm makes some true gradients vanish (a lone
    weight before it is scale-invariant; a shift that reaches every example alike before a dense
    batch norm is removed by it), and a centered difference of a cost near 1 rounds to ~1e-10.
    """
    _, dlogits = softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    analytic = {key: grad.copy() for key, grad in model.gradients().items()}
    assert set(analytic) == set(model.parameters())

    def cost(_: np.ndarray) -> float:
        return softmax_cross_entropy(model.forward(x), y)[0]

    for key, parameter in model.parameters().items():
        numeric = numerical_gradient(cost, parameter, eps=1e-6)
        np.testing.assert_allclose(analytic[key], numeric, rtol=TOL, atol=1e-8, err_msg=key)


def test_a_broken_layer_fails_the_gradient_check() -> None:
    """The check can fail: a Conv2D whose dW is off by a factor is caught."""
    model = CNN((6, 6), 2, conv=[[2, 3]], dtype=np.float64)
    conv = model.layers[0]
    backward = conv.backward

    def wrong(dout: np.ndarray) -> np.ndarray:
        dx = backward(dout)
        conv.dW *= 1.01
        return dx

    conv.backward = wrong  # type: ignore[method-assign]
    x, y = images(4, (6, 6), 2)
    with pytest.raises(AssertionError, match=r"0\.W"):
        assert_gradients_match_differences(model, x, y)


def test_rows_are_read_channels_last_into_nchw_images() -> None:
    shape = (4, 5, 3)  # H, W, C as tunery.data flattens photos
    model = CNN(shape, 2, conv=[[2, 3]], dtype=np.float64)
    rows, _ = images(3, shape, 2)
    as_images = rows.reshape(3, 4, 5, 3).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(model.prepare_input(rows), as_images)
    np.testing.assert_allclose(model.forward(rows), model.forward(as_images.copy()), atol=1e-12)
    # Channel 1 of the first image is every third value of its row, starting at the second.
    np.testing.assert_array_equal(model.prepare_input(rows)[0, 1].reshape(-1), rows[0, 1::3])


def test_layers_follow_the_blocks() -> None:
    model = CNN((8, 8), 10, conv=[[4, 3], [6, 5]], dense=[7])
    kinds = [type(layer).__name__ for layer in model.layers]
    block = ["Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D"]
    assert kinds == [*block, *block, "Flatten", "Dense", "BatchNorm", "ReLU", "Dense"]
    assert model.feature_shape == (2, 2)
    assert model.layers[9].W.shape == (6 * 2 * 2, 7)
    assert model.layers[0].b is None
    assert not model.layers[0].input_grad
    plain = CNN((8, 8), 10, conv=[[4, 3]], batchnorm=False, pool=1)
    assert [type(layer).__name__ for layer in plain.layers] == [
        "Conv2D",
        "ReLU",
        "Flatten",
        "Dense",
    ]
    assert plain.layers[0].b is not None
    assert model.weight_keys() == ["0.W", "4.W", "9.W", "12.W"]
    assert model.sizes == (64, 10)


def test_config_round_trips_and_rebuilds_the_same_weights() -> None:
    model = CNN((6, 6, 3), 4, conv=[[3, 3]], dense=[5], seed=3, dtype=np.float64)
    config = model.config()
    assert config["kind"] == "cnn"
    rebuilt = model_from_config(config)
    assert isinstance(rebuilt, CNN)
    assert rebuilt.config() == config
    for key, array in model.state_dict().items():
        np.testing.assert_array_equal(rebuilt.state_dict()[key], array)
    mlp = MLP([4, 3, 2])
    assert isinstance(model_from_config(mlp.config()), MLP)
    assert isinstance(model_from_config({**mlp.config(), "kind": "mlp"}), MLP)
    with pytest.raises(ConfigError, match=r"config\.kind"):
        model_from_config({"kind": "rnn"})


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"conv": []}, "conv"),
        ({"conv": [[0, 3]]}, r"conv\[0\].filters"),
        ({"conv": [[4, 2.5]]}, r"conv\[0\].kernel"),
        ({"conv": [[4]]}, r"conv\[0\]"),
        ({"conv": [[4, 3]] * 4}, "conv"),  # 8×8 pooled 4 times is below one pixel
        ({"pool": 16}, "conv"),  # pooled below one pixel at once
        ({"pool": 0}, "pool"),
        ({"dense": [0]}, r"dense\[0\]"),
        ({"dense": 5}, "dense"),
        ({"batchnorm": "yes"}, "batchnorm"),
        ({"instance_norm": 1}, "instance_norm"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        CNN((8, 8), 10, **settings)
    assert caught.value.expected


def test_bad_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="image_shape"):
        CNN((8,), 10)
    with pytest.raises(ConfigError, match="num_classes"):
        CNN((8, 8), 1)
    with pytest.raises(ConfigError, match=r"rows \(N, 64\)"):
        CNN((8, 8), 10).forward(np.zeros((2, 63)))


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_every_optimizer_trains_it(name: str) -> None:
    """Separable images (class = which half is bright): each optimizer lowers the cost."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    x = rng.normal(0, 0.3, (64, 8, 8))
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    model = CNN((8, 8), 2, conv=[[4, 3]], seed=1)
    trainer = Trainer(model, make_optimizer(name, **HYPERPARAMETERS[name]), x.reshape(64, -1), y)
    history = trainer.run(8)
    assert history.outcome == "complete"
    assert history.cost[-1] < 0.5 * history.cost[0]
    assert history.train_accuracy[-1] > 0.9


def test_a_checkpoint_resumes_the_run_bit_for_bit(tmp_path: Any) -> None:
    x, y = images(30, (6, 6, 2), 3)
    config = CNN((6, 6, 2), 3, conv=[[3, 3]], dense=[4], seed=2).config()
    options: dict[str, Any] = {"batch_size": 8, "l2": 0.1, "schedule": "inverse_time", "seed": 4}
    whole = Trainer(model_from_config(config), make_optimizer("adam", lr=0.01), x, y, **options)
    whole.run(4)
    head = Trainer(model_from_config(config), make_optimizer("adam", lr=0.01), x, y, **options)
    head.run(2)
    path = head.save(tmp_path / "cnn.ckpt")
    tail = Trainer.load(
        path, model_from_config(config), make_optimizer("adam", lr=0.01), x, y, **options
    )
    tail.run(2)
    assert tail.history.cost == whole.history.cost
    for key, array in whole.model.state_dict().items():
        np.testing.assert_array_equal(tail.model.state_dict()[key], array, err_msg=key)
