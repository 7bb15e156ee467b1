"""A segment's objective: train one member from its checkpoint to the next boundary.

It runs wherever the executor puts it (this process, a pool worker, a Ray task) and knows the
segment only through its trial: ``trial.params`` (the member's hyperparameters for these epochs)
and the ``PBT_ATTR`` record (``start``, ``end``). The trainer is built from the config, restored
from the checkpoint at ``start`` (``trial.restore`` finds the parent's: the member's own previous
segment, or the top member it exploited), given the segment's hyperparameters the way a panda
nudge is applied (``sync_hyperparameters``: only the values that differ change), and trained to
``end``. It reports every epoch, checkpoints ``end`` and records the test accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tunery._exceptions import ConfigError, Diverged
from tunery.config import TuneConfig, trial_data
from tunery.nn.train import EpochMetrics, Trainer
from tunery.report import PBT_ATTR
from tunery.trial import Trial
from tunery.workflows.objective import TEST_ACCURACY, DatasetCache
from tunery.workflows.panda._recipes import (
    Recipe,
    check_trainer,
    make_recipe,
    reported,
    sync_hyperparameters,
)


class SegmentObjective:
    """``objective(trial)`` for one PBT segment; picklable (the config travels, data does not)."""

    def __init__(self, config: TuneConfig) -> None:
        self.config = config
        self._recipe: Recipe | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self._recipe = None

    @property
    def recipe(self) -> Recipe:
        """The panda's recipe for the config, made once per process (it loads the data)."""
        if self._recipe is None:
            self._recipe = make_recipe(self.config, None)
        return self._recipe

    def __call__(self, trial: Trial) -> float:
        # One BLAS thread per segment: parallelism comes from the members (as TrainerObjective).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._train(trial)

    def _train(self, trial: Trial) -> float:
        info = trial.user_attrs.get(PBT_ATTR)
        if not isinstance(info, dict):
            raise ConfigError("trial", trial.number, f"a PBT segment (user attribute {PBT_ATTR!r})")
        start, end = int(info["start"]), int(info["end"])
        trainer = self.recipe.build(trial.params)
        check_trainer(trainer, trial.metric)
        if start > 0:
            blob = trial.restore(start)
            if blob is None:
                raise ConfigError("checkpoint", f"epoch {start}", "the segment's start checkpoint")
            trainer.restore(blob)
        sync_hyperparameters(self.recipe, trainer, trial.params)
        while trainer.epoch < end:
            metrics = _epoch(trainer)
            if metrics.diverged:
                trial.report(metrics.epoch, loss=metrics.cost)
                raise Diverged(metrics.epoch, metrics.cost)
            trial.report(metrics.epoch, **reported(metrics))
        trial.checkpoint(trainer.to_bytes(), end)
        trial.set_user_attr(TEST_ACCURACY, self._test_accuracy(trainer, trial.params))
        value = trial.last()
        if value is None:
            raise ConfigError("metric", trial.metric, "a metric the segment reported")
        return value

    def _test_accuracy(self, trainer: Trainer, params: dict[str, Any]) -> float:
        datasets = getattr(self.recipe, "datasets", None)
        if not isinstance(datasets, DatasetCache):
            raise ConfigError("source", self.config, "a config with a dataset")
        data = datasets.get(trial_data(self.config.data, params))
        return float(np.mean(trainer.model.predict(data.X_test) == data.y_test))


def _epoch(trainer: Trainer) -> EpochMetrics:
    try:
        return trainer.run_epoch()
    except Diverged:
        return trainer.history[-1]
