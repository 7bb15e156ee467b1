"""The training recipe: optimizer, its hyperparameters, schedule, batches and engine, in one spec.

Every way into training builds from a ``TrainSpec``: a config's ``[model]``
(``ModelSection.train_spec()``), ``tunery train``'s options, the built-in objective and panda
(through the config); ``make_trainer(spec, model, X, y)`` builds the ``Trainer``. It owns the
two things that used to be written three times:

- the mapping from our names to each optimizer's keywords (``beta`` is momentum's and RMSprop's β
  and Adam's β1; ``epsilon`` is ``eps``), ``OPTIMIZER_FIELDS``;
- the default learning rate, one per optimizer (``DEFAULT_LR``): 0.01 for plain and momentum
  gradient descent, 0.001 for RMSprop and Adam. Adaptive methods divide by the gradients' RMS,
  so their steps are about lr in size whatever the gradient scale, and 0.001 is the value Adam's
  and RMSprop's authors and every framework use; plain SGD steps are lr·gradient, and 0.01 is
  the usual starting point for it (PyTorch's and Keras's SGD examples, the course's exercises).

A field left ``None`` takes its default: ``lr`` the optimizer's ``DEFAULT_LR``, ``beta``,
``beta2`` and ``epsilon`` the optimizer's own (0.9, 0.999, 1e-8). Errors name our fields (``lr``,
``beta``, ``epsilon``); a caller that knows where a value came from renames them
(``model.lr`` in a config, ``--lr`` on the command line) with ``renamed``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from numpy.typing import ArrayLike

from tunery._exceptions import ConfigError
from tunery._validation import Interval, check_int, check_scalar
from tunery.nn.engine import EngineFactory, NumpyEngine
from tunery.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from tunery.nn.schedules import Schedule, make_schedule
from tunery.nn.train import Callback, Trainer

__all__ = [
    "BACKENDS",
    "DEFAULT_LR",
    "OPTIMIZER_FIELDS",
    "Backend",
    "TrainSpec",
    "default_lr",
    "make_trainer",
    "renamed",
]

Backend = Literal["numpy", "torch"]
BACKENDS: tuple[Backend, ...] = ("numpy", "torch")

OPTIMIZER_FIELDS: Mapping[str, Mapping[str, str]] = {
    "gd": {"lr": "lr"},
    "momentum": {"lr": "lr", "beta": "beta"},
    "rmsprop": {"lr": "lr", "beta": "beta", "epsilon": "eps"},
    "adam": {"lr": "lr", "beta": "beta1", "beta2": "beta2", "epsilon": "eps"},
}
"""Our field → the optimizer's keyword, for the fields each optimizer uses."""

DEFAULT_LR: Mapping[str, float] = {name: kind.default_lr for name, kind in OPTIMIZERS.items()}
"""The learning rate an optimizer gets when none is given (see the module docstring); each
optimizer class carries its own, so ``make_optimizer`` and ``fit`` agree with the spec."""

_HYPERPARAMETERS = ("lr", "beta", "beta2", "epsilon")


def default_lr(optimizer: str) -> float:
    """``DEFAULT_LR`` of ``optimizer`` (ConfigError naming ``optimizer`` for an unknown one)."""
    return DEFAULT_LR[_check_optimizer(optimizer)]


@dataclass(frozen=True)
class TrainSpec:
    """How to train: what ``Trainer.from_spec`` needs besides the model and the data."""

    optimizer: str = "adam"
    lr: float | None = None
    beta: float | None = None
    beta2: float | None = None
    epsilon: float | None = None
    batch_size: int = 64
    l2: float = 0.0
    schedule: Schedule = field(default_factory=lambda: make_schedule("none"))
    seed: int = 0
    backend: Backend = "numpy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "optimizer", _check_optimizer(self.optimizer))
        check_int("batch_size", self.batch_size, 1)
        check_scalar("l2", self.l2, Interval(float, 0))
        check_int("seed", self.seed, 0)
        if self.backend not in BACKENDS:
            raise ConfigError("backend", self.backend, " or ".join(map(repr, BACKENDS)))
        if not isinstance(self.schedule, Schedule):
            raise ConfigError("schedule", self.schedule, "a tunery.nn.schedules.Schedule")
        self.make_optimizer()  # the optimizer's own rules, checked now and named by our fields

    @classmethod
    def of(cls, settings: object, **overrides: Any) -> TrainSpec:
        """The spec from the attributes of ``settings`` that share a field's name, then
        ``overrides``: for sections and option sets that mirror these fields."""
        names = [f.name for f in fields(cls) if hasattr(settings, f.name)]
        return cls(**{name: getattr(settings, name) for name in names} | overrides)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default when it was not given."""
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def used_fields(self) -> tuple[str, ...]:
        """Our hyperparameter fields this optimizer uses (``lr`` always)."""
        return tuple(OPTIMIZER_FIELDS[self.optimizer])

    def ignored_fields(self) -> tuple[str, ...]:
        """Fields given a value that this optimizer has no use for (``beta`` with ``gd``)."""
        used = OPTIMIZER_FIELDS[self.optimizer]
        return tuple(f for f in _HYPERPARAMETERS if getattr(self, f) is not None and f not in used)

    def hyperparameters(self) -> dict[str, float]:
        """``make_optimizer``'s keywords: the given fields it uses, and the resolved ``lr``."""
        keywords = {"lr": self.learning_rate}
        for ours, keyword in OPTIMIZER_FIELDS[self.optimizer].items():
            value = getattr(self, ours)
            if ours != "lr" and value is not None:
                keywords[keyword] = float(value)
        return keywords

    def make_optimizer(self) -> Optimizer:
        """A fresh optimizer with these settings; a bad value's error names our field."""
        try:
            return make_optimizer(self.optimizer, **self.hyperparameters())
        except ConfigError as error:
            raise ConfigError(self.our_field(error.field), error.value, error.expected) from None

    def our_field(self, keyword: str) -> str:
        """Our name of an optimizer keyword (``beta1`` → ``beta``, ``eps`` → ``epsilon``)."""
        ours = {kw: name for name, kw in OPTIMIZER_FIELDS[self.optimizer].items()}
        return ours.get(keyword, keyword)

    def engine(self) -> EngineFactory:
        """The engine of ``backend``: NumPy, or PyTorch (an optional extra, imported here)."""
        if self.backend == "numpy":
            return NumpyEngine
        # Only a missing torch is the user's to fix; any other import error is ours and says so.
        if importlib.util.find_spec("torch") is None:
            expected = "'numpy' (PyTorch is not installed: pip install 'tunery[torch]')"
            raise ConfigError("backend", "torch", expected)
        from tunery.nn.torch import torch_engine

        return torch_engine()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings, ``lr`` resolved (what a run folder or a panda branch records)."""
        return {
            "optimizer": self.optimizer,
            **{name: getattr(self, name) for name in self.used_fields()},
            "lr": self.learning_rate,
            "batch_size": self.batch_size,
            "l2": self.l2,
            "schedule": self.schedule.to_dict(),
            "seed": self.seed,
            "backend": self.backend,
        }


def renamed(error: ConfigError, prefix: str) -> ConfigError:
    """``error`` with its field under ``prefix``: ``renamed(e, "model.")``, ``renamed(e, "--")``."""
    return ConfigError(f"{prefix}{error.field}", error.value, error.expected)


def _check_optimizer(name: Any) -> str:
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in OPTIMIZERS:
        raise ConfigError("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
    return key


def make_trainer(
    spec: TrainSpec,
    model: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    callback: Callback | None = None,
    raise_on_divergence: bool = False,
    engine: EngineFactory | None = None,
) -> Trainer:
    """A ``Trainer`` for ``model`` built from ``spec``: its optimizer, schedule, batches, engine.

    ``engine`` overrides the spec's backend (a ``torch_engine(device)`` on a GPU, say).
    """
    return Trainer(
        model,
        spec.make_optimizer(),
        X,
        y,
        X_val=X_val,
        y_val=y_val,
        batch_size=spec.batch_size,
        l2=spec.l2,
        schedule=spec.schedule,
        seed=spec.seed,
        callback=callback,
        raise_on_divergence=raise_on_divergence,
        engine=spec.engine() if engine is None else engine,
    )
