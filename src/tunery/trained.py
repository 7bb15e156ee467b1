"""The run folder: one trained model with everything needed to use it again.

``tunery train`` writes one folder per run; ``tunery predict`` (and anyone else) reads it back with
``load_run``. The layout::

    runs/20240131-142501-digits-25-12/
        run.json        format version, the model config, class names, the normalizer, image_shape,
                        source, outcome, training options (the only file ``load_run`` needs
                        besides the weights)
        model.npz       weights and batch-norm running statistics, under ``state_dict()`` keys
        history.json    per-epoch numbers: {"epoch": [...], "cost": [...], ...}
        metrics.json    final figures: train/val/test accuracy, epochs, wall time, outcome
        curve.png       the learning curve (written by the caller, see ``tunery.report``)

Everything is JSON or ``.npz`` (read with ``allow_pickle=False``): a run folder holds no pickles,
so opening one cannot run code, and a model trained with the PyTorch backend is stored in the
same NumPy form. JSON has no NaN, so a non-finite number (the cost of a diverged run) is written
as ``null`` and read back as NaN.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tunery._exceptions import ConfigError, DataError
from tunery.data import Normalizer
from tunery.nn import MLP, Array
from tunery.nn.cnn import CNN, model_from_config

__all__ = [
    "CONFIDENCE_KEEP",
    "CURVE_FILE",
    "HISTORY_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "RUN_FILE",
    "RUN_FORMAT",
    "UNSURE_FALLBACK",
    "TrainedRun",
    "confidence_threshold",
    "load_run",
    "new_run_dir",
    "run_folder_name",
    "save_run",
]

RUN_FORMAT = 1
RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.png"

_NOT_A_RUN = f"a run folder written by `tunery train` (with {RUN_FILE} and {MODEL_FILE})"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A trained model and what it needs to classify new inputs.

    ``model`` maps normalized rows ``(N, D)`` to ``C`` classes; ``class_names: (C,)`` names them;
    ``normalizer`` maps rows in [0, 1] to the model's inputs; ``image_shape`` is the shape one row
    came from (``(64, 64, 3)`` for photos, ``(8, 8)`` for the digits). ``history`` holds per-epoch
    lists, ``metrics`` the final figures, ``options`` the settings it was trained with.
    """

    model: MLP | CNN
    class_names: tuple[str, ...]
    normalizer: Normalizer
    image_shape: tuple[int, ...] | None = None
    source: str = ""
    outcome: str = "complete"
    options: Mapping[str, Any] = field(default_factory=dict)
    history: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        inputs, classes = self.model.sizes[0], self.model.sizes[-1]
        if len(self.class_names) != classes:
            raise ConfigError("class_names", self.class_names, f"{classes} names (model outputs)")
        if self.normalizer.num_features != inputs:
            expected = f"{inputs} features (the model's input size)"
            raise ConfigError("normalizer.num_features", self.normalizer.num_features, expected)

    @property
    def is_image_model(self) -> bool:
        """Whether photos can be fed to it: trained on square RGB images (``(S, S, 3)``)."""
        shape = self.image_shape
        return shape is not None and len(shape) == 3 and shape[2] == 3 and shape[0] == shape[1]

    def predict_proba(self, X: Array) -> Array:
        """Rows ``X: (N, D)`` in [0, 1] (pixels ÷ 255) → class probabilities ``(N, C)``."""
        return self.model.predict_proba(self.normalizer.transform(X))

    @property
    def measured_threshold(self) -> float | None:
        """The run's ``metrics["confidence"]["threshold"]`` (``confidence_threshold``), if any."""
        confidence = self.metrics.get("confidence")
        threshold = confidence.get("threshold") if isinstance(confidence, Mapping) else None
        return float(threshold) if isinstance(threshold, int | float) else None

    @property
    def unsure_below(self) -> float:
        """The top probability below which an answer is reported as unsure: the measured
        threshold, or ``UNSURE_FALLBACK`` for a run saved without one."""
        measured = self.measured_threshold
        return UNSURE_FALLBACK if measured is None else measured


UNSURE_FALLBACK = 0.5
"""The threshold of a run that measured none: below 0.5 another class is at least as likely."""
CONFIDENCE_KEEP = 0.95
"""The share of the validation set's right answers whose top probability is above the threshold."""


def confidence_threshold(
    probabilities: Array, labels: Array, keep: float = CONFIDENCE_KEEP
) -> dict[str, float | None]:
    """The top probability below which a prediction is reported as unsure, measured on the
    validation split: the ``1 - keep`` quantile of the top probability of its right answers.

    An answer less confident than ``keep`` (95 %) of the right answers on photos like the training
    ones is unusual for such a photo: it is more likely one from elsewhere (another hand,
    background, light) than a hard case of the same collection. Returns the threshold and what it
    does on the validation split: the share of answers below it and the accuracy on either side
    (``None`` where a side is empty, or every value ``None`` without a right answer).
    """
    top = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    if not right.any():
        return {"threshold": None, "keep": keep, "val_share_below": None,
                "val_accuracy_below": None, "val_accuracy_above": None}  # fmt: skip
    threshold = float(np.quantile(top[right], 1 - keep))
    below = top < threshold

    def accuracy(rows: Array) -> float | None:
        return float(right[rows].mean()) if rows.any() else None

    return {
        "threshold": threshold,
        "keep": keep,
        "val_share_below": float(below.mean()),
        "val_accuracy_below": accuracy(below),
        "val_accuracy_above": accuracy(~below),
    }


# --------------------------------------------------------------------------------------- folders


def run_folder_name(data: str, hidden: Sequence[int | str], now: datetime | None = None) -> str:
    """``<YYYYmmdd-HHMMSS>-<data>-<h1>-<h2>...``, e.g. ``20240131-142501-digits-25-12``.

    ``data`` is the source (``"digits"`` or a path: its last part is used); characters that are
    unsafe in file names become ``_``.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    label = Path(data).name or "data"
    parts = [stamp, _UNSAFE.sub("_", label)] + [str(size) for size in hidden]
    return "-".join(parts)


def new_run_dir(out: str | Path, name: str) -> Path:
    """Create and return a fresh folder ``out/name``; never reuse a folder that holds files.

    ``name`` is one path component. When ``out/name`` already holds files, ``-2``, ``-3``...
    is appended, so two runs started in the same second do not overwrite each other.
    """
    if not name or name in (".", "..") or Path(name).name != name:
        raise ConfigError("name", name, "a folder name (one path component, no '/')")
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise ConfigError("out", str(root), "a folder (it is a file)")
    candidate, suffix = root / name, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        suffix += 1
        candidate = root / f"{name}-{suffix}"
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


# ----------------------------------------------------------------------------------------- save


def save_run(run: TrainedRun, path: str | Path) -> Path:
    """Write ``run`` into the folder ``path`` (created if needed): every file but ``curve.png``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    # Typed loosely: savez's own keyword (allow_pickle) would clash with a key of that name.
    arrays: dict[str, Any] = run.model.state_dict()
    np.savez(folder / MODEL_FILE, **arrays)
    _write_json(folder / HISTORY_FILE, run.history, indent=None)  # long lists: one line
    _write_json(folder / METRICS_FILE, run.metrics)
    # run.json last: a folder with run.json is a complete run.
    _write_json(folder / RUN_FILE, _description(run))
    return folder


def _description(run: TrainedRun) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "model": run.model.config(),
        "class_names": list(run.class_names),
        "normalizer": run.normalizer.to_dict(),
        "image_shape": None if run.image_shape is None else list(run.image_shape),
        "source": run.source,
        "outcome": run.outcome,
        "options": dict(run.options),
    }


def _write_json(path: Path, data: Any, indent: int | None = 1) -> None:
    text = json.dumps(_json_safe(data), indent=indent, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _json_safe(data: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays become Python ones, NaN and inf become None."""
    if isinstance(data, Mapping):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, np.ndarray):
        return _json_safe(data.tolist())
    if isinstance(data, list | tuple):
        return [_json_safe(value) for value in data]
    if isinstance(data, np.generic):
        return _json_safe(data.item())
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Path):
        return str(data)
    return data


# ----------------------------------------------------------------------------------------- load


def load_run(path: str | Path) -> TrainedRun:
    """Read a run folder written by ``save_run``; the model is in eval mode, ready to predict.

    Raises ``ConfigError`` (field ``run``) when ``path`` is not a run folder, and ``DataError``
    naming the file when one of its files cannot be read.
    """
    folder = Path(path).expanduser()
    if not (folder / RUN_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise ConfigError("run", str(folder), _NOT_A_RUN)
    description = _read_json(folder / RUN_FILE)
    if not isinstance(description, dict) or description.get("format") != RUN_FORMAT:
        found = description.get("format") if isinstance(description, dict) else description
        message = f"run format {found!r}, this tunery reads format {RUN_FORMAT}"
        raise DataError(f"{folder / RUN_FILE}: {message}")
    try:
        return _rebuild(folder, description)
    except KeyError as error:
        raise DataError(f"{folder / RUN_FILE}: missing entry {error}") from error


def _rebuild(folder: Path, description: dict[str, Any]) -> TrainedRun:
    model = model_from_config(description["model"])
    model.load_state_dict(_read_weights(folder / MODEL_FILE))
    model.eval()
    shape = description.get("image_shape")
    return TrainedRun(
        model=model,
        class_names=tuple(str(name) for name in description["class_names"]),
        normalizer=Normalizer.from_dict(description["normalizer"]),
        image_shape=None if shape is None else tuple(int(side) for side in shape),
        source=str(description.get("source", "")),
        outcome=str(description.get("outcome", "complete")),
        options=description.get("options", {}),
        history=_optional_json(folder / HISTORY_FILE),
        metrics=_optional_json(folder / METRICS_FILE),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from error


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_weights(path: Path) -> dict[str, Array]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"cannot read the weights in {path}: {error}") from error
