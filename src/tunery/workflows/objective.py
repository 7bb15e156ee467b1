"""The built-in objective: train the engine's MLP or CNN from a config's settings and trial params.

    objective = TrainerObjective(load_config("tune.toml"))
    study.caviar(objective, config.space, n_trials=config.run.trials)

Per trial it builds ``MLP([D, *hidden, C])`` (or a ``CNN`` with ``model.kind = "cnn"``) and a
``Trainer`` (``TorchTrainer``, the PyTorch
twin, when ``model.backend = "torch"``), trains ``config.epochs`` epochs and after each one reports
``loss``, ``train_accuracy``, ``val_accuracy`` and ``lr``, then asks ``trial.should_prune()``
(raising ``tunery.Pruned`` when told). A NaN or inf cost reports that ``loss`` and raises
``tunery.Diverged``. At the end it records the test accuracy as the user attribute
``test_accuracy`` and returns the last epoch's value of ``config.study.metric``.

The dataset is loaded once per process and kept on the objective (not pickled: a process pool's
workers each load their own). With ``run.checkpoint_every = N`` the trainer is checkpointed every
``N`` epochs, and a trial re-run after a crash resumes from its predecessor's last checkpoint.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from tunery._exceptions import ConfigError, Pruned
from tunery._validation import under
from tunery.config import (
    AUGMENT_SEARCHABLE,
    DataSection,
    ModelSection,
    TuneConfig,
    trial_data,
    trial_model,
)
from tunery.data import Augmenter, AugmentSettings, Dataset, load_dataset, resizes_images
from tunery.nn.build import build_network
from tunery.nn.cnn import CNN
from tunery.nn.model import MLP
from tunery.nn.spec import make_trainer, renamed
from tunery.nn.train import EpochMetrics, Trainer
from tunery.samplers import GuidedSampler
from tunery.workflows.augmenting import augmenting_engine

if TYPE_CHECKING:
    from tunery.pruners import ASHAPruner, MedianPruner
    from tunery.study import Callback, Study, Trial

__all__ = [
    "TEST_ACCURACY",
    "DatasetCache",
    "TrainerObjective",
    "build_model",
    "build_trainer",
    "check_resizable",
    "load_config_dataset",
    "load_data_section",
    "make_augmenter",
    "make_config_pruner",
    "open_study",
    "run_study",
    "trial_settings",
]

TEST_ACCURACY = "test_accuracy"
"""The user attribute that holds a finished trial's test accuracy."""

EpochCallback = Callable[[EpochMetrics], bool | None]


def trial_settings(config: TuneConfig, params: Mapping[str, Any]) -> ModelSection:
    """The fixed ``[model]`` with the trial's params put in (and ``epochs`` = ``config.epochs``)."""
    return replace(trial_model(config.model, params), epochs=config.epochs)


def load_config_dataset(config: TuneConfig, params: Mapping[str, Any] | None = None) -> Dataset:
    """``load_dataset`` with the config's ``[data]`` section (and a trial's ``image_size``)."""
    return load_data_section(trial_data(config.data, params or {}))


def load_data_section(data: DataSection) -> Dataset:
    """``load_dataset`` with the arguments of one ``[data]`` section, and its validation photos
    changed by ``[data.validation_augment]`` if it has one."""
    dataset = load_dataset(
        data.source,
        classes=data.classes,
        normalize=data.normalize,
        seed=data.seed,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        image_size=data.image_size,
    )
    if not data.validation_augment.active:
        return dataset
    # Seeded by the split's seed, never a trial's: every trial is judged on the same photos.
    return dataset.with_changed_validation(
        data.validation_augment, data.validation_copies, seed=data.seed
    )


def build_model(settings: ModelSection, dataset: Dataset) -> MLP | CNN:
    """``MLP([D, *settings.layers, C])`` for ``dataset`` (rows ``(N, D)``, ``C`` classes), or with
    ``kind = "cnn"`` a ``CNN`` of its images (``dataset.image_shape``) with ``settings.conv``
    blocks and ``settings.layers`` as its dense head (errors name ``model.<setting>``)."""
    shape = (dataset.num_features, dataset.image_shape, dataset.num_classes)
    return build_network(settings, shape)


def build_trainer(
    config: TuneConfig,
    params: Mapping[str, Any],
    dataset: Dataset | None = None,
    *,
    callback: EpochCallback | None = None,
) -> Trainer:
    """A ready trainer for one trial: model, optimizer, schedule and data, not yet trained.

    ``dataset`` defaults to loading ``config.data`` with the params' ``image_size``. The trainer
    raises ``tunery.Diverged`` on a NaN or inf cost; its engine is the config's ``backend``.
    """
    settings = trial_settings(config, params)
    data = load_config_dataset(config, params) if dataset is None else dataset
    try:
        spec = settings.train_spec()
        engine = spec.engine()
    except ConfigError as error:
        raise renamed(error, "model.") if not error.field.startswith("model.") else error from None
    augment = trial_data(config.data, params).augment
    # Searched amounts may all be 0 in one trial: the engine stays (idle), so that every trial of
    # the study, and every PBT member, has the same generators in its checkpoints.
    if augment.active or any(name in params for name in AUGMENT_SEARCHABLE):
        engine = augmenting_engine(engine, make_augmenter(augment, data), seed=settings.seed)
    return make_trainer(
        spec,
        build_model(settings, data),
        data.X_train,
        data.y_train,
        X_val=data.X_val,
        y_val=data.y_val,
        callback=callback,
        raise_on_divergence=True,
        engine=engine,
    )


def make_augmenter(settings: AugmentSettings, dataset: Dataset) -> Augmenter:
    """The ``Augmenter`` of ``settings`` for ``dataset``'s images and normalization."""
    if dataset.image_shape is None:
        raise ConfigError("data.augment", settings.to_dict(), "a data set of images to augment")
    try:
        return Augmenter(
            settings, dataset.image_shape, mean=dataset.normalizer.mean, std=dataset.normalizer.std
        )
    except ConfigError as error:
        raise ConfigError(f"data.{error.field}", error.value, error.expected) from None


class TrainerObjective:
    """``objective(trial) -> float`` for ``Study.caviar``: trains one network per trial.

    Picklable: the config travels, the datasets do not (each process loads each one once, on first
    use). A searched ``image_size`` gives one dataset per size.
    """

    def __init__(self, config: TuneConfig) -> None:
        if not isinstance(config, TuneConfig):
            raise ConfigError("config", config, "a tunery.config.TuneConfig")
        self.config = config
        self._datasets = DatasetCache()
        self.blas_threads = 1
        self._shared: tuple[DataSection, Any, Callable[[Any], Dataset]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "blas_threads": self.blas_threads, "shared": self._shared}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.config = state["config"]
        self._datasets = DatasetCache()
        self.blas_threads = state.get("blas_threads", 1)
        self._shared = state.get("shared")

    def prepare_for_cluster(
        self, put: Callable[[Any], Any], get: Callable[[Any], Any], *, cpus: float = 1
    ) -> TrainerObjective:
        """A copy for a cluster executor: the config's dataset loaded here once and ``put`` in the
        cluster's object store, read back with ``get`` by each process that trains (nodes need
        not have the data's path); BLAS runs on the ``cpus`` each trial holds. Only the config's
        own ``[data]`` travels: other searched ``image_size`` values load from the path."""
        variant = TrainerObjective(self.config)
        variant.blas_threads = max(1, int(cpus))
        variant._shared = (self.config.data, put(self.dataset), get)
        return variant

    @property
    def dataset(self) -> Dataset:
        """The config's own ``[data]`` dataset, loaded on first use and kept for this process.

        With ``image_size`` searched it also checks that the source is resized (a photo folder).
        """
        dataset = self._datasets.get(self.config.data)  # first: a missing source says so
        if "image_size" in self.config.space:
            check_resizable(self.config.data)
        return dataset

    def dataset_for(self, params: Mapping[str, Any]) -> Dataset:
        """The dataset a trial with ``params`` trains on (its ``image_size`` if searched)."""
        data = trial_data(self.config.data, params)
        same = self._shared is not None and self._shared[0].for_loading() == data.for_loading()
        if self._shared is not None and same and data not in self._datasets:
            _, ref, get = self._shared
            self._datasets.put(data, get(ref))  # from the object store, once per process
        return self._datasets.get(data)

    def __call__(self, trial: Trial) -> float:
        # One BLAS thread per trial (a cluster task: the CPUs it holds): parallelism comes from
        # the workers. With more, OpenBLAS's
        # threads fight over the cores for the optimizer's small vector updates (axpy), which then
        # run ten times slower on a busy 2-core machine.
        with threadpool_limits(limits=self.blas_threads, user_api="blas"):
            return self._train(trial)

    def _train(self, trial: Trial) -> float:
        reporter = _Reporter(trial, self.config.epochs, self.config.run.checkpoint_every)
        data = self.dataset_for(trial.params)
        trainer = build_trainer(self.config, trial.params, data, callback=reporter)
        reporter.trainer = trainer
        _resume(trial, trainer, trial_settings(self.config, trial.params))
        remaining = self.config.epochs - trainer.epoch
        if remaining > 0:
            trainer.run(remaining)  # raises Pruned (from the callback) or Diverged
        accuracy = float(np.mean(trainer.model.predict(data.X_test) == data.y_test))
        trial.set_user_attr(TEST_ACCURACY, accuracy)
        return _final(trainer, self.config.study.metric)

    def __repr__(self) -> str:
        return f"TrainerObjective(study={self.config.study.name!r})"


class DatasetCache:
    """Datasets by ``[data]`` section, each loaded once per process and kept while it is among the
    ``capacity`` most recently used: an integer ``image_size`` range can name dozens of sizes, and
    64 × 64 photos take ~60 MB each (a resize from the on-disk cache takes a fraction of a second).
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._loaded: OrderedDict[DataSection, Dataset] = OrderedDict()

    def get(self, data: DataSection) -> Dataset:
        data = data.for_loading()  # the augmentation changes training, not the data loaded
        if data in self._loaded:
            self._loaded.move_to_end(data)
            return self._loaded[data]
        dataset = load_data_section(data)
        self.put(data, dataset)
        return dataset

    def put(self, data: DataSection, dataset: Dataset) -> None:
        """Keep an already loaded ``dataset`` as the one for ``data``."""
        data = data.for_loading()
        self._loaded[data] = dataset
        self._loaded.move_to_end(data)
        while len(self._loaded) > self.capacity:
            self._loaded.popitem(last=False)

    def __len__(self) -> int:
        return len(self._loaded)

    def __contains__(self, data: object) -> bool:
        return isinstance(data, DataSection) and data.for_loading() in self._loaded


def check_resizable(data: DataSection, field: str = "space.image_size") -> None:
    """A searched ``image_size`` needs photos that ``load_dataset`` resizes (not .h5 or digits);
    ``field`` names where the size came from in the error."""
    if not resizes_images(data.source):
        expected = (
            "a folder of photos in data.source (.h5 images and the digits keep their size, "
            "so every image_size would train on the same inputs)"
        )
        raise ConfigError(field, data.image_size, expected)


class _Reporter:
    """The trainer's per-epoch callback: report, checkpoint, ask the pruner."""

    def __init__(self, trial: Trial, epochs: int, checkpoint_every: int) -> None:
        self.trial = trial
        self.epochs = epochs
        self.checkpoint_every = checkpoint_every
        self.trainer: Trainer | None = None

    def __call__(self, metrics: EpochMetrics) -> None:
        if metrics.diverged:
            # Only the loss: NaN accuracies would read as (terrible) values to a pruner.
            self.trial.report(metrics.epoch, loss=metrics.cost)
            return  # the trainer raises Diverged next
        self.trial.report(metrics.epoch, **_reported(metrics))
        every = self.checkpoint_every
        if every and metrics.epoch % every == 0 and self.trainer is not None:
            self.trial.checkpoint(self.trainer.to_bytes(), metrics.epoch)
        # After the last epoch there is nothing left to save: the trial completes.
        if metrics.epoch < self.epochs and self.trial.should_prune():
            raise Pruned(f"trial {self.trial.number} pruned at epoch {metrics.epoch}")


def _reported(metrics: EpochMetrics) -> dict[str, float]:
    reported = {"loss": metrics.cost, "train_accuracy": metrics.train_accuracy, "lr": metrics.lr}
    if metrics.val_accuracy is not None:
        reported["val_accuracy"] = metrics.val_accuracy
    return reported


def _resume(trial: Trial, trainer: Trainer, settings: ModelSection) -> None:
    """Continue from the checkpoint ``trial.restore()`` finds (an interrupted run of the draw).

    The trial's own hyperparameters are put back after loading (a branched trial keeps its new
    ones), and the epochs the checkpoint holds are reported again, so the trial's curve is whole.
    """
    blob = trial.restore()
    if blob is None:
        return
    trainer.restore(blob)
    trainer.set_hyperparameters(
        **settings.train_spec().hyperparameters(), l2=settings.l2, batch_size=settings.batch_size
    )
    reported = trial.curve
    for metrics in trainer.history:
        if metrics.epoch not in reported and not metrics.diverged:
            trial.report(metrics.epoch, **_reported(metrics))


def _final(trainer: Trainer, metric: str) -> float:
    last = trainer.history[-1]
    values = {"loss": last.cost, "train_accuracy": last.train_accuracy}
    values["val_accuracy"] = math.nan if last.val_accuracy is None else last.val_accuracy
    return float(values[metric])


# --------------------------------------------------------------------------------------------------
# Running a config


def make_config_pruner(config: TuneConfig) -> MedianPruner | ASHAPruner | None:
    """``[run].pruner`` with its options, watching the study's metric and direction.

    ASHA's last rung stays below the epoch budget unless ``pruner_options`` says otherwise.
    """
    from tunery.pruners import make_pruner

    options = dict(config.run.pruner_options)
    if config.run.pruner == "asha":
        options.setdefault("max_epochs", config.epochs)
    with under("run.pruner_options"):
        pruner = make_pruner(config.run.pruner, **options)
    if pruner is None:
        return None
    return pruner.bind(metric=config.study.metric, direction=config.study.direction)


def open_study(config: TuneConfig) -> Study:
    """The config's study (created, or reopened to continue), with its sampler and pruner."""
    from tunery.study import Study

    return Study(
        config.study.name,
        config.study.storage,
        direction=config.study.direction,
        seed=config.study.seed,
        metric=config.study.metric,
        sampler=config.run.sampler,
        pruner=make_config_pruner(config),
        checkpoint_dir=config.run.checkpoint_dir,
    )


def run_study(
    config: TuneConfig,
    study: Study | None = None,
    objective: Callable[[Trial], Any] | None = None,
    *,
    callbacks: Sequence[Callback] = (),
) -> Study:
    """Run the config's search: ``run.rounds`` rounds of ``Study.caviar``, zooming between them.

    Continues a study that already has trials: finished trials count toward ``run.trials`` and
    are never re-run, and a study already zoomed goes on in its latest round. The zoom keeps the
    best ``run.top`` of the COMPLETE trials and widens their box by ``run.margin``.
    """
    study = open_study(config) if study is None else study
    objective = TrainerObjective(config) if objective is None else objective
    return study.caviar(
        objective,
        config.space,
        n_trials=config.run.trials,
        workers=config.run.workers,
        executor=config.run.executor,
        address=config.run.address,
        resources=config.run.resources or None,
        rounds=config.run.rounds,
        callbacks=callbacks,
        top=config.run.top,
        margin=config.run.margin,
        guided=_guided(config),
    )


def _guided(config: TuneConfig) -> GuidedSampler | None:
    """``run.guided`` and ``run.guided_batch`` as the sampler of the zoomed rounds."""
    if config.run.guided is None:
        return None
    return GuidedSampler(model=config.run.guided, batch=config.run.guided_batch)
