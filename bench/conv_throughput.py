"""Training throughput of the NumPy CNN and its PyTorch twin, side by side, in one run.

Both engines train the same float32 2-conv network on 32×32 RGB images, batch 64, with the same
seeded mini-batches through the one ``Trainer``: ``[Conv 3×3 → BatchNorm2d → ReLU → MaxPool 2] ×
2`` (16 and 32 filters), then a dense head into 6 classes, Adam (``fused=True`` for PyTorch). The
timer covers whole training steps (gathering the batch, forward, cost, backward, optimizer step);
each figure is the best of several timed epochs after a warm-up one, the engines taking turns.
One thread everywhere: OMP/MKL/OpenBLAS through the environment and threadpoolctl, and
``torch.set_num_threads(1)``.

    python bench/conv_throughput.py            # 1,024 rows, best of 5
    python bench/conv_throughput.py --quick    # a few seconds (CI smoke test)
    python bench/conv_throughput.py --profile  # cProfile of the NumPy epoch, by total time
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"  # before NumPy and torch load their thread pools

import argparse  # noqa: E402 - after the thread settings
import cProfile  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tunery.nn.cnn import CNN  # noqa: E402
from tunery.nn.optimizers import make_optimizer  # noqa: E402
from tunery.nn.torch import TorchTrainer  # noqa: E402
from tunery.nn.train import Trainer  # noqa: E402

IMAGE = (32, 32, 3)
BLOCKS = [[16, 3], [32, 3]]
DENSE = [64]
CLASSES = 6
BATCH = 64


def _training_epoch(trainer: Trainer) -> None:
    trainer.engine.start_epoch()
    for index in trainer.draw_batches():
        trainer.engine.train_batch(index, trainer.l2)


def trainers(rows: int) -> tuple[Trainer, Trainer]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, int(np.prod(IMAGE))), dtype=np.float32)
    y = rng.integers(0, CLASSES, rows)

    def model() -> CNN:
        return CNN(IMAGE, CLASSES, conv=BLOCKS, dense=DENSE, seed=0)

    ours = Trainer(model(), make_optimizer("adam", lr=1e-3), X, y, batch_size=BATCH)
    twin = TorchTrainer(model(), make_optimizer("adam", lr=1e-3), X, y, batch_size=BATCH)
    return ours, twin


def best_seconds(pair: Sequence[Trainer], repeats: int, clock: Callable[[], float]) -> list[float]:
    for trainer in pair:
        _training_epoch(trainer)  # warm-up
    best = [float("inf")] * len(pair)
    for _ in range(repeats):
        for i, trainer in enumerate(pair):
            start = clock()
            _training_epoch(trainer)
            best[i] = min(best[i], clock() - start)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (smoke test)")
    parser.add_argument("--rows", type=int, default=None, help="training examples (1024)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (5)")
    parser.add_argument("--profile", action="store_true", help="cProfile one NumPy epoch")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: the process's CPU time, steadier on a busy machine (one thread)",
    )
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows = args.rows or (128 if args.quick else 1024)
    repeats = args.repeats or (2 if args.quick else 5)
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        ours, twin = trainers(rows)
        if args.profile:
            _training_epoch(ours)
            profiler = cProfile.Profile()
            profiler.runcall(_training_epoch, ours)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
            return
        numpy_seconds, torch_seconds = best_seconds([ours, twin], repeats, clock)
    numpy_speed, torch_speed = rows / numpy_seconds, rows / torch_seconds
    shape = "×".join(map(str, IMAGE))
    print(
        f"float32, Adam, {rows} random {shape} rows, batch {BATCH}, best of {repeats}, 1 thread, "
        f"{args.clock} clock, conv {BLOCKS}, dense {DENSE}"
    )
    print(f"{'numpy ex/s':>12}{'torch ex/s':>12}{'numpy/torch':>13}")
    print(f"{numpy_speed:>12,.0f}{torch_speed:>12,.0f}{numpy_speed / torch_speed:>12.2f}x")


if __name__ == "__main__":
    main()
