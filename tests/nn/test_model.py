"""MLP: structure, keys and live arrays, modes, config round trip, validation, and a whole
forward + backward against an equivalent torch model (float64)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn import (
    MLP,
    NO_INPUT_GRAD,
    BatchNorm,
    Dense,
    Dropout,
    Layer,
    ReLU,
    Sigmoid,
    Tanh,
    softmax_cross_entropy,
)


def _data(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


# --- structure and keys ------------------------------------------------------------------------


def test_hidden_blocks_and_logits_layer() -> None:
    model = MLP([6, 5, 4, 3], keep_prob=0.8)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Dense, BatchNorm, ReLU, Dropout, Dense, BatchNorm, ReLU, Dropout, Dense]
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == [(6, 5), (5, 4), (4, 3)]
    assert [d.b is not None for d in dense] == [False, False, True]  # β replaces the bias
    assert [d.input_grad for d in dense] == [False, True, True]


def test_batchnorm_per_layer_and_no_dropout_at_keep_prob_one() -> None:
    model = MLP([6, 5, 4, 3], batchnorm=[False, True], activation="tanh")
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Dense, Tanh, Dense, BatchNorm, Tanh, Dense]
    assert model.layers[0].parameters().keys() == {"W", "b"}
    assert model.layers[2].parameters().keys() == {"W"}


def test_logistic_regression_is_one_dense_layer() -> None:
    model = MLP([4, 3], dtype=np.float64)
    assert [type(layer) for layer in model.layers] == [Dense]
    x, y = _data(5, 4, 3)
    _, dlogits = softmax_cross_entropy(model.forward(x), y)
    assert model.backward(dlogits) is NO_INPUT_GRAD
    np.testing.assert_allclose(model.gradients()["0.W"], x.T @ dlogits)


@pytest.mark.parametrize(("activation", "std"), [("relu", np.sqrt(2 / 300)), ("sigmoid", 0.08)])
def test_initialization_follows_activation(activation: str, std: float) -> None:
    model = MLP([300, 12, 2], activation=activation)  # type: ignore[arg-type]
    # Xavier: √(2 / (300 + 12)) ≈ 0.080; He: √(2 / 300) ≈ 0.082 — checked to 3%.
    assert model.parameters()["0.W"].std() == pytest.approx(std, rel=0.03)
    assert isinstance(model.layers[2], ReLU if activation == "relu" else Sigmoid)


def test_keys_and_live_arrays() -> None:
    model = MLP([4, 3, 2])
    params, grads, buffers = model.parameters(), model.gradients(), model.buffers()
    assert list(params) == ["0.W", "1.gamma", "1.beta", "3.W", "3.b"]
    assert list(grads) == list(params)
    assert list(buffers) == ["1.running_mean", "1.running_var"]
    assert params["0.W"] is model.layers[0].W  # type: ignore[attr-defined]
    assert buffers["1.running_var"] is model.layers[1].running_var  # type: ignore[attr-defined]
    assert model.weight_keys() == ["0.W", "3.W"]
    for key, param in params.items():
        assert grads[key].shape == param.shape


def test_gradient_arrays_are_never_rebound() -> None:
    model = MLP([4, 3, 2], keep_prob=0.7)
    before = {k: id(v) for k, v in {**model.parameters(), **model.gradients()}.items()}
    x, y = _data(8, 4, 2)
    for _ in range(3):
        _, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        for key, param in model.parameters().items():
            param -= 0.1 * model.gradients()[key]  # what an optimizer does
    after = {k: id(v) for k, v in {**model.parameters(), **model.gradients()}.items()}
    assert after == before
    assert all(np.any(g) for g in model.gradients().values())


def test_in_place_update_changes_the_output() -> None:
    model = MLP([4, 3, 2])
    x, _ = _data(6, 4, 2)
    before = model.forward(x)
    model.parameters()["3.b"] += 1.0
    np.testing.assert_allclose(model.forward(x), before + 1.0, rtol=1e-6)


def test_l2_penalty_sums_squared_dense_weights_only() -> None:
    model = MLP([5, 4, 3, 2], dtype=np.float64)
    params = model.parameters()
    params["1.gamma"][:] = 100.0
    params["6.b"][:] = 100.0
    expected = sum(np.sum(params[k] ** 2) for k in ("0.W", "3.W", "6.W"))
    assert model.l2_penalty() == pytest.approx(expected, rel=1e-12)


# --- dtype, modes, prediction ------------------------------------------------------------------


def test_float32_model_never_upcasts() -> None:
    model = MLP([6, 5, 4, 3], keep_prob=0.9)
    x, y = _data(8, 6, 3)  # float64 input is cast once
    logits = model.forward(x)
    _, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    arrays = [logits, *model.parameters().values(), *model.gradients().values()]
    arrays += [*model.buffers().values(), model.predict_proba(x)]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


def test_predict_uses_eval_mode_and_restores_train_mode() -> None:
    model = MLP([4, 6, 3], keep_prob=0.5, seed=2)
    x, _ = _data(10, 4, 3)
    for _ in range(3):
        model.forward(x)
    stats = {k: v.copy() for k, v in model.buffers().items()}
    rng_state = model.rng.bit_generator.state
    proba = model.predict_proba(x)
    assert model.training
    assert all(layer.training for layer in model.layers)
    assert model.rng.bit_generator.state == rng_state  # no dropout mask was drawn
    for key, value in model.buffers().items():
        np.testing.assert_array_equal(value, stats[key])  # running stats untouched
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), np.argmax(proba, axis=1))
    np.testing.assert_allclose(model.predict_proba(x[:1]), proba[:1], rtol=1e-6)  # batch of one
    model.eval()
    model.predict(x)
    assert not model.training


def test_same_seed_same_model_and_masks() -> None:
    x, _ = _data(5, 4, 2)
    a, b = MLP([4, 8, 2], keep_prob=0.5, seed=3), MLP([4, 8, 2], keep_prob=0.5, seed=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(MLP([4, 8, 2], seed=4).forward(x), b.forward(x))


def test_a_small_model_learns() -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 4)) * 3
    y = rng.integers(0, 3, 90)
    x = centers[y] + rng.standard_normal((90, 4))
    model = MLP([4, 8, 3], seed=1)
    first, _ = softmax_cross_entropy(model.forward(x), y)
    for _ in range(100):
        loss, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        for key, param in model.parameters().items():
            param -= 0.3 * model.gradients()[key]
    assert loss < first / 4
    assert np.mean(model.predict(x) == y) > 0.9


# --- config and state ----------------------------------------------------------------------------


def test_config_round_trips_through_json() -> None:
    model = MLP([7, 5, 3], batchnorm=[False], activation="tanh", keep_prob=0.75, seed=9)
    config = json.loads(json.dumps(model.config()))
    rebuilt = MLP.from_config(config)
    assert rebuilt.config() == model.config()
    assert rebuilt.sizes == (7, 5, 3)
    for key, param in model.parameters().items():
        np.testing.assert_array_equal(rebuilt.parameters()[key], param)
    assert repr(rebuilt).startswith("MLP(sizes=[7, 5, 3]")


def test_state_dict_round_trip() -> None:
    x, y = _data(8, 4, 3)
    model = MLP([4, 5, 3], seed=1)
    for _ in range(2):
        _, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        for key, param in model.parameters().items():
            param -= 0.5 * model.gradients()[key]
    state = model.state_dict()
    other = MLP([4, 5, 3], seed=2)
    live = other.parameters()["0.W"]
    other.load_state_dict(state)
    assert other.parameters()["0.W"] is live
    np.testing.assert_array_equal(other.predict_proba(x), model.predict_proba(x))
    state["0.W"] += 1.0  # a copy: the model is not affected
    assert not np.array_equal(model.parameters()["0.W"], state["0.W"])


def test_load_state_dict_checks_keys_and_shapes() -> None:
    model = MLP([4, 5, 3])
    state = model.state_dict()
    with pytest.raises(ConfigError, match=r"mismatched keys \['9.W'\]"):
        model.load_state_dict({**state, "9.W": np.zeros(1)})
    with pytest.raises(ConfigError, match=r"^state\['0.W'\]: expected shape \(4, 5\)"):
        model.load_state_dict({**state, "0.W": np.zeros((5, 4))})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sizes": [5]}, "sizes"),
        ({"sizes": "784"}, "sizes"),
        ({"sizes": 784}, "sizes"),
        ({"sizes": [5, 0, 2]}, "sizes\\[1\\]"),
        ({"sizes": [5, 2.5, 2]}, "sizes\\[1\\]"),
        ({"sizes": [5, 4, 2], "activation": "gelu"}, "activation"),
        ({"sizes": [5, 4, 2], "keep_prob": 0.0}, "keep_prob"),
        ({"sizes": [5, 4, 2], "keep_prob": 1.5}, "keep_prob"),
        ({"sizes": [5, 4, 2], "batchnorm": [True, True]}, "batchnorm"),
        ({"sizes": [5, 4, 2], "batchnorm": [1]}, "batchnorm"),
        ({"sizes": [5, 4, 2], "batchnorm": "yes"}, "batchnorm"),
        ({"sizes": [5, 4, 2], "seed": -1}, "seed"),
        ({"sizes": [5, 4, 2], "seed": 1.5}, "seed"),
        ({"sizes": [5, 4, 2], "dtype": "int32"}, "dtype"),
    ],
)
def test_rejects_bad_configuration(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: expected"):
        MLP(**kwargs)  # type: ignore[arg-type]


def test_from_config_rejects_unknown_or_missing_keys() -> None:
    with pytest.raises(ConfigError, match=r"^config: expected keys among"):
        MLP.from_config({"sizes": [3, 2], "dropout": 0.5})
    with pytest.raises(ConfigError, match=r"^config: expected a 'sizes' key"):
        MLP.from_config({"seed": 1})


def test_forward_rejects_wrong_input_width() -> None:
    with pytest.raises(ConfigError, match=r"^x: expected an array of shape \(N, 4\)"):
        MLP([4, 2]).forward(np.zeros((3, 5)))


# --- against torch -----------------------------------------------------------------------------


def _torch_twin(model: MLP) -> torch.nn.Sequential:
    """The same network in torch, weights copied by hand (torch's Linear weight is (out, in))."""
    return torch.nn.Sequential(*(_torch_module(layer) for layer in model.layers))


def _torch_module(layer: Layer) -> torch.nn.Module:
    if isinstance(layer, Dense):
        bias = layer.b is not None
        linear = torch.nn.Linear(layer.in_features, layer.out_features, bias, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W.T.copy()))
            if layer.b is not None:
                linear.bias.copy_(torch.from_numpy(layer.b))
        return linear
    if isinstance(layer, BatchNorm):
        norm = torch.nn.BatchNorm1d(layer.num_features, 1e-5, 0.1, dtype=torch.float64)
        with torch.no_grad():
            norm.weight.copy_(torch.from_numpy(layer.gamma))
            norm.bias.copy_(torch.from_numpy(layer.beta))
        return norm
    twins = {ReLU: torch.nn.ReLU, Tanh: torch.nn.Tanh, Sigmoid: torch.nn.Sigmoid}
    return twins[type(layer)]()  # type: ignore[index]


def _torch_grads(model: MLP, twin: torch.nn.Sequential) -> dict[str, np.ndarray]:
    """Torch's gradients under our keys."""
    grads = {}
    for index, (ours, theirs) in enumerate(zip(model.layers, twin, strict=True)):
        if isinstance(ours, Dense):
            grads[f"{index}.W"] = theirs.weight.grad.numpy().T
            if ours.b is not None:
                grads[f"{index}.b"] = theirs.bias.grad.numpy()
        elif isinstance(ours, BatchNorm):
            grads[f"{index}.gamma"] = theirs.weight.grad.numpy()
            grads[f"{index}.beta"] = theirs.bias.grad.numpy()
    return grads


@settings(max_examples=12, deadline=None)
@given(
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    batchnorm=st.lists(st.booleans(), min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
    n=st.integers(2, 9),
)
def test_matches_torch_forward_and_backward(
    activation: str, batchnorm: list[bool], seed: int, n: int
) -> None:
    model = MLP(
        [6, 5, 4, 3], batchnorm=batchnorm, activation=activation, seed=seed, dtype=np.float64
    )  # type: ignore[arg-type]
    twin = _torch_twin(model)
    for step in range(3):
        x, y = _data(n, 6, 3, seed=seed + step)
        twin.zero_grad()
        t_logits = twin(torch.from_numpy(x))
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(y))
        t_loss.backward()
        logits = model.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=1e-6, atol=1e-12)
        assert loss == pytest.approx(t_loss.item(), rel=1e-6)
        expected = _torch_grads(model, twin)
        assert expected.keys() == model.gradients().keys()
        for key, grad in model.gradients().items():
            np.testing.assert_allclose(grad, expected[key], rtol=1e-6, atol=1e-12, err_msg=key)
    x, _ = _data(4, 6, 3, seed=seed + 99)
    t_proba = torch.softmax(twin.eval()(torch.from_numpy(x)), dim=1).detach().numpy()
    np.testing.assert_allclose(model.predict_proba(x), t_proba, rtol=1e-6, atol=1e-12)
