"""Recipes: how a panda builds its trainer (a config's ``[model]``, or a trainer factory), maps
a branch's params onto trainer hyperparameters, and what it reports per epoch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from tunery._exceptions import ConfigError
from tunery.config import SEARCHABLE, ModelSection, TuneConfig, trial_data
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import EpochMetrics, Trainer
from tunery.space import Choice, Space
from tunery.workflows.panda._nudges import (
    check_changes,
    check_model_nudge,
    check_numbers,
    nudgeable,
)

if TYPE_CHECKING:
    from tunery.data import Dataset

REPORTED = ("loss", "train_accuracy", "val_accuracy", "lr")
"""What panda reports per epoch (the built-in objective's names); the study's metric is one."""

TrainerFactory = Callable[[dict[str, Any]], Trainer]
"""``factory(params) -> Trainer``: a fresh trainer for a branch's params (nudges included)."""


class Recipe(Protocol):
    """How a panda builds its trainer and maps a branch's params onto trainer hyperparameters."""

    def build(self, params: Mapping[str, Any]) -> Trainer: ...

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]: ...

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]: ...

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]: ...

    def space(self, trainer: Trainer) -> Space: ...


class _ConfigRecipe:
    """A config's ``[model]`` with the branch's params put in (``tunery.workflows.objective``)."""

    def __init__(self, config: TuneConfig, dataset: Dataset | None) -> None:
        from tunery.workflows.objective import DatasetCache

        self.config = config
        self.datasets = DatasetCache()
        if dataset is None:
            dataset = self.datasets.get(config.data)  # now: bad data fails before the store
        self.datasets.put(config.data, dataset)

    def settings(self, params: Mapping[str, Any]) -> ModelSection:
        from tunery.workflows.objective import trial_settings

        return trial_settings(self.config, params)

    def build(self, params: Mapping[str, Any]) -> Trainer:
        from tunery.workflows.objective import build_trainer

        dataset = self.datasets.get(trial_data(self.config.data, params))
        return build_trainer(self.config, params, dataset)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in SEARCHABLE:
                raise ConfigError("params", name, "a model setting: " + ", ".join(SEARCHABLE))
        self.settings(params)  # validates the merged settings
        data = trial_data(self.config.data, params)
        if data != self.config.data:
            from tunery.workflows.objective import check_resizable

            check_resizable(data, "params.image_size")
        return dict(params)

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]:
        return check_model_nudge(self.settings(params), changes)

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        settings = self.settings(params)
        hp: dict[str, Any] = settings.train_spec().hyperparameters()
        return {**hp, "l2": settings.l2, "batch_size": settings.batch_size}

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        return describe_settings(self.settings(params))

    def space(self, trainer: Trainer) -> Space:
        return dict(self.config.space)


class _FactoryRecipe:
    """``factory(params) -> Trainer``; nudges use the trainer's own names (``beta1``, ``eps``)."""

    def __init__(self, factory: TrainerFactory) -> None:
        self.factory = factory

    def build(self, params: Mapping[str, Any]) -> Trainer:
        trainer = self.factory(dict(params))
        if not isinstance(trainer, Trainer):
            raise ConfigError("factory", trainer, "a function params -> tunery.nn.train.Trainer")
        return trainer

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def check_nudge(
        self, params: Mapping[str, Any], changes: Mapping[str, Any], trainer: Trainer
    ) -> dict[str, Any]:
        known = trainer.hyperparameters()
        check_changes(changes, known, "a hyperparameter of the trainer: " + ", ".join(known))
        clean = check_numbers(changes)
        optimizer = trainer.optimizer
        current = optimizer.hyperparameters()
        # A fresh optimizer validates the values by the optimizer's own rules, changing nothing.
        make_optimizer(optimizer.name, **{**current, **_pick(clean, current)})
        return dict(clean)

    def hyperparameters(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        return _pick(params, trainer.hyperparameters())

    def describe(self, params: Mapping[str, Any], trainer: Trainer) -> dict[str, Any]:
        return {"nudgeable": list(trainer.hyperparameters()), "settings": None}

    def space(self, trainer: Trainer) -> Space:
        # A panda study searches nothing: its round holds the one point it started from.
        return {name: Choice([value]) for name, value in trainer.hyperparameters().items()}


def describe_settings(settings: ModelSection) -> dict[str, Any]:
    """What a trial stores about its model so that a nudge sent from another process can be
    checked (``check_stored_nudge``): the settings, and the names a nudge may change."""
    return {
        "nudgeable": list(nudgeable(settings)),
        "settings": {
            **{k: _plain(v) for k, v in dataclasses.asdict(settings).items()},
            "lr": settings.train_spec().learning_rate,  # a default lr, resolved
        },
    }


def sync_hyperparameters(recipe: Recipe, trainer: Trainer, params: Mapping[str, Any]) -> None:
    """Give ``trainer`` the hyperparameters ``params`` imply, touching only those that differ
    (so a restored checkpoint whose values already match stays bit for bit as saved). This is how
    a nudge takes effect, a person's (panda) or a population's (PBT)."""
    wanted = recipe.hyperparameters(params, trainer)
    current = trainer.hyperparameters()
    changed = {key: value for key, value in wanted.items() if current.get(key) != value}
    if changed:
        trainer.set_hyperparameters(**changed)


def make_recipe(source: Any, dataset: Dataset | None) -> Recipe:
    """The recipe for ``source``: a config, or a function params -> Trainer."""
    if isinstance(source, TuneConfig):
        return _ConfigRecipe(source, dataset)
    if callable(source):
        return _FactoryRecipe(source)
    raise ConfigError("source", source, "a TuneConfig or a function params -> Trainer")


def _pick(values: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: values[key] for key in keys if key in values}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_trainer(trainer: Trainer, metric: str) -> None:
    """A trainer panda can babysit for ``metric``: checkpoints, and the metric reported."""
    if not callable(getattr(trainer, "to_bytes", None)):
        raise ConfigError("trainer", type(trainer).__name__, "a trainer with checkpoints")
    if metric not in REPORTED:
        raise ConfigError("metric", metric, "a metric panda reports: " + ", ".join(REPORTED))
    if metric == "val_accuracy" and getattr(trainer, "X_val", None) is None:
        raise ConfigError("trainer", "no validation data", "X_val and y_val for val_accuracy")


def check_epochs(epochs: Any, source: Any) -> int:
    """The epoch a branch trains to: ``epochs``, else the config's (a factory has none)."""
    if epochs is None:
        if isinstance(source, TuneConfig):
            return source.epochs
        raise ConfigError("epochs", None, "an int >= 1 (a trainer factory has no default)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError("epochs", epochs, "an int >= 1")
    return epochs


def reported(metrics: EpochMetrics) -> dict[str, float]:
    """An epoch's metrics under the names panda reports."""
    reported = {"loss": metrics.cost, "train_accuracy": metrics.train_accuracy, "lr": metrics.lr}
    if metrics.val_accuracy is not None:
        reported["val_accuracy"] = metrics.val_accuracy
    return reported
