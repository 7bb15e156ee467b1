"""Objectives for the Ray tests: module-level, so that Ray workers import them by name."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from tunery import Pruned
from tunery._files import stored_location
from tunery.records import FrozenTrial
from tunery.trial import Trial


def steps(trial: Trial) -> float:
    """Three epochs reporting x·epoch/3, asking the pruner after each one."""
    x = float(trial.params["x"])
    for epoch in range(1, 4):
        trial.report(epoch, val_accuracy=x * epoch / 3)
        if epoch < 3 and trial.should_prune():
            raise Pruned(f"trial {trial.number} pruned at epoch {epoch}")
    return x


def broken(trial: Trial) -> float:
    """Raises for x < 0.5; else returns x."""
    if trial.params["x"] < 0.5:
        raise RuntimeError("this trial is broken on purpose")
    return float(trial.params["x"])


def gated(trial: Trial) -> float:
    """Marks its start (with its node, and its process id inside) in the folder
    ``params["gate"]``, then waits there for the file ``open`` (or ``open-<number>``): a test
    knows where each trial runs before it kills a node or the driver."""
    import ray

    gate = Path(str(trial.params["gate"]))
    node = ray.get_runtime_context().get_node_id()
    (gate / f"started-{trial.number}-{node}").write_text(str(os.getpid()))
    while not (gate / "open").exists() and not (gate / f"open-{trial.number}").exists():
        time.sleep(0.05)
    return float(trial.params["x"])


def checkpointing(trial: Trial) -> float:
    """Notes what ``restore()`` finds (user attr ``restored``), checkpoints epoch 1, notes
    whether the file is in ``<gate>/checkpoints`` as soon as ``checkpoint`` returns (written by
    this task, not later by the driver), then waits at the gate as ``gated`` does."""
    restored = trial.restore()
    trial.set_user_attr("restored", None if restored is None else restored.decode())
    handed = trial.stored_checkpoint()  # what the driver sent: where the file is, not its bytes
    trial.set_user_attr("handed", None if handed is None else stored_location(handed))
    trial.checkpoint(f"state of trial {trial.number}".encode(), 1)
    folder = Path(str(trial.params["gate"])) / "checkpoints" / f"trial-{trial.trial_id}"
    trial.set_user_attr("written_here", any(folder.glob("epoch-1-*.ckpt")))
    return gated(trial)


class BelowPruner:
    """Prunes a trial whose latest reported metric is below ``floor`` (needs the report there)."""

    def __init__(self, floor: float) -> None:
        self.floor = floor

    def should_prune(
        self, study_trials: Sequence[FrozenTrial], trial: FrozenTrial, epoch: int
    ) -> bool:
        return trial.curve[epoch]["val_accuracy"] < self.floor
