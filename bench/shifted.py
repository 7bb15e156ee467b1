"""Accuracy on photos unlike the training ones: the signs' test split, and the same split shifted
the way other people's photos differ, for the untuned MLP, the tuned MLP and the tuned MLP with
its augmentation searched too (NumPy engine and PyTorch twin, 3 model seeds).

    nice -n 10 python bench/shifted.py               # full (about 15-25 min on 2 busy cores)
    python bench/shifted.py --quick --out /tmp/s     # seconds: 8 × 8 inputs, tiny budgets, 1 seed

Data: the signs 0-5 (``load_dataset(photos, classes="0-5", seed=0)``: 865 train / 186 validation
/ 186 test), at ``--size`` pixels a side (32). The shifted split is built once, with a fixed seed,
from the 64 × 64 test photos, which are then resized like every photo (Lanczos) — so the
shifted photos go through the same loader as the clean ones. Per photo (``shift_photo``):

- the background (light, unsaturated pixels) tinted towards a random colour (50-90 %);
- the light's colour temperature: white balance of a black body at 2,800-4,500 K or 7,500-10,000 K
  against 6,500 K (gains on all three channels, from Tanner Helland's fit of the Planck colours);
- a hue shift of 0.03-0.08 of the circle either way, in HSV (``matplotlib.colors``);
- an exposure curve: gamma 0.7-1.4;
- rotation by 20-40° either way about a point up to 8 % off centre, zoom by 0.8-0.9 or 1.1-1.2,
  bilinear with the border mirrored (``scipy.ndimage.affine_transform``);
- a blur of σ 0.3-1.0 pixels (another camera's focus).

How that differs from what the search may use (``AUGMENT_SPACE``): the search rotates by at most
30° about the centre and zooms by 0.9-1.1 (nearest pixel, edge repeated); the shifted set rotates
by 20-40° (mostly beyond 30°) about an off-centre point, zooms only outside 0.9-1.1, and bilinear
with a mirrored border. The search's colour changes are a linear red-up/blue-down temperature and
a turn of the colours about the grey axis of at most 0.05; the shifted set uses black-body white
balance, HSV hue shifts up to 0.08, gamma curves, background tints and blur, none of which the
search has. The channel mix (rows (h), (i)) mixes the three channels by a signed 3 × 3 matrix
whose rows are scaled to absolute sum 1, so it never scales one channel alone: it is no white
balance, tint, hue shift or gamma. So the table measures how augmentation carries over to
changes it never saw.

Rows: (a) ``tunery train``'s defaults (25-12-6, batch norm, Adam lr 1e-3, batch 64, 100 epochs);
(b) the MLP tuned by a study over lr, β, batch size, L2, keep_prob, units and num_layers;
(c) the same study with the ``[data.augment]`` amounts searched too; (d) the tuned CNN with
searched augmentation (``CNN_SPACE``: the convolutional shape instead of the MLP's units, layers
and dropout); (f) the same as (d) with each photo standardized per colour channel before the
first convolution (``[model] instance_norm = true``, fixed); (e) and (g), only when asked for
(``--rows eg``): the studies of (b) and (f) with every augmentation amount fixed at the top of
its searched range (ablations: do larger amounts than validation picks help on the shifted
split?); (h) the study of (f) with the channel mix searched too (``MIXED_SPACE``), selecting on the
clean validation photos and 3 copies changed by every amount at its largest
(``[data.validation_augment]``, ``CHANGED_VALIDATION``); (i), an ablation, (g) with the channel mix
at its largest too; (j) the study of (h) with one changed copy of the validation photos instead of
3 (clean and changed photos weigh the same). Each study runs once (NumPy,
model seed 0) and selects on validation accuracy; its winner is then trained with seeds 0, 1, 2 on
both engines, and only that touches the test splits. "unsure" is the share of answers below the
run's confidence threshold (``tunery.trained.confidence_threshold``, from the validation split):
what ``tunery predict`` would flag.
"""

# ruff: noqa: E402 - the thread variables must be set before NumPy, SciPy or torch is imported.

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import datetime as dt
import importlib.util
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy import ndimage

from tunery import ConfigError, Diverged
from tunery.config import TuneConfig, config_from_dict
from tunery.data import Dataset, load_dataset
from tunery.trained import confidence_threshold
from tunery.workflows.objective import build_trainer, run_study

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "sign-language-digits" / "images"
SHIFT_SEED = 20_261_203
TUNED_SPACE: dict[str, Any] = {
    "lr": {"low": 1e-4, "high": 1e-1, "scale": "log"},
    "beta": {"low": 0.8, "high": 0.999, "scale": "one_minus_log"},
    "batch_size": {"choices": [16, 32, 64, 128]},
    "l2": {"low": 1e-3, "high": 10.0, "scale": "log"},
    "keep_prob": {"low": 0.5, "high": 1.0},
    "units": {"low": 16, "high": 256, "scale": "log"},
    "num_layers": {"low": 1, "high": 3},
}
AUGMENT_SPACE: dict[str, Any] = {
    "augment.rotation": {"low": 0.0, "high": 30.0},
    "augment.scale": {"low": 0.0, "high": 0.1},
    "augment.flip": {"choices": [True, False]},
    "augment.brightness": {"low": 0.0, "high": 0.3},
    "augment.contrast": {"low": 0.0, "high": 0.3},
    "augment.hue": {"low": 0.0, "high": 0.05},
    "augment.temperature": {"low": 0.0, "high": 0.15},
}
# Rows (h), (i): the channel mix too (newer than rows a-g, which were measured without it).
MIXED_SPACE: dict[str, Any] = {**AUGMENT_SPACE, "augment.mix": {"low": 0.0, "high": 0.3}}


def largest(space: dict[str, Any]) -> dict[str, Any]:
    """Every amount of ``space`` at the top of its searched range (and the mirror on)."""
    return {
        name.removeprefix("augment."): (True if "choices" in rule else rule["high"])
        for name, rule in space.items()
    }


# Rows (e), (g), (i), ablations not selected on validation: every amount at its largest.
LARGEST: dict[str, Any] = largest(AUGMENT_SPACE)
# Row (h) selects on the clean validation photos and 3 copies changed by the largest amounts.
CHANGED_VALIDATION: dict[str, Any] = {"validation_augment": largest(MIXED_SPACE),
                                      "validation_copies": 3}  # fmt: skip
MLP_MODEL: dict[str, Any] = {"layers": [25, 12], "batchnorm": True, "optimizer": "adam"}
# The CNN's head is one dense layer of 64; dropout is not in the CNN (keep_prob would be refused),
# so its study searches the optimizer, the batch and L2, and the convolutional shape instead.
CNN_MODEL: dict[str, Any] = {**MLP_MODEL, "kind": "cnn", "conv": [[16, 3], [32, 3]], "layers": [64]}
# Row (f): each photo standardized per colour channel first (InstanceNorm2d), fixed, not searched:
# validation photos come from the same collection, so a search would not see what it is for.
CNN_NORMED: dict[str, Any] = {**CNN_MODEL, "instance_norm": True}
CNN_SPACE: dict[str, Any] = {
    **{k: v for k, v in TUNED_SPACE.items() if k in ("lr", "beta", "batch_size", "l2")},
    "filters": {"low": 8, "high": 32},
    "kernel": {"choices": [3, 5]},
    "conv_blocks": {"low": 2, "high": 3},
}


# -- the shifted split ----------------------------------------------------------------------------


def kelvin_gains(kelvin: float) -> np.ndarray:
    """RGB gains that white-balance a 6,500 K camera under a black body at ``kelvin`` (Tanner
    Helland's fit of the Planck colours, each channel relative to 6,500 K)."""

    def colour(k: float) -> np.ndarray:
        t = k / 100
        red = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
        green = 99.47 * np.log(t) - 161.1 if t <= 66 else 288.1 * (t - 60) ** -0.0755
        blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5 * np.log(t - 10) - 305.0)
        return np.asarray(np.clip(np.array([red, green, blue]), 1, 255))

    return np.asarray(colour(kelvin) / colour(6_500))


def shift_photo(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One 64 × 64 × 3 photo in [0, 1] as another person's camera might take it (module doc)."""
    hsv = rgb_to_hsv(pixels)
    background = ndimage.gaussian_filter(((hsv[..., 1] < 0.25) & (hsv[..., 2] > 0.35)) * 1.0, 1.5)
    tint = hsv_to_rgb(np.array([rng.random(), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.9)]))
    weight = rng.uniform(0.5, 0.9) * background[..., None]
    out = pixels * (1 - weight) + tint * weight
    warm = rng.random() < 0.5
    kelvin = rng.uniform(2_800, 4_500) if warm else rng.uniform(7_500, 10_000)
    out = np.clip(out * kelvin_gains(kelvin), 0, 1)
    hsv = rgb_to_hsv(out)
    hsv[..., 0] = (hsv[..., 0] + rng.choice([-1, 1]) * rng.uniform(0.03, 0.08)) % 1.0
    out = hsv_to_rgb(hsv) ** rng.uniform(0.7, 1.4)
    angle = np.deg2rad(rng.choice([-1, 1]) * rng.uniform(20, 40))
    zoom = rng.choice([rng.uniform(0.8, 0.9), rng.uniform(1.1, 1.2)])
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / zoom
    side = pixels.shape[0]
    pivot = (side - 1) / 2 + rng.uniform(-0.08, 0.08, 2) * side
    offset = pivot - matrix @ pivot
    sigma = rng.uniform(0.3, 1.0)
    channels = [
        ndimage.gaussian_filter(
            ndimage.affine_transform(out[..., c], matrix, offset=offset, order=1, mode="mirror"),
            sigma,
        )
        for c in range(3)
    ]
    return np.asarray(np.clip(np.stack(channels, axis=-1), 0, 1))


def resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """Photos ``(N, 64, 64, 3)`` in [0, 1] → rows ``(N, size²·3)`` in [0, 1], as the loader does."""
    rows = []
    for photo in pixels:
        image = Image.fromarray(np.round(photo * 255).astype(np.uint8))
        small = image.resize((size, size), Image.Resampling.LANCZOS)
        rows.append(np.asarray(small, dtype=np.float32).reshape(-1) / 255)
    return np.stack(rows)


def shifted_test(full: Dataset, small: Dataset, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The shifted test rows for ``small`` (normalized like its own) and, as a check, the clean
    test photos resized the same way (which must match ``small.X_test``)."""
    mean, std = full.normalizer.mean, full.normalizer.std
    assert mean is not None
    assert std is not None
    photos = (full.X_test * std + mean).reshape(-1, 64, 64, 3).clip(0, 1)
    rng = np.random.default_rng(SHIFT_SEED)
    shifted = np.stack([shift_photo(photo, rng) for photo in photos])
    clean = small.normalizer.transform(resized(photos, size))
    return small.normalizer.transform(resized(shifted, size)), clean


# -- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    trials: int
    rounds: int
    epochs: int
    untuned_epochs: int
    seeds: tuple[int, ...]
    workers: int

    def run_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"trials": self.trials, "rounds": self.rounds, "sampler": "random"}
        table.update({"workers": self.workers, "epochs": self.epochs, "pruner": "none"})
        if self.epochs >= 40:
            options = {"min_epochs": self.epochs // 4, "reduction_factor": 2}
            table.update({"pruner": "asha", "pruner_options": options})
        return table

    def describe(self) -> str:
        pruning = "ASHA from epoch E/4, η = 2" if self.epochs >= 40 else "no pruning"
        per_round = self.trials // self.rounds
        return f"{self.rounds} rounds × {per_round} trials × {self.epochs} epochs, {pruning}"


FULL = Budget(trials=24, rounds=2, epochs=80, untuned_epochs=100, seeds=(0, 1, 2), workers=2)
QUICK = Budget(trials=6, rounds=2, epochs=3, untuned_epochs=3, seeds=(0,), workers=1)


def config_of(
    name: str, data: dict[str, Any], model: dict[str, Any], space: dict[str, Any], budget: Budget
) -> TuneConfig:
    tables = {"study": {"name": name, "storage": ":memory:", "seed": 0}, "data": data,
              "model": model, "space": space, "run": budget.run_table()}  # fmt: skip
    return config_from_dict(tables)


def evaluate(
    config: TuneConfig, params: dict[str, Any], data: Dataset, shifted: np.ndarray, epochs: int,
    seed: int, backend: str,
) -> dict[str, Any]:  # fmt: skip
    model = replace(config.model, seed=seed, backend=backend, epochs=epochs)  # type: ignore[arg-type]
    config = replace(config, model=model, run=replace(config.run, epochs=epochs))
    trainer = build_trainer(config, params, data)
    start = time.perf_counter()
    try:
        trainer.run(epochs)
    except Diverged:
        return {"seed": seed, "backend": backend, "outcome": "diverged"}
    net = trainer.model
    confidence = confidence_threshold(net.predict_proba(data.X_val), data.y_val)
    threshold = confidence["threshold"] or 0.5
    result: dict[str, Any] = {"seed": seed, "backend": backend, "outcome": "complete"}
    for split, X in (("clean", data.X_test), ("shifted", shifted)):
        probabilities = net.predict_proba(X)
        right = probabilities.argmax(axis=1) == data.y_test
        sure = probabilities.max(axis=1) >= threshold
        result[split] = float(right.mean())
        result[f"{split}_unsure"] = float(1 - sure.mean())
        result[f"{split}_sure_accuracy"] = float(right[sure].mean()) if sure.any() else None
    result["threshold"] = threshold
    result["seconds"] = time.perf_counter() - start
    return result


def run_row(
    key: str, label: str, config: TuneConfig, tuned: bool, data: Dataset, shifted: np.ndarray,
    budget: Budget, backends: tuple[str, ...], winner: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One row: its study (or ``winner``, a study's record from an earlier run), then the
    winner trained with every seed on every engine."""
    row: dict[str, Any] = {"key": key, "label": label, "runs": []}
    params: dict[str, Any] = {}
    epochs = budget.epochs if tuned else budget.untuned_epochs
    if tuned and winner is not None:
        row["study"] = {**winner, "reused": True}
        params = dict(winner["params"])
    elif tuned:
        start = time.perf_counter()
        study = run_study(config)
        params = dict(study.best_trial.params)
        row["study"] = {"seconds": time.perf_counter() - start, "params": params,
                        "val": study.best_trial.value, "trials": len(study.trials)}  # fmt: skip
        print(f"({key}) study: {row['study']}", flush=True)
    for backend in backends:
        for seed in budget.seeds:
            run = evaluate(config, params or {"lr": 1e-3}, data, shifted, epochs, seed, backend)
            print(f"({key}) {backend} seed {seed}: {run}", flush=True)
            row["runs"].append(run)
    row["epochs"] = epochs
    return row


def reused_rows(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return rows


def summary(values: list[float]) -> str:
    return f"{np.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def table(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    lines = ["| row | engine | epochs | clean test | shifted test | unsure clean | unsure shifted "
             "| shifted, sure answers |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        for backend in sorted({run["backend"] for run in row["runs"]}):
            runs = [
                r for r in row["runs"] if r["backend"] == backend and r["outcome"] == "complete"
            ]
            if not runs:
                lines.append(f"| ({row['key']}) {row['label']} | {backend} | — | diverged |")
                continue
            sure = [r["shifted_sure_accuracy"] for r in runs if r["shifted_sure_accuracy"]]
            cells = [summary([r[k] for r in runs]) for k in
                     ("clean", "shifted", "clean_unsure", "shifted_unsure")]  # fmt: skip
            cells.append(summary(sure) if sure else "—")
            lines.append(f"| ({row['key']}) {row['label']} | {backend} | {row['epochs']} | "
                         + " | ".join(cells) + " |")  # fmt: skip
    lines += [f"| skipped | {reason} |" for reason in skipped]
    return "\n".join(lines)


def winner(row: dict[str, Any]) -> str:
    study = row["study"]
    again = ", the study of an earlier run (--winners)" if study.get("reused") else ""
    return (f"- ({row['key']}) winner: {study['params']} (validation {study['val']:.3f}, "
            f"{study['trials']} trials, {study['seconds'] / 60:.1f} min{again})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", type=Path, default=PHOTOS)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rows", default="abcdfh", help="of abcdefghij; e, g, i: ablations")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks")
    parser.add_argument(
        "--winners", type=Path, help="a shifted.json whose rows' study winners are reused "
        "(their studies are not run again; the table says so)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: no photos at {args.data} (see ../shared/data/README.md)")
        return
    budget, size = (QUICK, 8) if args.quick else (FULL, args.size)
    backends = ("numpy", "torch") if importlib.util.find_spec("torch") else ("numpy",)
    start = time.perf_counter()
    load = os.getloadavg()
    full = load_dataset(args.data, classes="0-5", image_size=64, seed=0)
    data = load_dataset(args.data, classes="0-5", image_size=size, seed=0)
    assert np.array_equal(full.y_test, data.y_test)
    shifted, clean = shifted_test(full, data, size)
    # The clean photos resized here are the loader's (up to the JPEG decode's rounding): the
    # shifted split goes through the same pipeline as the split it is compared with.
    assert np.abs(clean - data.X_test).mean() < 0.05, np.abs(clean - data.X_test).mean()
    source = {"source": str(args.data), "classes": "0-5", "seed": 0, "image_size": size}
    rows, skipped = [], []
    winners = {row["key"]: row["study"] for row in reused_rows(args.winners) if "study" in row}
    plans = {
        "a": ("untuned MLP 25-12-6 (tunery train's defaults)", MLP_MODEL, None),
        "b": ("tuned MLP", MLP_MODEL, TUNED_SPACE),
        "c": ("tuned MLP, augmentation searched", MLP_MODEL, {**TUNED_SPACE, **AUGMENT_SPACE}),
        "d": ("tuned CNN, augmentation searched", CNN_MODEL, {**CNN_SPACE, **AUGMENT_SPACE}),
        "e": ("tuned MLP, augmentation fixed at the search's largest amounts", MLP_MODEL,
              TUNED_SPACE),
        "f": ("tuned CNN with instance norm, augmentation searched", CNN_NORMED,
              {**CNN_SPACE, **AUGMENT_SPACE}),
        "g": ("tuned CNN with instance norm, augmentation fixed at the search's largest amounts",
              CNN_NORMED, CNN_SPACE),
        "h": ("tuned CNN with instance norm, augmentation with the channel mix searched, selected "
              "on changed validation photos too", CNN_NORMED, {**CNN_SPACE, **MIXED_SPACE}),
        "i": ("tuned CNN with instance norm, augmentation with the channel mix fixed at the "
              "largest amounts", CNN_NORMED, CNN_SPACE),
        "j": ("the study of (h) with 1 changed copy of the validation photos, not 3", CNN_NORMED,
              {**CNN_SPACE, **MIXED_SPACE}),
    }  # fmt: skip
    extra_data = {"e": {"augment": LARGEST}, "g": {"augment": LARGEST},
                  "h": CHANGED_VALIDATION, "i": {"augment": largest(MIXED_SPACE)},
                  "j": {**CHANGED_VALIDATION, "validation_copies": 1}}  # fmt: skip
    for key in args.rows:
        label, model, space = plans[key]
        reason = None
        try:
            epochs = budget.untuned_epochs if space is None else budget.epochs
            fixed = space or {"lr": {"low": 1e-3, "high": 1e-3}}
            tables = {**source, **extra_data.get(key, {})}
            config = config_of(f"shifted-{key}", tables, {**model, "epochs": epochs}, fixed,
                               budget)  # fmt: skip
        except ConfigError as error:
            reason = reason or f"the config is refused: {error}"
        if reason is not None:
            print(f"({key}) {label}: skipped: {reason}", flush=True)
            skipped.append(f"({key}) {label}: {reason}")
            continue
        rows.append(run_row(key, label, config, space is not None, data, shifted, budget,
                            backends, winners.get(key)))  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    command = shlex.join(["python", *sys.argv])
    header = (f"- command: `{command}`\n- machine: {platform.platform()}, {os.cpu_count()} CPUs;"
              f" date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
              f"wall time {minutes:.1f} min; load average at the start {load[0]:.2f} "
              f"(1 min), {load[1]:.2f} (5 min), at the end {os.getloadavg()[0]:.2f}\n"
              f"- studies: {budget.describe()}, {budget.workers} worker(s); seeds "
              f"{', '.join(map(str, budget.seeds))}; inputs {size} × {size} RGB\n")  # fmt: skip
    studies = "\n".join(winner(row) for row in rows if "study" in row)
    text = header + "\n" + table(rows, skipped) + "\n\n" + studies + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shifted.md").write_text(text, encoding="utf-8")
    (args.out / "shifted.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
