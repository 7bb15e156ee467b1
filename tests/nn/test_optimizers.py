"""Optimizers: against torch.optim, against the textbook formulas, and their plumbing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError
from tunery.nn.optimizers import GD, OPTIMIZERS, Adam, Momentum, Optimizer, RMSprop, make_optimizer

Arrays = dict[str, np.ndarray]
SHAPES = {"0.W": (7, 5), "0.b": (5,), "1.gamma": (5,)}


def random_params(seed: int, dtype: Any = np.float64) -> Arrays:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(dtype) for key, shape in SHAPES.items()}


def gradient_stream(seed: int, steps: int, dtype: Any = np.float64) -> list[Arrays]:
    return [random_params(seed * 1000 + t, dtype) for t in range(steps)]


def textbook(name: str, hp: dict[str, float], params: Arrays, grads: list[Arrays]) -> Arrays:
    """The update rules exactly as the course writes them, one plain line each."""
    W = {k: v.copy() for k, v in params.items()}
    first = {k: np.zeros_like(v) for k, v in params.items()}
    second = {k: np.zeros_like(v) for k, v in params.items()}
    for t, g_t in enumerate(grads, start=1):
        for k, g in g_t.items():
            if name == "gd":
                W[k] = W[k] - hp["lr"] * g
            elif name == "momentum":
                first[k] = hp["beta"] * first[k] + (1 - hp["beta"]) * g
                W[k] = W[k] - hp["lr"] * first[k]
            elif name == "rmsprop":
                second[k] = hp["beta"] * second[k] + (1 - hp["beta"]) * g**2
                W[k] = W[k] - hp["lr"] * g / (np.sqrt(second[k]) + hp["eps"])
            else:
                first[k] = hp["beta1"] * first[k] + (1 - hp["beta1"]) * g
                second[k] = hp["beta2"] * second[k] + (1 - hp["beta2"]) * g**2
                m_hat = first[k] / (1 - hp["beta1"] ** t)
                v_hat = second[k] / (1 - hp["beta2"] ** t)
                W[k] = W[k] - hp["lr"] * m_hat / (np.sqrt(v_hat) + hp["eps"])
    return W


def run(optimizer: Optimizer, params: Arrays, grads: list[Arrays]) -> Arrays:
    live = {k: v.copy() for k, v in params.items()}
    for g in grads:
        optimizer.step(live, g)
    return live


def assert_close(actual: Arrays, expected: Arrays, rtol: float) -> None:
    assert actual.keys() == expected.keys()
    for key in actual:
        np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=1e-12, err_msg=key)


# --- against torch.optim, float64, ten steps ------------------------------------------------------

TORCH_CASES = [
    ("gd", {"lr": 0.1}),
    ("momentum", {"lr": 0.05, "beta": 0.9}),
    ("momentum", {"lr": 0.3, "beta": 0.0}),
    ("rmsprop", {"lr": 0.01, "beta": 0.9, "eps": 1e-8}),
    ("rmsprop", {"lr": 0.02, "beta": 0.5, "eps": 1e-3}),
    ("adam", {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}),
    ("adam", {"lr": 0.1, "beta1": 0.0, "beta2": 0.5, "eps": 1e-4}),
]


def torch_optimizer(name: str, hp: dict[str, float], tensors: list[Any]) -> Any:
    torch = pytest.importorskip("torch")
    if name == "gd":
        return torch.optim.SGD(tensors, lr=hp["lr"])
    if name == "momentum":
        # The course's v = βv + (1 − β)g, W -= lr·v is torch's b = βb + g with lr·(1 − β):
        # b_t = v_t / (1 − β) by induction (see the module docstring).
        return torch.optim.SGD(tensors, lr=hp["lr"] * (1 - hp["beta"]), momentum=hp["beta"])
    if name == "rmsprop":
        return torch.optim.RMSprop(tensors, lr=hp["lr"], alpha=hp["beta"], eps=hp["eps"])
    betas = (hp["beta1"], hp["beta2"])
    return torch.optim.Adam(tensors, lr=hp["lr"], betas=betas, eps=hp["eps"])


@pytest.mark.parametrize(("name", "hp"), TORCH_CASES)
def test_matches_torch_optim_for_ten_steps(name: str, hp: dict[str, float]) -> None:
    torch = pytest.importorskip("torch")
    params, grads = random_params(1), gradient_stream(2, steps=10)
    tensors = [torch.tensor(v.copy(), requires_grad=True) for v in params.values()]
    reference = torch_optimizer(name, hp, tensors)
    for g in grads:
        for tensor, key in zip(tensors, params, strict=True):
            tensor.grad = torch.tensor(g[key])
        reference.step()
    expected = {k: t.detach().numpy() for k, t in zip(params, tensors, strict=True)}
    ours = run(make_optimizer(name, **hp), params, grads)
    assert_close(ours, expected, rtol=1e-6)
    assert not all(np.array_equal(ours[k], params[k]) for k in params)  # it did move


# --- against the textbook formulas ----------------------------------------------------------------

unit = st.floats(0.0, 0.999)


@st.composite
def optimizer_cases(draw: st.DrawFn) -> tuple[str, dict[str, float]]:
    name = draw(st.sampled_from(["gd", "momentum", "rmsprop", "adam"]))
    hp = {"lr": draw(st.floats(1e-4, 1.0))}
    if name in ("momentum", "rmsprop"):
        hp["beta"] = draw(unit)
    if name == "adam":
        hp["beta1"], hp["beta2"] = draw(unit), draw(unit)
    if name in ("rmsprop", "adam"):
        hp["eps"] = draw(st.floats(1e-8, 1e-2))
    return name, hp


@settings(deadline=None, max_examples=60)
@given(case=optimizer_cases(), seed=st.integers(0, 2**16), steps=st.integers(1, 8))
def test_update_is_the_textbook_formula(
    case: tuple[str, dict[str, float]], seed: int, steps: int
) -> None:
    name, hp = case
    params, grads = random_params(seed), gradient_stream(seed + 1, steps)
    expected = textbook(name, hp, params, grads)
    assert_close(run(make_optimizer(name, **hp), params, grads), expected, 1e-9)


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("momentum", {"lr": 0.01, "beta": 0.9}),
        ("rmsprop", {"lr": 0.001, "beta": 0.9, "eps": 1e-8}),
        ("adam", {"lr": 0.001, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8}),
    ],
)
def test_long_runs_stay_exact_when_the_stored_scale_is_folded_back(
    name: str, hp: dict[str, float]
) -> None:
    # 0.9**700 is far below the 1e-12 at which an average folds its scale into its data (every
    # ~260 steps), so this crosses that path several times.
    params, grads = random_params(3), gradient_stream(4, steps=700)
    expected = textbook(name, hp, params, grads)
    assert_close(run(make_optimizer(name, **hp), params, grads), expected, 1e-9)


def test_live_gradient_arrays_refilled_in_place_are_read_afresh_each_step() -> None:
    # A model hands the optimizer the same gradient arrays every step, with new values.
    params, stream = random_params(5), gradient_stream(6, steps=4)
    live_params = {k: v.copy() for k, v in params.items()}
    live_grads = {k: np.empty_like(v) for k, v in params.items()}
    optimizer = Adam(0.01)
    for g in stream:
        for key, value in g.items():
            live_grads[key][...] = value
        optimizer.step(live_params, live_grads)
    hp = optimizer.hyperparameters()
    assert_close(live_params, textbook("adam", hp, params, stream), 1e-9)


# --- dtype, in place ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gd", "momentum", "rmsprop", "adam"])
def test_float32_stays_float32_and_updates_the_live_arrays(name: str) -> None:
    params32, grads32 = random_params(7, np.float32), gradient_stream(8, 5, np.float32)
    live = {k: v.copy() for k, v in params32.items()}
    before = {k: id(v) for k, v in live.items()}
    grads_before = [{k: v.copy() for k, v in g.items()} for g in grads32]
    optimizer = make_optimizer(name, lr=0.01)
    for g in grads32:
        optimizer.step(live, g)
    assert {k: id(v) for k, v in live.items()} == before
    assert all(v.dtype == np.float32 for v in live.values())
    for g, g0 in zip(grads32, grads_before, strict=True):  # gradients are read, never written
        assert all(np.array_equal(g[k], g0[k]) for k in g)
    params64 = {k: v.astype(np.float64) for k, v in params32.items()}
    grads64 = [{k: v.astype(np.float64) for k, v in g.items()} for g in grads32]
    expected = textbook(name, optimizer.hyperparameters(), params64, grads64)
    assert_close({k: v.astype(np.float64) for k, v in live.items()}, expected, rtol=2e-5)


def test_state_buffers_are_allocated_once_in_the_parameters_dtype() -> None:
    params, grads = random_params(9, np.float32), gradient_stream(10, 3, np.float32)
    optimizer = Adam(0.01)
    optimizer.step(params, grads[0])
    state = optimizer.state_dict()
    buffers = {key: optimizer._slots[key].averages["m"].data for key in params}
    for g in grads[1:]:
        optimizer.step(params, g)
    assert all(optimizer._slots[key].averages["m"].data is buffers[key] for key in params)
    assert all(array.dtype == np.float32 for array in state["arrays"].values())


# --- mutable, validated hyperparameters -----------------------------------------------------------


def test_changing_lr_between_steps_takes_effect() -> None:
    params, grads = random_params(11), gradient_stream(12, 2)
    optimizer = GD(0.1)
    live = run(optimizer, params, grads[:1])
    optimizer.lr = 0.5
    optimizer.step(live, grads[1])
    expected = {k: params[k] - 0.1 * grads[0][k] - 0.5 * grads[1][k] for k in params}
    assert_close(live, expected, 1e-12)


def test_changing_beta_mid_run_follows_the_textbook_step_by_step() -> None:
    params, grads = random_params(13), gradient_stream(14, 6)
    optimizer = Momentum(0.1, beta=0.9)
    live = run(optimizer, params, grads[:3])
    optimizer.set(beta=0.5)
    for g in grads[3:]:
        optimizer.step(live, g)
    v = {k: np.zeros_like(p) for k, p in params.items()}
    expected = {k: p.copy() for k, p in params.items()}
    for t, g in enumerate(grads):
        beta = 0.9 if t < 3 else 0.5
        for k in params:
            v[k] = beta * v[k] + (1 - beta) * g[k]
            expected[k] -= 0.1 * v[k]
    assert_close(live, expected, 1e-12)


def test_hyperparameters_and_set() -> None:
    optimizer = Adam(0.01)
    assert optimizer.hyperparameters() == {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    optimizer.set(lr=0.5, beta2=0.9)
    assert (optimizer.lr, optimizer.beta2) == (0.5, 0.9)
    with pytest.raises(ConfigError) as error:
        optimizer.set(lr=0.1, beta1=1.0)
    assert error.value.field == "beta1"
    assert optimizer.lr == 0.5  # all or nothing
    with pytest.raises(ConfigError) as error:
        optimizer.set(beta=0.9)
    assert error.value.field == "beta"


def test_make_optimizer_builds_each_kind() -> None:
    assert type(make_optimizer("gd", lr=0.1)) is GD
    assert type(make_optimizer("Momentum", lr=0.1, beta=0.8)) is Momentum
    assert type(make_optimizer("rmsprop", lr=0.1)) is RMSprop
    adam = make_optimizer(" adam ", lr=0.1, beta1=0.8)
    assert type(adam) is Adam
    assert adam.hyperparameters() == {"lr": 0.1, "beta1": 0.8, "beta2": 0.999, "eps": 1e-8}


BAD = [
    ({"name": "sgdd", "lr": 0.1}, "optimizer"),
    ({"name": None, "lr": 0.1}, "optimizer"),
    ({"name": "adam", "lr": 0.0}, "lr"),
    ({"name": "adam", "lr": -1.0}, "lr"),
    ({"name": "adam", "lr": float("nan")}, "lr"),
    ({"name": "adam", "lr": float("inf")}, "lr"),
    ({"name": "adam", "lr": "0.1"}, "lr"),
    ({"name": "adam", "lr": True}, "lr"),
    ({"name": "adam", "lr": 0.1, "beta1": 1.0}, "beta1"),
    ({"name": "adam", "lr": 0.1, "beta2": -0.1}, "beta2"),
    ({"name": "adam", "lr": 0.1, "eps": 0.0}, "eps"),
    ({"name": "adam", "lr": 0.1, "beta": 0.9}, "beta"),
    ({"name": "momentum", "lr": 0.1, "beta": 1.5}, "beta"),
    ({"name": "rmsprop", "lr": 0.1, "eps": -1e-8}, "eps"),
    ({"name": "gd", "lr": 0.1, "beta": 0.9}, "beta"),
]


@pytest.mark.parametrize("name", ["gd", "momentum", "rmsprop", "adam"])
def test_without_lr_an_optimizer_takes_its_default_lr(name: str) -> None:
    from tunery.nn.spec import DEFAULT_LR

    assert make_optimizer(name).lr == DEFAULT_LR[name] == OPTIMIZERS[name].default_lr


@pytest.mark.parametrize(("kwargs", "field"), BAD)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_optimizer(**kwargs)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: expected ")


def test_bad_step_inputs_raise_config_error() -> None:
    params = random_params(15)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(ConfigError, match=r"0\.b"):
        Adam(0.1).step(params, {k: v + 1.0 for k, v in grads.items() if k != "0.b"})
    assert all(np.array_equal(params[k], before[k]) for k in params)  # "0.W" was not touched
    with pytest.raises(ConfigError, match="shape"):
        Adam(0.1).step(params, {**grads, "0.W": np.zeros((5, 7))})
    with pytest.raises(ConfigError, match="contiguous"):
        Adam(0.1).step({"0.W": params["0.W"].T}, {"0.W": grads["0.W"].T})


# --- checkpoints ----------------------------------------------------------------------------------


def optimizers() -> Iterator[Optimizer]:
    yield GD(0.1)
    yield Momentum(0.1, beta=0.9)
    yield RMSprop(0.01, beta=0.9)
    yield Adam(0.01, beta1=0.9, beta2=0.99)


@pytest.mark.parametrize("optimizer", list(optimizers()), ids=lambda o: o.name)
def test_state_dict_round_trip_resumes_bit_for_bit(optimizer: Optimizer) -> None:
    params, grads = random_params(16, np.float32), gradient_stream(17, 10, np.float32)
    live = run(optimizer, params, grads[:5])
    state = optimizer.state_dict()
    saved = {k: v.copy() for k, v in state["arrays"].items()}
    halfway = {k: v.copy() for k, v in live.items()}
    for g in grads[5:]:
        optimizer.step(live, g)
    # The state holds copies: stepping on did not change it.
    assert all(np.array_equal(state["arrays"][k], saved[k]) for k in saved)
    resumed = make_optimizer(optimizer.name, lr=1.0)
    resumed.load_state_dict(state)
    assert resumed.hyperparameters() == optimizer.hyperparameters()
    for g in grads[5:]:
        resumed.step(halfway, g)
    assert all(np.array_equal(halfway[k], live[k]) for k in live)


def test_state_dict_is_json_friendly_metadata_plus_arrays() -> None:
    params, grads = random_params(18), gradient_stream(19, 3)
    optimizer = Adam(0.01)
    run(optimizer, params, grads)
    state = optimizer.state_dict()
    assert state["name"] == "adam"
    assert state["steps"] == dict.fromkeys(params, 3)
    assert set(state["arrays"]) == {f"{k}/{m}" for k in params for m in ("m", "v")}
    first = state["scales"]["0.W/m"] * state["arrays"]["0.W/m"].reshape(SHAPES["0.W"])
    expected = sum(0.1 * 0.9 ** (2 - t) * grads[t]["0.W"] for t in range(3))
    np.testing.assert_allclose(first, expected, rtol=1e-12)


def test_loading_another_optimizers_state_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        Adam(0.1).load_state_dict(Momentum(0.1).state_dict())
    assert error.value.field == "optimizer"
