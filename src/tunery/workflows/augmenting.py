"""Training on augmented images: an engine that hands its inner engine a freshly augmented copy of
the training set every epoch (``tunery.data.Augmenter``), and the validation and test sets as
they are.

    engine = augmenting_engine(NumpyEngine, augmenter, seed=3)
    trainer = Trainer(model, optimizer, X, y, X_val=..., y_val=..., engine=engine)

Every image gets a new random transform each epoch, so every mini-batch the trainer draws is made
of freshly augmented images; the batch order, the weights and dropout use the trainer's own
generators, untouched. The augmentation has its own generator, ``"augment"`` among the engine's
``generators()``: ``Trainer`` stores its state in checkpoints with the others, so a resumed run
draws the same transforms as the uninterrupted one, bit for bit.

Per epoch that generator gives one number, the seed of the epoch's transforms. Knowing it one
epoch ahead (from a copy of the generator's state: the generator itself only moves when the epoch
starts, so a checkpoint between epochs holds the right state) lets a background thread augment
the next epoch while this one trains: NumPy releases the GIL in the array work, so on a second
core the augmentation leaves the critical path. A prepared epoch is used only if its seed is the
one the epoch then draws (after a checkpoint is restored it is not, and the epoch is augmented
again in the foreground), so prefetching never changes what is trained on.

With every amount 0 (a trial whose searched amounts are all 0, a PBT member perturbed there) the
engine trains on the photos as they are but keeps its generator, so a checkpoint of an augmented
member still restores into it and the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from tunery.data import Augmenter
from tunery.nn._base import Array
from tunery.nn.engine import Engine, EngineFactory
from tunery.nn.optimizers import Optimizer

__all__ = ["AUGMENT_GENERATOR", "AugmentingEngine", "augmenting_engine"]

AUGMENT_GENERATOR = "augment"
"""The name of the augmentation's generator in ``generators()`` (and in checkpoints)."""
# Keeps the augmentation's stream apart from the others a seed starts (the weights, the batches).
_STREAM = 0x6175_6720


class AugmentingEngine:
    """``inner`` trained on ``augmenter``'s transforms of the training set (see the module)."""

    def __init__(
        self, inner: Engine, augmenter: Augmenter, *, seed: int = 0, prefetch: bool = True
    ) -> None:
        self.inner = inner
        self.augmenter = augmenter
        self.prefetch = prefetch
        self._rng = np.random.default_rng([_STREAM, seed])
        self._pixels = np.empty((0, augmenter.num_features), dtype=np.float32)
        self._X = np.empty((0, augmenter.num_features), dtype=np.float32)
        self._y = np.empty(0, dtype=np.int64)
        self._dtype: np.dtype[Any] = np.dtype(np.float32)
        self._next: _Prepared | None = None

    @property
    def model(self) -> Any:
        return self.inner.model

    @property
    def optimizer(self) -> Optimizer:
        return self.inner.optimizer

    def load_data(self, X: Array, y: Array) -> None:
        self._X, self._y, self._dtype = X, y, X.dtype
        if self.augmenter.settings.active:  # once: every epoch starts from the same photos
            self._pixels = self.augmenter.pixels(X)
        self._next = None
        self.inner.load_data(X, y)

    def start_epoch(self) -> None:
        seed = int(self._rng.integers(2**63))  # drawn even when idle: the stream stays in step
        if not self.augmenter.settings.active:
            # Every amount 0 (a searched amount can be): train on the photos as they are, with
            # this engine and its generator still there, so checkpoints stay interchangeable.
            self.inner.load_data(self._X, self._y)
            self.inner.start_epoch()
            return
        prepared, self._next = self._next, None
        X = prepared.result() if prepared is not None and prepared.seed == seed else None
        if X is None:
            X = self._augmented(seed)
        self.inner.load_data(X, self._y)
        if self.prefetch:
            self._next = _Prepared(self._peek_seed(), self._augmented)
        self.inner.start_epoch()

    def _augmented(self, seed: int) -> Array:
        rows = self.augmenter.augment_pixels(self._pixels, np.random.default_rng(seed))
        return rows.astype(self._dtype, copy=False)

    def _peek_seed(self) -> int:
        """The seed the next epoch will draw, from a copy of the generator (which stays put)."""
        twin = np.random.Generator(type(self._rng.bit_generator)())
        twin.bit_generator.state = self._rng.bit_generator.state
        return int(twin.integers(2**63))

    def train_batch(self, index: Array, l2: float) -> float:
        return self.inner.train_batch(index, l2)

    def end_epoch(self) -> None:
        self.inner.end_epoch()

    def accuracy(self, X: Array, y: Array) -> float:
        return self.inner.accuracy(X, y)  # the clean sets the trainer passes: never augmented

    def set_hyperparameters(self, **hyperparameters: float) -> None:
        self.inner.set_hyperparameters(**hyperparameters)

    def hyperparameters(self) -> dict[str, float]:
        return self.inner.hyperparameters()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def generators(self) -> dict[str, np.random.Generator]:
        return {**self.inner.generators(), AUGMENT_GENERATOR: self._rng}


class _Prepared:
    """One epoch's augmented rows, computed by a background thread from ``seed``."""

    def __init__(self, seed: int, work: Any) -> None:
        self.seed = seed
        self._rows: Array | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Any) -> None:
        try:
            self._rows = work(self.seed)
        except BaseException as error:  # handed to the training thread
            self._error = error

    def result(self) -> Array | None:
        """The rows (``None`` if the thread failed: the caller augments in the foreground)."""
        self._thread.join()
        return None if self._error is not None else self._rows


def augmenting_engine(
    inner: EngineFactory, augmenter: Augmenter, *, seed: int = 0, prefetch: bool = True
) -> EngineFactory:
    """The ``Trainer(engine=...)`` factory: ``inner``'s engines wrapped in ``AugmentingEngine``."""

    def factory(model: Any, optimizer: Optimizer) -> Engine:
        return AugmentingEngine(inner(model, optimizer), augmenter, seed=seed, prefetch=prefetch)

    return factory
