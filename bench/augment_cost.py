"""What augmenting every training epoch costs: per-epoch time without augmentation, with it in the
foreground, and with the next epoch prefetched by a thread, side by side in one run.

The trainer trains the same network (two MLPs, batch norm, ReLU; and the CNN of
``examples/signs-cnn.toml``: two blocks of 16 and 32 3 × 3 filters, a dense head of 64; Adam,
batch 64) on 32 × 32 RGB rows, the signs
photos if they are there (``--data``) and random pixels otherwise, with every transform of
``[data.augment]`` on (rotation 15, scale 0.1, flip, brightness 0.2, contrast 0.2, hue 0.05,
temperature 0.1). An epoch is timed from ``start_epoch`` (where the augmented set is made or
picked up from the thread) through every training step; the end-of-epoch accuracy pass is left
out. Each mode runs its epochs one after another (prefetching overlaps one epoch with the next, so
interleaving modes would hide its cost in another mode's epoch); the modes take turns by rounds,
and each figure is the median of the rounds' mean epoch times.

    python bench/augment_cost.py                 # both cases, 3 rounds of 4 epochs
    python bench/augment_cost.py --quick         # seconds: a smoke test for CI
    python bench/augment_cost.py --profile       # where the augmentation's time goes (cProfile)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from tunery.data import Augmenter, AugmentSettings, Dataset, load_dataset
from tunery.nn import CNN, MLP
from tunery.nn.engine import EngineFactory, NumpyEngine
from tunery.nn.optimizers import make_optimizer
from tunery.nn.train import Trainer
from tunery.workflows.augmenting import augmenting_engine

SIGNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sign-language-digits" / "images"
EVERYTHING = AugmentSettings(
    rotation=15, scale=0.1, flip=True, brightness=0.2, contrast=0.2, hue=0.05, temperature=0.1
)
CASES: dict[str, tuple[int, ...]] = {"25-12": (25, 12), "256-128": (256, 128), "cnn": (64,)}
"""Hidden widths of each MLP, and the dense head of the CNN (``"cnn"``)."""
MODES = ("none", "foreground", "prefetch")


def signs_or_random(data: Path, size: int) -> tuple[Dataset | None, np.ndarray, np.ndarray]:
    """The signs (classes 0-5) at ``size`` if present, else random pixels of the same shape."""
    if data.is_dir():
        dataset = load_dataset(data, classes="0-5", image_size=size, seed=0)
        return dataset, dataset.X_train, dataset.y_train
    rng = np.random.default_rng(0)
    return (
        None,
        rng.standard_normal((1_443, size * size * 3), dtype=np.float32),
        rng.integers(0, 6, 1_443),
    )


def make_model(name: str, features: int, size: int) -> MLP | CNN:
    if name == "cnn":
        return CNN((size, size, 3), 6, conv=((16, 3), (32, 3)), dense=CASES[name], seed=0)
    return MLP([features, *CASES[name], 6], batchnorm=True, seed=0)


def make_trainer(
    name: str, X: np.ndarray, y: np.ndarray, mode: str, augmenter: Augmenter
) -> Trainer:
    model = make_model(name, X.shape[1], augmenter.height)
    engine: EngineFactory = NumpyEngine
    if mode != "none":
        engine = augmenting_engine(NumpyEngine, augmenter, seed=0, prefetch=mode == "prefetch")
    return Trainer(model, make_optimizer("adam", lr=1e-3), X, y, batch_size=64, engine=engine)


def epoch_seconds(trainer: Trainer, epochs: int) -> float:
    """Mean wall time of ``epochs`` consecutive epochs (after one warm-up epoch)."""

    def epoch() -> None:
        trainer.engine.start_epoch()
        for index in trainer.draw_batches():
            trainer.engine.train_batch(index, trainer.l2)
        trainer.engine.end_epoch()

    epoch()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - start) / epochs


def measure(
    name: str, X: np.ndarray, y: np.ndarray, augmenter: Augmenter, rounds: int,
    epochs: int,
) -> dict[str, float]:  # fmt: skip
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            times[mode].append(epoch_seconds(make_trainer(name, X, y, mode, augmenter), epochs))
    return {mode: statistics.median(values) for mode, values in times.items()}


def profile(augmenter: Augmenter, X: np.ndarray) -> None:
    pixels = augmenter.pixels(X)
    rng = np.random.default_rng(0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        augmenter.augment_pixels(pixels, rng)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test of a few seconds")
    parser.add_argument("--data", type=Path, default=SIGNS)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    size, rounds, epochs = (8, 1, 1) if args.quick else (args.size, args.rounds, args.epochs)
    dataset, X, y = signs_or_random(Path("/nonexistent") if args.quick else args.data, size)
    mean = None if dataset is None else dataset.normalizer.mean
    std = None if dataset is None else dataset.normalizer.std
    augmenter = Augmenter(EVERYTHING, (size, size, 3), mean=mean, std=std)
    print(f"data: {'signs 0-5' if dataset else 'random pixels'}, {len(X)} rows of {size}×{size}×3;"
          f" 1 BLAS thread; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with threadpool_limits(limits=1, user_api="blas"):
        if args.profile:
            profile(augmenter, X)
            return
        print(f"{'network':>8} {'none s':>8} {'fg s':>8} {'prefetch s':>10} {'fg/none':>8} "
              f"{'pre/none':>9}")  # fmt: skip
        for name in CASES:
            if args.quick and name == "256-128":
                continue
            t = measure(name, X, y, augmenter, rounds, epochs)
            ratios = t["foreground"] / t["none"], t["prefetch"] / t["none"]
            times = f"{t['none']:8.3f} {t['foreground']:8.3f} {t['prefetch']:10.3f}"
            print(f"{name:>8} {times} {ratios[0]:8.2f} {ratios[1]:9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
