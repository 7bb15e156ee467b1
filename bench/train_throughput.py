"""Training throughput of the NumPy engine and its PyTorch twin, side by side, in one run.

Each engine trains the same float32 MLP (batch norm, ReLU, Adam) on the same random data, with the
same seeded mini-batches, and the timer covers whole training steps: shuffling, gathering the
batch, forward, cost, backward and the optimizer step (not the end-of-epoch accuracy pass). Each
figure is the best of several timed epochs after a warm-up epoch. PyTorch runs at its fastest
reasonable settings: ``Adam(fused=True)`` and as many threads as the NumPy BLAS gets.

    python bench/train_throughput.py              # one thread, both cases
    python bench/train_throughput.py --threads 2
    python bench/train_throughput.py --quick      # a few seconds (CI smoke test)
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tunery.nn import MLP
from tunery.nn.optimizers import make_optimizer
from tunery.nn.torch import TorchTrainer
from tunery.nn.train import Trainer


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple[int, ...]
    batch_size: int


CASES = (
    Case("small", (12288, 25, 12, 6), 32),
    Case("wide", (12288, 256, 128, 10), 128),
)


def training_steps(trainer: Trainer) -> Callable[[], None]:
    """One epoch of the trainer's training steps, through its engine (so the end-of-epoch
    accuracy pass stays out of the timing). The same function times both engines."""

    def run() -> None:
        trainer.engine.start_epoch()
        for index in trainer.draw_batches():
            trainer.engine.train_batch(index, trainer.l2)

    return run


def best_seconds(
    epochs: Sequence[Callable[[], None]], repeats: int, clock: Callable[[], float]
) -> list[float]:
    """Warm each epoch function up once, then the fastest of ``repeats`` timed runs of each.

    The engines take turns, so a change of load on a shared machine hits both alike.
    """
    for epoch in epochs:
        epoch()
    best = [math.inf] * len(epochs)
    for _ in range(repeats):
        for i, epoch in enumerate(epochs):
            start = clock()
            epoch()
            best[i] = min(best[i], clock() - start)
    return best


def measure(case: Case, rows: int, repeats: int, clock: Callable[[], float]) -> tuple[float, float]:
    """Examples per second of (NumPy, PyTorch) on ``case``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, case.sizes[0]), dtype=np.float32)
    y = rng.integers(0, case.sizes[-1], rows)
    size = case.batch_size
    ours = Trainer(MLP(case.sizes), make_optimizer("adam", lr=1e-3), X, y, batch_size=size)
    twin = TorchTrainer(MLP(case.sizes), make_optimizer("adam", lr=1e-3), X, y, batch_size=size)
    if not twin.engine.torch_optimizer.param_groups[0].get("fused"):
        raise RuntimeError("expected a fused Adam on this device")
    numpy_seconds, torch_seconds = best_seconds(
        [training_steps(ours), training_steps(twin)], repeats, clock
    )
    return rows / numpy_seconds, rows / torch_seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--quick", action="store_true", help="a few seconds (smoke test)")
    parser.add_argument("--rows", type=int, default=None, help="training examples (2048)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (5)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: the process's CPU time, steadier on a busy machine (for one thread)",
    )
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows = args.rows or (256 if args.quick else 2048)
    repeats = args.repeats or (3 if args.quick else 5)

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        print(
            f"float32, Adam, {rows} random rows, best of {repeats}, {args.threads} thread(s), "
            f"{args.clock} clock"
        )
        print(f"{'case':<28}{'numpy ex/s':>12}{'torch ex/s':>12}{'numpy/torch':>13}")
        for case in CASES:
            numpy_speed, torch_speed = measure(case, rows, repeats, clock)
            label = f"{'-'.join(map(str, case.sizes))} @{case.batch_size}"
            ratio = numpy_speed / torch_speed
            print(f"{label:<28}{numpy_speed:>12,.0f}{torch_speed:>12,.0f}{ratio:>12.2f}x")


if __name__ == "__main__":
    main()
