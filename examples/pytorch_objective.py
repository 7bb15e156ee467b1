"""Tune your OWN PyTorch model with tunery: the objective protocol, nothing else.

tunery does not need its engine to tune something. An objective is any function that takes a
``trial``, reads ``trial.params``, trains, calls ``trial.report(epoch, ...)`` after each epoch,
stops when ``trial.should_prune()`` says so (by raising ``tunery.Pruned``), and returns the
metric. Here the model is a small ``torch.nn.Module`` written below, trained on the bundled 8×8
digits, searched coarse to fine over the learning rate, Adam's β1, the width and dropout.

Run it with ``python examples/pytorch_objective.py`` (needs ``pip install 'tunery[torch]'``);
the study is kept in ``pytorch-example.db`` and running it again continues it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import tunery
from tunery.data import Dataset, load_dataset
from tunery.pruners import MedianPruner

SPACE = {
    "lr": tunery.Float(1e-4, 1e-1, scale="log"),
    "beta1": tunery.Float(0.8, 0.999, scale="one_minus_log"),
    "hidden": tunery.Int(16, 128),
    "dropout": tunery.Float(0.0, 0.5),
}


class DigitNet(nn.Module):
    """``x: (N, 64)`` pixels → ``logits: (N, 10)``: Linear → ReLU → Dropout → Linear."""

    def __init__(self, inputs: int, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(inputs, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.body(x)
        return logits


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``X: (N, D)`` that ``model`` labels as ``y: (N,)``, in eval mode."""
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(dim=1) == y).float().mean())


class Objective:
    """``objective(trial) -> validation accuracy`` for ``Study.caviar``."""

    def __init__(self, data: Dataset, epochs: int = 15, batch_size: int = 64) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.X = torch.from_numpy(data.X_train)
        self.y = torch.from_numpy(data.y_train)
        self.X_val = torch.from_numpy(data.X_val)
        self.y_val = torch.from_numpy(data.y_val)
        self.classes = data.num_classes

    def __call__(self, trial: tunery.Trial) -> float:
        p = trial.params
        torch.manual_seed(trial.number)  # each trial's initial weights and batches, reproducible
        model = DigitNet(self.X.shape[1], p["hidden"], self.classes, p["dropout"])
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"], betas=(p["beta1"], 0.999))
        loss_fn = nn.CrossEntropyLoss()
        val_accuracy = 0.0
        for epoch in range(1, self.epochs + 1):
            loss = self.train_epoch(model, optimizer, loss_fn)
            val_accuracy = accuracy(model, self.X_val, self.y_val)
            trial.report(epoch, loss=loss, val_accuracy=val_accuracy)
            if trial.should_prune():
                raise tunery.Pruned(f"pruned at epoch {epoch}")
        return val_accuracy

    def train_epoch(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module
    ) -> float:
        """One pass over shuffled mini-batches; the mean batch loss."""
        model.train()
        total, batches = 0.0, 0
        order = torch.randperm(len(self.X))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(self.X[index]), self.y[index])
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        return total / batches


def main(
    n_trials: int = 24, storage: str = "sqlite:///pytorch-example.db", epochs: int = 15
) -> tunery.Study:
    """Run (or continue) the study: 2 rounds, coarse to fine; print and return it."""
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    data = load_dataset("digits")
    study = tunery.Study(
        "pytorch-digits",
        storage,
        direction="maximize",
        pruner=MedianPruner(warmup_epochs=3, min_trials=4),
    )
    study.caviar(Objective(data, epochs=epochs), SPACE, n_trials=n_trials, rounds=2, workers=1)
    best = study.best_trial
    print(f"best of {len(study.trials)} trials: val_accuracy {best.value:.4f}")
    for name, value in best.params.items():
        print(f"  {name} = {_shown(value)}")
    return study


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
