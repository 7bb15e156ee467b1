"""``tunery train`` and ``tunery predict``: train a network with a live progress bar, then use it.

``train`` loads the data (``tunery.data.load_dataset``), builds ``MLP([D, *layers, C])`` (or, with
``--model cnn``, a ``CNN`` of ``--conv`` blocks and a ``--layers`` head), trains it
with the NumPy engine (or its PyTorch twin), shows cost and accuracies per epoch, and writes a run
folder (``tunery.trained``) with the model, ``history.json``, ``metrics.json`` and ``curve.png``.
``predict`` reads such a folder and classifies photos.

Every option is checked before any data is loaded, so a typo costs no time; a bad value is one
line naming the option, the value and what was expected, and exit code 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from threadpoolctl import threadpool_limits

from tunery._exceptions import ConfigError
from tunery.cli._app import app, console, console_err
from tunery.cli._augment import augment_options, augmenting
from tunery.cli._options import (
    FiniteFloat,
    Parsed,
    check_classes,
    parse_conv,
    parse_decay,
    parse_layers,
)
from tunery.data import NORMALIZE_KINDS, AugmentSettings, Dataset, load_dataset
from tunery.nn import CNN, MLP
from tunery.nn.build import build_network
from tunery.nn.model import Activation
from tunery.nn.optimizers import OPTIMIZERS
from tunery.nn.schedules import Schedule
from tunery.nn.spec import BACKENDS, DEFAULT_LR, TrainSpec, make_trainer, renamed
from tunery.nn.train import EpochMetrics, History
from tunery.report._curves import learning_curve, render_learning_curve
from tunery.trained import (
    CURVE_FILE,
    TrainedRun,
    confidence_threshold,
    new_run_dir,
    run_folder_name,
    save_run,
)

__all__ = ["TrainSettings", "parse_decay", "parse_layers", "train"]


# -------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TrainSettings:
    """Everything ``train`` was asked for, validated; ``options()`` is what the run folder keeps."""

    data: str
    classes: str | None
    layers: tuple[int, ...]
    batchnorm: bool
    optimizer: str
    lr: float
    beta: float | None
    decay: Schedule
    epochs: int
    batch_size: int
    l2: float
    keep_prob: float
    normalize: str
    image_size: int
    backend: str
    threads: int
    seed: int
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    model: str = "mlp"
    conv: tuple[tuple[int, int], ...] = ((16, 3), (32, 3))
    pool: int = 2
    instance_norm: bool = False
    activation: Activation = "relu"  # not an option of ``tunery train``: the course's ReLU

    @property
    def kind(self) -> str:
        """``--model``, under the name ``[model]`` gives it (``tunery.nn.build``)."""
        return self.model

    def train_spec(self) -> TrainSpec:
        """The training recipe (``--beta`` is β for momentum/RMSprop, β1 for Adam); errors name
        the option."""
        try:
            spec = TrainSpec.of(self, schedule=self.decay)
        except ConfigError as error:
            raise renamed(error, "--") from None
        if spec.ignored_fields():
            expected = "no value with --optimizer gd (plain gradient descent has no β)"
            raise ConfigError("--beta", self.beta, expected)
        return spec

    def check_model(self) -> None:
        """A CNN has no dropout: ``--keep-prob`` below 1 with ``--model cnn`` is refused; an
        MLP has no image channels to normalize: ``--instance-norm`` needs ``--model cnn``."""
        if self.model == "cnn" and self.keep_prob != 1.0:
            raise ConfigError("--keep-prob", self.keep_prob, "1 with --model cnn (no dropout)")
        if self.model != "cnn" and self.instance_norm:
            raise ConfigError("--instance-norm", True, "--model cnn (it normalizes photos)")

    def options(self) -> dict[str, Any]:
        options = asdict(self)
        options["layers"] = list(self.layers)
        options["conv"] = [list(block) for block in self.conv]
        options["decay"] = self.decay.to_dict()
        return options


# ---------------------------------------------------------------------------------- train command

_DECAY_HELP = (
    "Learning-rate decay per epoch, NAME[:VALUES]: none; inverse_time[:RATE] (lr/(1+RATE·epoch), "
    "default 1.0); exponential[:RATE] (lr·RATE^epoch, default 0.95); inverse_sqrt[:K] "
    "(lr·K/√(epoch+1)); step[:EVERY[:FACTOR]] (lr·FACTOR every EVERY epochs, default 10:0.5)."
)


@app.command()
@click.option(
    "--data",
    default="digits",
    help="'digits' (bundled 8×8 digits), a folder with one subfolder of photos per class, "
    "a train_*.h5 file (test_*.h5 beside it) or a folder holding such a pair.",
)
@click.option(
    "--classes",
    callback=check_classes,
    help="Classes to keep, e.g. 0-5 or 0,2,4 (default: all).",
)
@click.option(
    "--layers",
    type=Parsed("SIZES", parse_layers),
    default="25,12",
    help="Hidden-layer sizes, comma-separated ('none' for softmax regression); the input and "
    "output sizes come from the data.",
)
@click.option(
    "--model",
    "model_kind",
    type=click.Choice(["mlp", "cnn"]),
    default="mlp",
    help="mlp: Dense layers on the pixels; cnn: --conv blocks (Conv2D → BatchNorm2d → ReLU → "
    "MaxPool2D), then --layers as the dense head.",
)
@click.option(
    "--conv",
    type=Parsed("BLOCKS", parse_conv),
    default="16:3,32:3",
    help="The CNN's blocks as FILTERS:KERNEL, comma-separated (with --model cnn).",
)
@click.option(
    "--pool",
    type=click.IntRange(min=1),
    default=2,
    help="Max-pooling window and stride after each CNN block (1: none).",
)
@click.option(
    "--instance-norm/--no-instance-norm",
    default=False,
    help="Standardize each photo per colour channel by its own mean and std before the CNN's "
    "first convolution (with --model cnn): robust to the light's colour and exposure.",
)
@click.option(
    "--batchnorm/--no-batchnorm",
    default=True,
    help="Batch normalization after every hidden Dense layer (and every convolution of a CNN).",
)
@click.option(
    "--optimizer",
    type=click.Choice(list(OPTIMIZERS), case_sensitive=False),
    default="adam",
)
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    help="Learning rate [default: 0.01 for gd and momentum, 0.001 for rmsprop and adam].",
)
@click.option(
    "--beta",
    type=FiniteFloat(min=0, max=1, max_open=True),
    help="β of momentum and RMSprop, β1 of Adam, in [0, 1) [default: 0.9].",
)
@click.option(
    "--decay",
    type=Parsed("SCHEDULE", parse_decay),
    default="none",
    help=_DECAY_HELP,
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=100,
    help="Passes over the training set.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    help="Mini-batch size (a size >= the training set is batch gradient descent).",
)
@click.option(
    "--l2",
    type=FiniteFloat(min=0),
    default=0.0,
    help="L2 regularization λ: the cost adds λ/(2m)·Σ‖W‖².",
)
@click.option(
    "--keep-prob",
    type=FiniteFloat(min=0, max=1, min_open=True),
    default=1.0,
    help="Dropout keep probability of hidden units, in (0, 1]; 1 means no dropout.",
)
@click.option(
    "--normalize",
    type=click.Choice(list(NORMALIZE_KINDS)),
    default="standardize",
    help="standardize: per-input mean and std of the training set; scale: only the division "
    "that puts inputs in [0, 1] (pixels ÷ 255).",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    default=64,
    help="Photos from a folder are resized to SIZE×SIZE RGB (SIZE²·3 inputs); not used for "
    "the digits or .h5 files.",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="numpy",
    help="torch trains the same network with PyTorch (extra 'tunery[torch]'); the run is saved "
    "in the same NumPy format either way.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    help="Threads for the linear algebra (BLAS, or torch's). These networks are small: extra "
    "threads mostly wait on each other, and on a busy machine they can make training many "
    "times slower.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    help="Seeds the split, the initial weights, the mini-batches and dropout.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    help="Folder that holds the run folders.",
)
@click.option(
    "--name",
    help="Name of this run's folder inside --out [default: TIMESTAMP-DATA-LAYERS]. An existing "
    "folder with files is never overwritten: -2, -3... is appended.",
)
@augment_options
def train(
    data: str,
    classes: str | None,
    layers: tuple[int, ...],
    model_kind: str,
    conv: tuple[tuple[int, int], ...],
    pool: int,
    instance_norm: bool,
    batchnorm: bool,
    optimizer: str,
    lr: float | None,
    beta: float | None,
    decay: Schedule,
    epochs: int,
    batch_size: int,
    l2: float,
    keep_prob: float,
    normalize: str,
    image_size: int,
    backend: str,
    threads: int,
    seed: int,
    out: Path,
    name: str | None,
    augment: AugmentSettings,
) -> None:
    """Train one network and save it in a run folder.

    Shows cost and accuracies per epoch, then the train, validation and test accuracy, and writes
    OUT/NAME/ with model.npz, run.json, history.json, metrics.json and curve.png. Exit code 1
    when training diverges (what it has is saved), 2 for a bad option or unreadable data.

    \b
    The classic exercise (6 signs, 25-12-6, Adam, lr 1e-4, 1500 epochs):
      tunery train --data PHOTOS --classes 0-5 --no-batchnorm --normalize scale \\
        --optimizer adam --lr 1e-4 --batch-size 32 --epochs 1500
    """
    optimizer = optimizer.lower()
    settings = TrainSettings(
        data=data,
        classes=classes,
        layers=layers,
        batchnorm=batchnorm,
        model=model_kind,
        conv=conv,
        pool=pool,
        instance_norm=instance_norm,
        optimizer=optimizer,
        lr=DEFAULT_LR[optimizer] if lr is None else lr,
        beta=beta,
        decay=decay,
        epochs=epochs,
        batch_size=batch_size,
        l2=l2,
        keep_prob=keep_prob,
        normalize=normalize,
        image_size=image_size,
        backend=backend,
        threads=threads,
        seed=seed,
        augment=augment,
    )
    settings.train_spec()  # validate early
    settings.check_model()
    _check_backend(backend)
    dataset = _load(settings)
    _build_model(dataset, settings)  # blocks too deep for the images fail here, before any folder
    folder = _run_folder(out, name, settings)
    result = _train_with_progress(dataset, settings)
    metrics = _save(folder, dataset, settings, result)
    _report(folder, metrics, result, settings.lr)
    if result.outcome == "diverged":
        click.get_current_context().exit(1)


def _run_folder(out: Path, name: str | None, settings: TrainSettings) -> Path:
    try:
        hidden: tuple[int | str, ...] = settings.layers
        if settings.model == "cnn":
            hidden = ("cnn", *(f"{f}x{k}" for f, k in settings.conv), *settings.layers)
        return new_run_dir(out, name or run_folder_name(settings.data, hidden))
    except ConfigError as error:  # name the command-line option, not the function argument
        raise ConfigError(f"--{error.field}", error.value, error.expected) from None


def _check_backend(backend: str) -> None:
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            expected = "PyTorch installed for --backend torch: pip install 'tunery[torch]'"
            raise ConfigError("--backend", backend, expected) from None


def _load(settings: TrainSettings) -> Dataset:
    with console_err.status(f"loading {escape(settings.data)}…"):
        return load_dataset(
            settings.data,
            classes=settings.classes,
            normalize=settings.normalize,  # type: ignore[arg-type]
            seed=settings.seed,
            image_size=settings.image_size,
        )


# ---------------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """What training produced: the model (NumPy, whatever the backend) and its ``History``."""

    model: MLP | CNN
    history: History
    seconds: float

    @property
    def outcome(self) -> str:
        return self.history.outcome

    @property
    def diverged_at(self) -> int | None:
        bad = [m.epoch for m in self.history if m.diverged]
        return bad[0] if bad else None


EpochCallback = Callable[[EpochMetrics], None]


def _train_with_progress(dataset: Dataset, settings: TrainSettings) -> TrainResult:
    progress = Progress(
        TextColumn("[bold]epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )
    # Written to a file or a pipe, the bar is drawn only once, at the end: log a line per tenth.
    log_every = 0 if console.is_terminal else max(1, settings.epochs // 10)
    with progress:
        task = progress.add_task("train", total=settings.epochs, metrics="")

        def on_epoch(metrics: EpochMetrics) -> None:
            summary = _epoch_summary(metrics)
            progress.update(task, completed=metrics.epoch, metrics=summary)
            if log_every and (metrics.epoch % log_every == 0 or metrics.diverged):
                progress.console.print(f"epoch {metrics.epoch}/{settings.epochs}  {summary}")

        model = _build_model(dataset, settings)
        start = time.perf_counter()
        with threadpool_limits(limits=settings.threads):
            history = _train(model, dataset, settings, on_epoch)
        return TrainResult(model, history, time.perf_counter() - start)


def _epoch_summary(metrics: EpochMetrics) -> str:
    parts = [f"cost {metrics.cost:.4g}", f"train {metrics.train_accuracy:.3f}"]
    if metrics.val_accuracy is not None:
        parts.append(f"val {metrics.val_accuracy:.3f}")
    return "  ".join(parts)


def _build_model(dataset: Dataset, settings: TrainSettings) -> MLP | CNN:
    shape = (dataset.num_features, dataset.image_shape, dataset.num_classes)
    return build_network(settings, shape, prefix="--")


def _train(
    model: MLP | CNN, dataset: Dataset, settings: TrainSettings, on_epoch: EpochCallback
) -> History:
    """Train ``model`` in place (the torch engine copies its weights back: runs save as NumPy)."""
    spec = settings.train_spec()
    if spec.backend == "torch":
        import torch  # an optional extra, seconds to load: only here

        torch.set_num_threads(settings.threads)
    trainer = make_trainer(
        spec,
        model,
        dataset.X_train,
        dataset.y_train,
        X_val=dataset.X_val,
        y_val=dataset.y_val,
        callback=on_epoch,
        engine=augmenting(spec.engine(), settings.augment, dataset, settings.seed),
    )
    return trainer.run(settings.epochs)


# ------------------------------------------------------------------------------------ saving


def _accuracies(model: MLP | CNN, dataset: Dataset, outcome: str) -> dict[str, float | None]:
    """Accuracy per split; ``None`` for a diverged run, whose figures would mean nothing."""
    splits = {
        "train": (dataset.X_train, dataset.y_train),
        "val": (dataset.X_val, dataset.y_val),
        "test": (dataset.X_test, dataset.y_test),
    }
    if outcome == "diverged":
        return {f"{split}_accuracy": None for split in splits}
    # Huge but finite weights may overflow on the way to a prediction: that is not an error here.
    with np.errstate(over="ignore", invalid="ignore"):
        return {
            f"{split}_accuracy": float(np.mean(model.predict(X) == y)) if len(y) else None
            for split, (X, y) in splits.items()
        }


def _save(
    folder: Path, dataset: Dataset, settings: TrainSettings, result: TrainResult
) -> dict[str, Any]:
    costs = result.history.cost
    metrics: dict[str, Any] = {
        **_accuracies(result.model, dataset, result.outcome),
        "final_cost": costs[-1] if costs else None,
        "epochs": len(costs),
        "outcome": result.outcome,
        "diverged_at": result.diverged_at,
        "train_seconds": round(result.seconds, 3),
        "backend": settings.backend,
        "examples": {
            "train": len(dataset.y_train),
            "val": len(dataset.y_val),
            "test": len(dataset.y_test),
        },
    }
    if result.outcome != "diverged" and len(dataset.y_val):
        probabilities = result.model.predict_proba(dataset.X_val)  # what `predict` reports on
        metrics["confidence"] = confidence_threshold(probabilities, dataset.y_val)
    run = TrainedRun(
        model=result.model,
        class_names=dataset.class_names,
        normalizer=dataset.normalizer,
        image_shape=dataset.image_shape,
        source=dataset.source,
        outcome=result.outcome,
        options=settings.options(),
        history=result.history.to_dict(),
        metrics=metrics,
    )
    save_run(run, folder)
    curve = learning_curve(
        costs,
        {
            "train": result.history.train_accuracy,
            "validation": result.history.val_accuracy,
        },
        title=f"{Path(dataset.source).name}  {'-'.join(map(str, result.model.sizes))}",
    )
    render_learning_curve(curve, folder / CURVE_FILE)
    return metrics


def _report(folder: Path, metrics: Mapping[str, Any], result: TrainResult, lr: float) -> None:
    table = Table(title="accuracy", title_justify="left")
    table.add_column("split")
    table.add_column("accuracy", justify="right")
    table.add_column("examples", justify="right")
    for split in ("train", "val", "test"):
        value = metrics[f"{split}_accuracy"]
        shown = "—" if value is None else f"{value:.4f}"
        table.add_row(split, shown, str(metrics["examples"][split]))
    console.print(table)
    console.print(
        f"{metrics['epochs']} epochs in {result.seconds:.1f} s; run saved in "
        f"[bold]{escape(str(folder))}[/]",
        highlight=False,
    )
    if result.outcome == "diverged":
        console_err.print(
            f"[bold red]training diverged[/] at epoch {result.diverged_at}: the cost became "
            f"{result.history.cost[-1]}. Try a smaller --lr (it was {lr:g}). The model, the "
            f"history up to there and the curve are saved in {escape(str(folder))}.",
            highlight=False,
        )
