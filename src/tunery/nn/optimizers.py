"""Update rules in the course's form: gradient descent, momentum, RMSprop and Adam.

Each optimizer updates the live parameter arrays in place: ``opt.step(params, grads)`` with
``params`` and ``grads`` dicts of arrays under the same keys (weights, batch-norm γ and β alike).
Hyperparameters are plain attributes (``opt.lr``, ``opt.beta``, ``opt.beta1``...) that may change
between steps; ``opt.set(**hp)`` changes them with validation.

With ``g`` the gradient of a parameter ``W`` at step ``t`` (starting at 1), and all averages
starting at zero:

- ``GD``:       ``W -= lr·g``
- ``Momentum``: ``v = β·v + (1 − β)·g``;   ``W -= lr·v``
- ``RMSprop``:  ``s = β·s + (1 − β)·g²``;  ``W -= lr·g / (√s + ε)``
- ``Adam``:     ``m = β1·m + (1 − β1)·g``;  ``v = β2·v + (1 − β2)·g²``;
  ``W -= lr·m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 − β1ᵗ)`` and ``v̂ = v / (1 − β2ᵗ)``.

How they map onto ``torch.optim`` (the tests check each for ten steps):

- ``Momentum(lr, β)`` is ``torch.optim.SGD(lr=lr·(1 − β), momentum=β)``. Torch keeps
  ``b = β·b + g`` (``b₀ = 0``, which is also what its first step ``b₁ = g`` gives). By induction
  ``bₜ = vₜ / (1 − β)``: ``vₜ / (1 − β) = β·vₜ₋₁ / (1 − β) + gₜ``. So torch's step
  ``lr'·bₜ`` equals ``lr·vₜ`` exactly when ``lr' = lr·(1 − β)``.
- ``RMSprop(lr, β, ε)`` is ``torch.optim.RMSprop(lr, alpha=β, eps=ε)``.
- ``Adam(lr, β1, β2, ε)`` is ``torch.optim.Adam(lr, betas=(β1, β2), eps=ε)``.

Speed. A step is a handful of passes over each parameter's memory, and on a 12288×25 weight matrix
those passes are the whole cost. So state buffers are allocated once, every update is in place
(``out=`` and BLAS ``axpy``, which does ``y += a·x`` in one pass), scalars stay Python floats (NumPy
keeps the array's float32), and a moving average is stored as ``scale · data``: decaying it by β
changes only the scalar ``scale``, so updating an average is a single ``axpy`` instead of a scale
pass plus an add pass. Bias corrections and scales fold into the scalars of the last ``axpy``.
Last, an update runs chunk by chunk (``_CHUNK_BYTES`` of each array at a time): its five to seven
passes then read data still in the L2 cache, and main memory sees each array about once per step,
as with a fused kernel. Every operation is elementwise, so chunking changes no bit of the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.linalg import blas

from tunery._exceptions import ConfigError
from tunery.nn._base import Array

__all__ = ["GD", "OPTIMIZERS", "Adam", "Momentum", "Optimizer", "RMSprop", "make_optimizer"]

# An average kept as ``scale · data`` folds its scale into ``data`` before the scale gets this
# small, so that ``data`` (about ``average / scale``) stays far from float32's overflow.
_MIN_SCALE = 1e-12
# Bytes of each array that one chunk of an update covers: the five arrays an Adam chunk touches
# (parameter, gradient, two averages, scratch) then take 640 KiB, within a 1-2 MiB L2 cache.
# Measured on a 12288×256 float32 weight, one thread: an Adam step takes 9.5 ms in whole-array
# passes, 3.8 ms by 128 KiB chunks (64 KiB: 4.3 ms; 256 KiB: 3.7 ms; torch's fused Adam: 2.8 ms).
_CHUNK_BYTES = 128 * 1024


@dataclass(frozen=True)
class _Rule:
    """A constraint on one hyperparameter, declared as data (scikit-learn style)."""

    check: Callable[[float], bool]
    expected: str


_POSITIVE = _Rule(lambda x: x > 0, "a finite number > 0")
_DECAY = _Rule(lambda x: 0 <= x < 1, "a number in [0, 1)")


def _validated(name: str, value: object, rule: _Rule) -> float:
    is_real = isinstance(value, int | float | np.floating | np.integer) and not isinstance(
        value, bool
    )
    if not is_real or not math.isfinite(float(value)) or not rule.check(float(value)):  # type: ignore[arg-type]
        raise ConfigError(name, value, rule.expected)
    return float(value)  # type: ignore[arg-type]


_AXPY: Mapping[np.dtype[Any], Callable[..., Array]] = {
    np.dtype(np.float32): blas.saxpy,
    np.dtype(np.float64): blas.daxpy,
}


def _axpy(x: Array, y: Array, a: float) -> None:
    """``y += a·x`` in one pass, in place. ``x, y: (n,)`` contiguous, of the same dtype.

    (A ``y`` of another dtype would be silently copied by the BLAS wrapper and the update lost;
    ``Optimizer.step`` checks dtypes and contiguity before it gets here.)
    """
    _AXPY[y.dtype](x, y, a=a)


def _step_by_root(
    buffer: Array, param: Array, top: Array, under: Array, shift: float, c: float
) -> None:
    """``param += c·top / (√under + shift)``, through ``buffer``: RMSprop's and Adam's last four
    passes."""
    np.sqrt(under, out=buffer)
    np.add(buffer, shift, out=buffer)
    np.divide(top, buffer, out=buffer)
    _axpy(buffer, param, c)


def _chunks(scratch: Array, *arrays: Array) -> Iterator[tuple[Array, ...]]:
    """``(scratch[:k], a[i:i + k], b[i:i + k], ...)`` over consecutive chunks of the flat arrays
    ``a, b, ...: (n,)``; ``scratch`` needs only ``min(n, chunk)`` entries."""
    size = arrays[0].size
    step = max(1, _CHUNK_BYTES // arrays[0].itemsize)
    if size <= step:  # the usual case for biases and batch-norm parameters: no slicing
        yield (scratch[:size], *arrays)
        return
    for start in range(0, size, step):
        stop = min(start + step, size)
        yield (scratch[: stop - start], *(array[start:stop] for array in arrays))


_EMPTY = np.empty(0)


class _Average:
    """An exponential moving average ``β·avg + (1 − β)·x``, stored as ``scale · data``.

    ``data: (n,)`` in the parameter's dtype. Decaying by β multiplies ``scale`` only, so one update
    is one ``axpy`` over ``data``.
    """

    def __init__(self, data: Array, scale: float = 1.0) -> None:
        self.data = data
        self.scale = scale

    def decay(self, beta: float) -> float:
        """Decay the average by β (the scale only, as a rule) and return the coefficient ``a``
        with which ``data += a·x`` then adds ``(1 − β)·x``; the caller does that axpy, chunk by
        chunk."""
        scale = self.scale * beta
        if scale < _MIN_SCALE:  # also β = 0: fold the decay into the data, restart the scale at 1
            np.multiply(self.data, scale, out=self.data)
            scale = 1.0
        self.scale = scale
        return (1.0 - beta) / scale


@dataclass
class _Slot:
    """What an optimizer keeps for one parameter: its step count and its moving averages.

    It also remembers the (param, grad) arrays of the last step with their flat views and a scratch
    view: a model hands over the same live arrays every step, so the checks and reshapes run once.
    """

    steps: int = 0
    averages: dict[str, _Average] = field(default_factory=dict)
    arrays: tuple[Array, Array] | None = None
    flat: tuple[Array, Array, Array] = (_EMPTY, _EMPTY, _EMPTY)


class Optimizer:
    """Base class: validated mutable hyperparameters, per-parameter state, checkpoints.

    Subclasses declare ``name``, their hyperparameters' rules in ``_rules``, the moving averages
    they keep in ``_averages``, and the update of one parameter in ``_update``.
    """

    name: ClassVar[str]
    default_lr: ClassVar[float]
    """The rate ``make_optimizer`` gives when none is asked for (``tunery.nn.spec`` says why)."""
    _rules: ClassVar[Mapping[str, _Rule]]
    _averages: ClassVar[tuple[str, ...]] = ()
    lr: float

    def __init__(self, **hyperparameters: float) -> None:
        self.set(**hyperparameters)
        self._slots: dict[str, _Slot] = {}
        self._scratch: dict[np.dtype[Any], Array] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    # hyperparameters ----------------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, float]:
        """The current hyperparameters, e.g. ``{"lr": 0.001, "beta1": 0.9, ...}``."""
        return {key: getattr(self, key) for key in self._rules}

    def set(self, **hyperparameters: float) -> None:
        """Change hyperparameters, all or none (a bad value raises ``ConfigError``)."""
        checked = {}
        for key, value in hyperparameters.items():
            rule = self._rules.get(key)
            if rule is None:
                raise ConfigError(key, value, self._known())
            checked[key] = _validated(key, value, rule)
        for key, value in checked.items():
            setattr(self, key, value)

    @classmethod
    def _known(cls) -> str:
        return f"a hyperparameter of {cls.name} ({', '.join(cls._rules)})"

    # stepping -----------------------------------------------------------------------------------

    def step(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        """Update every array of ``params`` in place from ``grads`` (same keys, same shapes).

        Every pair is checked before any array changes, so a bad input leaves all of them as
        they were.
        """
        slots = [self._slot(key, param, grads.get(key)) for key, param in params.items()]
        for slot in slots:
            slot.steps += 1
            self._update(*slot.flat, slot)

    def _slot(self, key: str, param: Array, grad: Array | None) -> _Slot:
        """The slot of ``key``, created on its first step, ready for ``(param, grad)``."""
        slot = self._slots.get(key)
        if slot is None:
            averages = {
                name: _Average(np.zeros(param.size, param.dtype)) for name in self._averages
            }
            slot = _Slot(averages=averages)
        arrays = slot.arrays
        if arrays is None or arrays[0] is not param or arrays[1] is not grad:
            self._prepare(key, param, grad, slot)
        self._slots[key] = slot
        return slot

    def _update(self, param: Array, grad: Array, scratch: Array, slot: _Slot) -> None:
        """Update ``param: (n,)`` in place from ``grad: (n,)``; ``slot.steps`` counts this step.

        ``scratch: (min(n, chunk),)`` is free for temporary values, a chunk at a time.
        """
        raise NotImplementedError

    def _prepare(self, key: str, param: Array, grad: Array | None, slot: _Slot) -> None:
        """Check a (param, grad) pair and keep its flat views on the slot."""
        if grad is None:
            raise ConfigError(f"grads[{key!r}]", None, "a gradient for every parameter")
        if grad.shape != param.shape:
            raise ConfigError(f"grads[{key!r}]", grad.shape, f"shape {param.shape}")
        if not param.flags.c_contiguous or param.dtype not in (np.float32, np.float64):
            raise ConfigError(f"params[{key!r}]", param.dtype, "a C-contiguous float32/64 array")
        if any(a.data.shape != (param.size,) for a in slot.averages.values()):
            raise ConfigError(f"params[{key!r}]", param.shape, "the shape it had at earlier steps")
        contiguous = np.ascontiguousarray(grad, dtype=param.dtype)
        slot.flat = (param.reshape(-1), contiguous.reshape(-1), self._scratch_like(param))
        # Remember the pair only if the gradient is used as is (a converted copy is new each step).
        slot.arrays = (param, grad) if contiguous is grad else None

    def _scratch_like(self, array: Array) -> Array:
        """A reusable buffer for one chunk of ``array``: ``(min(n, chunk),)`` of its dtype (one
        per dtype, grown to the largest)."""
        size = min(array.size, max(1, _CHUNK_BYTES // array.itemsize))
        buffer = self._scratch.get(array.dtype)
        if buffer is None or buffer.size < size:
            buffer = self._scratch[array.dtype] = np.empty(size, dtype=array.dtype)
        return buffer[:size]

    # checkpoints --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit for bit, as JSON-friendly metadata plus arrays.

        ``{"name", "hyperparameters", "steps": {key: int}, "scales": {"key/avg": float},
        "arrays": {"key/avg": (n,) copy}}``. The arrays are the stored ``data`` of each average
        (the average itself is ``scale · data``).
        """
        steps = {key: slot.steps for key, slot in self._slots.items()}
        scales, arrays = {}, {}
        for key, slot in self._slots.items():
            for name, average in slot.averages.items():
                scales[f"{key}/{name}"] = average.scale
                arrays[f"{key}/{name}"] = average.data.copy()
        return {
            "name": self.name,
            "hyperparameters": self.hyperparameters(),
            "steps": steps,
            "scales": scales,
            "arrays": arrays,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict()`` returned (hyperparameters included)."""
        if state.get("name") != self.name:
            raise ConfigError("optimizer", state.get("name"), f"a state saved by {self.name}")
        try:
            hyperparameters = state["hyperparameters"]
            slots = {
                key: self._loaded_slot(key, int(steps), state)
                for key, steps in state["steps"].items()
            }
        except KeyError as error:
            raise ConfigError(
                "optimizer state", f"no {error}", "what state_dict() returns"
            ) from error
        self.set(**hyperparameters)
        self._slots = slots

    def _loaded_slot(self, key: str, steps: int, state: Mapping[str, Any]) -> _Slot:
        averages = {}
        for name in self._averages:
            data = np.array(state["arrays"][f"{key}/{name}"]).reshape(-1)  # a copy of its own
            averages[name] = _Average(data, float(state["scales"][f"{key}/{name}"]))
        return _Slot(steps=steps, averages=averages)


class GD(Optimizer):
    """Plain (mini-batch) gradient descent: ``W -= lr·g``."""

    name = "gd"
    default_lr = 0.01
    _rules: ClassVar[Mapping[str, _Rule]] = {"lr": _POSITIVE}

    def __init__(self, lr: float) -> None:
        super().__init__(lr=lr)

    def _update(self, param: Array, grad: Array, scratch: Array, slot: _Slot) -> None:
        _axpy(grad, param, -self.lr)


class Momentum(Optimizer):
    """Momentum, the course's form: ``v = β·v + (1 − β)·g``; ``W -= lr·v``."""

    name = "momentum"
    default_lr = 0.01
    _rules: ClassVar[Mapping[str, _Rule]] = {"lr": _POSITIVE, "beta": _DECAY}
    _averages = ("v",)
    beta: float

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        super().__init__(lr=lr, beta=beta)

    def _update(self, param: Array, grad: Array, scratch: Array, slot: _Slot) -> None:
        velocity = slot.averages["v"]
        a = velocity.decay(self.beta)
        c = -self.lr * velocity.scale
        for _, p, g, v in _chunks(scratch, param, grad, velocity.data):
            _axpy(g, v, a)
            _axpy(v, p, c)


class RMSprop(Optimizer):
    """RMSprop: ``s = β·s + (1 − β)·g²``; ``W -= lr·g / (√s + ε)``."""

    name = "rmsprop"
    default_lr = 0.001
    _rules: ClassVar[Mapping[str, _Rule]] = {"lr": _POSITIVE, "beta": _DECAY, "eps": _POSITIVE}
    _averages = ("s",)
    beta: float
    eps: float

    def __init__(self, lr: float, beta: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__(lr=lr, beta=beta, eps=eps)

    def _update(self, param: Array, grad: Array, scratch: Array, slot: _Slot) -> None:
        square = slot.averages["s"]
        a = square.decay(self.beta)
        # g / (√(scale·data) + ε) = (1/root)·g / (√data + ε/root), root = √scale
        root = math.sqrt(square.scale)
        shift, c = self.eps / root, -self.lr / root
        for buffer, p, g, s in _chunks(scratch, param, grad, square.data):
            np.square(g, out=buffer)
            _axpy(buffer, s, a)
            _step_by_root(buffer, p, g, s, shift, c)


class Adam(Optimizer):
    """Adam with bias correction: ``W -= lr·m̂ / (√v̂ + ε)``."""

    name = "adam"
    default_lr = 0.001
    _rules: ClassVar[Mapping[str, _Rule]] = {
        "lr": _POSITIVE,
        "beta1": _DECAY,
        "beta2": _DECAY,
        "eps": _POSITIVE,
    }
    _averages = ("m", "v")
    beta1: float
    beta2: float
    eps: float

    def __init__(
        self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    def _update(self, param: Array, grad: Array, scratch: Array, slot: _Slot) -> None:
        first, second = slot.averages["m"], slot.averages["v"]
        a1, a2 = first.decay(self.beta1), second.decay(self.beta2)
        # m̂/(√v̂ + ε) with m̂ = (a/c1)·m_data and √v̂ = root·√v_data, root = √(b/c2):
        #   = (a/c1/root)·m_data / (√v_data + ε/root)   — one pass each for √, +, ÷ and the axpy.
        correction1 = 1.0 - self.beta1**slot.steps
        correction2 = 1.0 - self.beta2**slot.steps
        root = math.sqrt(second.scale / correction2)
        shift, c = self.eps / root, -self.lr * first.scale / correction1 / root
        for buffer, p, g, m, v in _chunks(scratch, param, grad, first.data, second.data):
            _axpy(g, m, a1)
            np.square(g, out=buffer)
            _axpy(buffer, v, a2)
            _step_by_root(buffer, p, m, v, shift, c)


OPTIMIZERS: Mapping[str, type[Optimizer]] = {cls.name: cls for cls in (GD, Momentum, RMSprop, Adam)}


def make_optimizer(name: str, **hyperparameters: float) -> Optimizer:
    """The optimizer called ``name`` ("gd", "momentum", "rmsprop", "adam"), with validated values.

    ``lr`` defaults to the class's ``default_lr``, the other hyperparameters to its defaults.
    """
    cls = OPTIMIZERS.get(name.strip().lower()) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
    for key, value in hyperparameters.items():
        if key not in cls._rules:
            raise ConfigError(
                key, value, f"a hyperparameter of {cls.name} ({', '.join(cls._rules)})"
            )
    return cls(**{"lr": cls.default_lr, **hyperparameters})
