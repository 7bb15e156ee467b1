"""The training loop: seeded mini-batches, L2, learning-rate decay, divergence, checkpoints.

``Trainer`` runs one epoch at a time, so a tuner (or a person babysitting one model) can look at
the numbers after each epoch, change hyperparameters, stop, save or roll back. ``fit`` wraps it.
The trainer keeps the books; an engine (``tunery.nn.engine``: NumPy, or PyTorch in
``tunery.nn.torch``) does the arithmetic of each step, so every engine gets this same loop.

Per epoch, with ``m`` the size of a mini-batch:

- the examples are shuffled by a permutation drawn from the trainer's own generator
  (``np.random.default_rng(seed)``) and gathered batch by batch (the dataset is never copied);
- the last, partial batch is kept, but with batch norm in the model a trailing batch of one example
  joins the batch before it (one example has no batch variance; torch refuses it too);
- the batch cost is ``mean cross-entropy + l2/(2m)·Σ‖W‖²`` over the Dense weights, and the
  gradient of each weight gets ``(l2/m)·W``;
- the epoch's ``cost`` is the plain mean of its batch costs (the running figure the course
  prints, not a second pass over the data);
- ``train_accuracy`` (and ``val_accuracy``) come from one eval-mode forward pass over the whole
  training (validation) set at the end of the epoch;
- the learning rate is ``schedule(base_lr, epoch)``, with ``epoch`` the number of epochs already
  finished (0 for the first);
- a NaN or inf batch cost ends the epoch and the run: the outcome is ``"diverged"``.

The callback gets each epoch's ``EpochMetrics`` once; it stops the run by returning ``True`` or by
raising ``StopTraining``. Any other exception it raises (``tunery.Pruned``...) propagates.

Checkpoints hold everything a run depends on: weights, batch-norm running statistics, the
optimizer's state and hyperparameters, the base learning rate, ``l2`` and ``batch_size``, every
random generator's state (shuffling and dropout), the epoch and the history. Resuming from one
reproduces the uninterrupted run bit for bit. The format is an ``.npz`` archive (read with
``allow_pickle=False``) whose ``meta`` entry is JSON.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike

from tunery._exceptions import ConfigError, Diverged, StorageError
from tunery._files import write_atomic
from tunery.nn._base import Array, check_positive_int
from tunery.nn.batchnorm import BatchNorm
from tunery.nn.engine import Engine, EngineFactory, NumpyEngine, TrainableModel
from tunery.nn.optimizers import Optimizer, make_optimizer
from tunery.nn.schedules import Schedule, make_schedule

__all__ = [
    "CHECKPOINT_FORMAT",
    "EpochMetrics",
    "History",
    "Outcome",
    "StopTraining",
    "TrainableModel",
    "Trainer",
    "fit",
]

CHECKPOINT_FORMAT = 1
_META_KEYS = {"epoch", "base_lr", "l2", "batch_size", "history", "rng", "optimizer"}
Outcome = Literal["complete", "diverged", "stopped"]
Callback = Callable[["EpochMetrics"], bool | None]
LearningRateSchedule = Callable[[float, int], float]


class StopTraining(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a callback to end ``Trainer.run`` after the current epoch (outcome "stopped")."""


@dataclass(frozen=True)
class EpochMetrics:
    """The figures of one finished epoch. ``epoch`` counts from 1; ``lr`` is the rate it used."""

    epoch: int
    cost: float
    train_accuracy: float
    val_accuracy: float | None
    lr: float

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.cost)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    """Per-epoch lists (index ``i`` is epoch ``i + 1``) and how the run ended."""

    cost: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    outcome: Outcome = "complete"

    def append(self, metrics: EpochMetrics) -> None:
        self.cost.append(metrics.cost)
        self.train_accuracy.append(metrics.train_accuracy)
        self.val_accuracy.append(metrics.val_accuracy)
        self.lr.append(metrics.lr)

    def __len__(self) -> int:
        return len(self.cost)

    def __getitem__(self, index: int) -> EpochMetrics:
        """The metrics of epoch ``index + 1`` (negative indices count from the end)."""
        epoch = range(1, len(self) + 1)[index]
        i = epoch - 1
        return EpochMetrics(
            epoch, self.cost[i], self.train_accuracy[i], self.val_accuracy[i], self.lr[i]
        )

    def __iter__(self) -> Iterator[EpochMetrics]:
        return (self[i] for i in range(len(self)))

    def to_dict(self) -> dict[str, Any]:
        """``{"epoch": [1, 2, ...], "cost": [...], "train_accuracy": [...], "val_accuracy": [...],
        "lr": [...], "outcome": "complete"}`` (plain Python numbers; NaN stays NaN)."""
        return {"epoch": list(range(1, len(self) + 1)), **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        outcome = data.get("outcome", "complete")
        if outcome not in ("complete", "diverged", "stopped"):
            raise ConfigError("outcome", outcome, "'complete', 'diverged' or 'stopped'")
        return cls(
            cost=[float(x) for x in data["cost"]],
            train_accuracy=[float(x) for x in data["train_accuracy"]],
            val_accuracy=[None if x is None else float(x) for x in data["val_accuracy"]],
            lr=[float(x) for x in data["lr"]],
            outcome=outcome,
        )


class Trainer:
    """Trains ``model`` with ``optimizer`` on ``X: (N, D)``, ``y: (N,)`` one epoch at a time.

    The trainer keeps the books (epochs, seeded batches, history, callback, divergence, schedule,
    hyperparameter changes, checkpoints); ``engine`` does the arithmetic: ``NumpyEngine`` unless
    another factory is given (``tunery.nn.torch.TorchEngine`` trains the same network in PyTorch).

    ``X`` is cast once to the model's dtype (no copy if it already has it). ``schedule`` is a
    ``Schedule``, a schedule name, ``None`` (constant rate) or any ``(lr0, epoch) -> lr``
    callable; its ``lr0`` is the optimizer's ``lr`` at construction, changed later with
    ``set_hyperparameters(lr=...)``. With ``raise_on_divergence`` a diverged run raises
    ``tunery.Diverged`` (after recording the epoch) instead of returning.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Optimizer,
        X: ArrayLike,
        y: ArrayLike,
        *,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
        batch_size: int = 64,
        l2: float = 0.0,
        schedule: Schedule | LearningRateSchedule | str | None = None,
        seed: int = 0,
        callback: Callback | None = None,
        raise_on_divergence: bool = False,
        engine: EngineFactory = NumpyEngine,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ConfigError("optimizer", optimizer, "a tunery.nn.optimizers.Optimizer")
        if callback is not None and not callable(callback):
            raise ConfigError("callback", callback, "a callable taking EpochMetrics, or None")
        self.engine: Engine = engine(model, optimizer)  # the engine checks the model first
        self.X, self.y = _checked_data("X", "y", X, y, model)
        self.X_val, self.y_val = _checked_validation(X_val, y_val, model)
        self._batchnorm = any(isinstance(layer, BatchNorm) for layer in model.layers)
        self.batch_size = self._checked_batch_size(batch_size)
        self.l2 = _checked_l2(l2)
        self.schedule = _checked_schedule(schedule)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError("seed", seed, "an integer >= 0")
        self.seed = int(seed)
        self.callback = callback
        self.raise_on_divergence = bool(raise_on_divergence)
        self.base_lr = optimizer.lr
        self.epoch = 0
        self.history = History()
        self._rng = np.random.default_rng(self.seed)
        if self._batchnorm and len(self.X) < 2:
            raise ConfigError("X", f"{len(self.X)} example", "at least 2 examples with batch norm")
        self.engine.load_data(self.X, self.y)

    @property
    def model(self) -> Any:
        """The trained model (the engine's; with the torch engine, the NumPy ``MLP``)."""
        return self.engine.model

    @property
    def optimizer(self) -> Optimizer:
        return self.engine.optimizer

    @property
    def outcome(self) -> Outcome:
        return self.history.outcome

    # training -----------------------------------------------------------------------------------

    def run(self, epochs: int) -> History:
        """Run up to ``epochs`` more epochs; stop early on divergence or when the callback asks.

        Returns the whole history (also ``self.history``). A diverged trainer runs no more epochs.
        """
        epochs = check_positive_int("epochs", epochs)
        if self.outcome == "diverged":
            return self.history
        self.history.outcome = "complete"
        for _ in range(epochs):
            self.run_epoch()
            if self.outcome != "complete":
                break
        return self.history

    def run_epoch(self) -> EpochMetrics:
        """Train one epoch over shuffled mini-batches; record and return its metrics."""
        lr = self.schedule(self.base_lr, self.epoch)
        self.engine.set_hyperparameters(lr=lr)
        # A diverging run overflows on its way to inf/NaN: that is reported as the outcome
        # "diverged", not as floating-point warnings.
        with np.errstate(all="ignore"):
            cost = self._train_epoch()
            self.epoch += 1
            metrics = self._measure(cost, lr)
        self.history.append(metrics)
        if metrics.diverged:
            self.history.outcome = "diverged"
        self.run_callback(metrics)
        if metrics.diverged and self.raise_on_divergence:
            raise Diverged(metrics.epoch, metrics.cost)
        return metrics

    def _train_epoch(self) -> float:
        """Train on every mini-batch (until a cost is not finite); the mean batch cost."""
        self.engine.start_epoch()
        costs = []
        for batch in self.draw_batches():
            cost = self.engine.train_batch(batch, self.l2)
            costs.append(cost)
            if not math.isfinite(cost):
                break
        self.engine.end_epoch()
        return float(np.mean(costs))

    def _checked_batch_size(self, value: object) -> int:
        size = check_positive_int("batch_size", value)
        if self._batchnorm and size < 2:
            # Batch norm's statistics need two examples; PyTorch refuses a batch of one too.
            raise ConfigError("batch_size", value, "an integer >= 2 with batch norm")
        return size

    def draw_batches(self) -> Iterator[Array]:
        """Index arrays of the next epoch's mini-batches, drawn from the trainer's shuffle RNG (a
        trailing batch of one joins the one before it when the model has batch norm)."""
        order = self._rng.permutation(len(self.X))
        starts = list(range(0, len(order), self.batch_size))
        if self._batchnorm and len(starts) > 1 and len(order) - starts[-1] == 1:
            starts.pop()
        ends = [*starts[1:], len(order)]
        for start, end in zip(starts, ends, strict=True):
            yield order[start:end]

    def _measure(self, cost: float, lr: float) -> EpochMetrics:
        if not math.isfinite(cost):
            val = None if self.X_val is None else math.nan
            return EpochMetrics(self.epoch, cost, math.nan, val, lr)
        train = self.engine.accuracy(self.X, self.y)
        val = None
        if self.X_val is not None and self.y_val is not None:
            val = self.engine.accuracy(self.X_val, self.y_val)
        return EpochMetrics(self.epoch, cost, train, val, lr)

    def run_callback(self, metrics: EpochMetrics) -> None:
        """Give ``metrics`` to the callback; a true return or ``StopTraining`` marks the run
        stopped."""
        if self.callback is None:
            return
        try:
            stop = self.callback(metrics)
        except StopTraining:
            stop = True
        if stop and self.outcome == "complete":
            self.history.outcome = "stopped"

    # hyperparameters ----------------------------------------------------------------------------

    def set_hyperparameters(self, **hyperparameters: float) -> None:
        """Change hyperparameters for the next epochs (validated; all or nothing).

        ``lr`` sets the base rate that the schedule decays; ``l2`` and ``batch_size`` are the
        trainer's; anything else goes to the optimizer (``beta``, ``beta1``, ``beta2``, ``eps``).
        """
        settings = dict(hyperparameters)
        l2 = _checked_l2(settings.pop("l2", self.l2))
        batch_size = self._checked_batch_size(settings.pop("batch_size", self.batch_size))
        self.engine.set_hyperparameters(**settings)  # validates all of them before any changes
        if "lr" in settings:
            self.base_lr = self.optimizer.lr
            # What the next epoch will use, so that optimizer.lr reads right in between.
            self.engine.set_hyperparameters(lr=self.schedule(self.base_lr, self.epoch))
        self.l2, self.batch_size = l2, batch_size

    def hyperparameters(self) -> dict[str, float]:
        """The base ``lr``, the optimizer's other hyperparameters, ``l2`` and ``batch_size``."""
        values = {**self.engine.hyperparameters(), "lr": self.base_lr}
        return {**values, "l2": self.l2, "batch_size": self.batch_size}

    # checkpoints --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything that the rest of the run depends on (copies, not live arrays)."""
        return {
            "epoch": self.epoch,
            "base_lr": self.base_lr,
            "l2": self.l2,
            "batch_size": self.batch_size,
            "history": self.history.to_dict(),
            "rng": self._rng_states(),
            **self.engine.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put the trainer, its model and its optimizer back in the state ``state_dict()`` saw."""
        self.engine.load_state_dict(state)
        self._set_rng_states(state["rng"])
        self.epoch = int(state["epoch"])
        self.base_lr = float(state["base_lr"])
        self.l2 = _checked_l2(state["l2"])
        self.batch_size = check_positive_int("batch_size", state["batch_size"])
        self.history = History.from_dict(state["history"])

    def to_bytes(self) -> bytes:
        """The checkpoint as the bytes of an ``.npz`` archive (arrays + a JSON ``meta`` entry)."""
        state = self.state_dict()
        arrays = {
            **{f"parameters/{k}": v for k, v in state.pop("parameters").items()},
            **{f"buffers/{k}": v for k, v in state.pop("buffers").items()},
        }
        optimizer = state.pop("optimizer")
        arrays.update({f"optimizer/{k}": v for k, v in optimizer.pop("arrays").items()})
        meta = {"format": CHECKPOINT_FORMAT, **state, "optimizer": optimizer}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta, default=_plain)), **arrays)
        return buffer.getvalue()

    def restore(self, source: bytes | str | os.PathLike[str]) -> None:
        """Load a checkpoint (bytes from ``to_bytes`` or a file from ``save``) into this trainer."""
        data = source if isinstance(source, bytes) else _read(Path(source))
        self.load_state_dict(_state_from_bytes(data))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint to ``path`` atomically and durably (``tunery._files``)."""
        target = Path(path)
        try:
            write_atomic(target, self.to_bytes())
        except OSError as error:
            raise StorageError(f"cannot write the checkpoint {target}: {error}") from error
        return target

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        model: TrainableModel,
        optimizer: Optimizer,
        X: ArrayLike,
        y: ArrayLike,
        **options: Any,
    ) -> Self:
        """``Trainer(model, optimizer, X, y, **options)``, then ``restore(data)``."""
        trainer = cls(model, optimizer, X, y, **options)
        trainer.restore(data)
        return trainer

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: TrainableModel,
        optimizer: Optimizer,
        X: ArrayLike,
        y: ArrayLike,
        **options: Any,
    ) -> Self:
        """A trainer built with these arguments, then restored from the checkpoint file ``path``."""
        return cls.from_bytes(_read(Path(path)), model, optimizer, X, y, **options)

    def _generators(self) -> dict[str, np.random.Generator]:
        """Every random generator a run draws from: shuffling, the model's, each layer's."""
        return {"shuffle": self._rng, **self.engine.generators()}

    def _rng_states(self) -> dict[str, Any]:
        return {name: rng.bit_generator.state for name, rng in self._generators().items()}

    def _set_rng_states(self, states: Mapping[str, Any]) -> None:
        generators = self._generators()
        if set(states) != set(generators):
            raise ConfigError("checkpoint", sorted(states), f"generators {sorted(generators)}")
        for name, rng in generators.items():
            rng.bit_generator.state = states[name]


def fit(
    model: TrainableModel,
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    optimizer: str | Optimizer = "adam",
    lr: float | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    l2: float = 0.0,
    schedule: Schedule | LearningRateSchedule | str | None = None,
    seed: int = 0,
    callback: Callback | None = None,
    engine: EngineFactory = NumpyEngine,
    **optimizer_hp: float,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the ``History``.

    ``optimizer`` is a name ("gd", "momentum", "rmsprop", "adam"), built with ``lr`` (default:
    the optimizer's ``default_lr``, as in ``tunery.nn.spec``) and ``optimizer_hp`` (``beta``,
    ``beta1``, ``beta2``, ``eps``), or a ready ``Optimizer`` (then ``lr`` and ``optimizer_hp``
    are ignored). ``engine`` is as in ``Trainer``. A diverged run returns normally, with
    ``history.outcome == "diverged"``.
    """
    if not isinstance(optimizer, Optimizer):
        rates = {} if lr is None else {"lr": lr}  # none: the optimizer's default_lr
        optimizer = make_optimizer(optimizer, **rates, **optimizer_hp)
    trainer = Trainer(
        model,
        optimizer,
        X,
        y,
        X_val=X_val,
        y_val=y_val,
        batch_size=batch_size,
        l2=l2,
        schedule=schedule,
        seed=seed,
        callback=callback,
        engine=engine,
    )
    return trainer.run(epochs)


# helpers -----------------------------------------------------------------------------------------


def _checked_data(
    x_name: str, y_name: str, X: ArrayLike, y: ArrayLike, model: TrainableModel
) -> tuple[Array, Array]:
    """``X`` as ``(N, D)`` in the model's dtype and ``y`` as ``(N,)`` labels the model can output.

    The widths are checked against ``model.sizes`` (``[D, ..., C]``) when the model has them.
    """
    features = np.asarray(X, dtype=getattr(model, "dtype", np.float32))
    labels = np.asarray(y)
    sizes = getattr(model, "sizes", None)
    width, classes = (sizes[0], sizes[-1]) if sizes else (None, None)
    if features.ndim != 2 or len(features) == 0 or width not in (None, features.shape[1]):
        raise ConfigError(x_name, features.shape, f"a non-empty array of shape (N, {width or 'D'})")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(y_name, f"{labels.dtype} {labels.shape}", "integer labels of shape (N,)")
    if len(labels) != len(features):
        raise ConfigError(y_name, labels.shape, f"one label per row of {x_name}")
    if labels.min() < 0 or (classes is not None and labels.max() >= classes):
        found = f"labels in [{labels.min()}, {labels.max()}]"
        expected = "labels >= 0" if classes is None else f"labels in [0, {classes - 1}]"
        raise ConfigError(y_name, found, expected)
    return features, labels


def _checked_validation(
    X_val: ArrayLike | None, y_val: ArrayLike | None, model: TrainableModel
) -> tuple[Array | None, Array | None]:
    if X_val is None and y_val is None:
        return None, None
    if X_val is None or y_val is None:
        missing = "X_val" if X_val is None else "y_val"
        raise ConfigError(missing, None, "X_val and y_val together (or neither)")
    return _checked_data("X_val", "y_val", X_val, y_val, model)


def _checked_l2(l2: object) -> float:
    is_real = isinstance(l2, int | float | np.integer | np.floating) and not isinstance(l2, bool)
    if not is_real or not math.isfinite(float(l2)) or float(l2) < 0:  # type: ignore[arg-type]
        raise ConfigError("l2", l2, "a finite number >= 0")
    return float(l2)  # type: ignore[arg-type]


def _checked_schedule(
    schedule: Schedule | LearningRateSchedule | str | None,
) -> LearningRateSchedule:
    if schedule is None or isinstance(schedule, str):
        return make_schedule(schedule)
    if not callable(schedule):
        raise ConfigError("schedule", schedule, "a schedule name, a Schedule or None")
    return schedule


def _plain(value: object) -> object:
    """JSON for the NumPy values a generator's state may hold (MT19937 keeps an array)."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise StorageError(f"cannot read the checkpoint {path}: {error}") from error


def _state_from_bytes(data: bytes) -> dict[str, Any]:
    """The ``state_dict()`` that ``to_bytes`` wrote."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise StorageError(f"not a tunery checkpoint: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise StorageError(f"unknown checkpoint format {found!r} (expected {CHECKPOINT_FORMAT})")
    missing = sorted(_META_KEYS - set(meta))
    if missing:
        raise StorageError(f"the checkpoint lacks {', '.join(missing)}")

    def part(prefix: str) -> dict[str, Array]:
        return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

    optimizer = {**meta.pop("optimizer"), "arrays": part("optimizer/")}
    return {
        **meta,
        "parameters": part("parameters/"),
        "buffers": part("buffers/"),
        "optimizer": optimizer,
    }
