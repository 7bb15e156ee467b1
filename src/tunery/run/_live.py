"""The live terminal view of a running study: progress over trials, the best value, running trials.

The coordinator feeds it events (``started``, ``reported``, ``finished``) and calls ``tick()`` in
its loop; the view redraws at most ``refresh_per_second`` times a second and never from a thread
of its own, so it costs the coordinator one dict update per event and a redraw now and then.

    ━━━━━━━━━━━━━━━━━━━━━╺━━━━━━━━━━━━━━━━━━━  12/40 trials  2 running  3 pruned  0:00:42
    best val_accuracy 0.9612 (trial 7)
     trial  epoch  val_accuracy   loss    params
         12      4        0.9021  0.3310  lr=0.00123 units=48
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from rich.console import Console, Group, RenderableType
from rich.errors import LiveError
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tunery.records import FrozenTrial, TrialState
from tunery.run._protocol import AskTell

__all__ = ["LiveView", "live_enabled"]


def live_enabled(live: bool | None, console: Console) -> bool:
    """``live`` if given; by default on in an interactive terminal, off in a pipe or a file."""
    if live is None:
        return console.is_terminal and not console.is_dumb_terminal
    return bool(live)


@dataclass
class _Running:
    params: dict[str, Any]
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class LiveView:
    """What a study run shows while it runs. Use as a context manager around the run.

    Args:
        target: the number of finished trials the run stops at.
        done: finished trials at the start (a resumed study).
        metric, direction: the study's; the best value is the best COMPLETE one.
        best: the best COMPLETE trial already in the study, if any.
        console: where to draw (a new stdout console by default).
        enabled: draw at all; when False the view only keeps its counts (cheap).
    """

    def __init__(
        self,
        *,
        target: int,
        done: int = 0,
        metric: str = "val_accuracy",
        direction: str = "maximize",
        best: FrozenTrial | None = None,
        console: Console | None = None,
        enabled: bool = True,
        refresh_per_second: float = 4.0,
    ) -> None:
        self.target = target
        self.done = done
        self.metric = metric
        self.maximize = direction == "maximize"
        self.best: FrozenTrial | None = best
        self.counts: dict[TrialState, int] = dict.fromkeys(TrialState, 0)
        self.running: dict[int, _Running] = {}
        self.console = console if console is not None else Console()
        self.enabled = enabled
        self._interval = 1.0 / refresh_per_second
        self._started = time.monotonic()
        self._drawn = -math.inf
        self._live: Live | None = None

    # -- events ----------------------------------------------------------------------------------

    @classmethod
    def of_study(
        cls, study: AskTell, *, target: int, live: bool | None, console: Console | None
    ) -> Self:
        """The view of a run of ``study`` to ``target`` trials, on ``console`` (default: stdout);
        ``live`` as ``live_enabled`` reads it."""
        screen = console if console is not None else Console()
        return cls(
            target=target,
            done=study.count_done(),
            metric=study.metric,
            direction=study.direction,
            best=study.current_best(),
            console=screen,
            enabled=live_enabled(live, screen),
        )

    def started(self, number: int, params: Mapping[str, Any]) -> None:
        self.running[number] = _Running(dict(params))

    def reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        entry = self.running.get(number)
        if entry is None:
            return
        if entry.epoch is None or epoch >= entry.epoch:
            entry.epoch = epoch
            entry.metrics.update(metrics)

    def finished(self, trial: FrozenTrial) -> None:
        """A trial ended; an interrupted one only leaves the table (it does not count)."""
        self.running.pop(trial.number, None)
        if trial.interrupted:
            return
        self.counts[trial.state] += 1
        self.done += 1
        if trial.state is TrialState.COMPLETE and self._beats_best(trial.value):
            self.best = trial

    def _beats_best(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.best is None or self.best.value is None:
            return True
        return value > self.best.value if self.maximize else value < self.best.value

    # -- drawing ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """Redraw if the last redraw is older than the refresh interval."""
        if self._live is None:
            return
        now = time.monotonic()
        if now - self._drawn >= self._interval:
            self._drawn = now
            self._live.refresh()

    def render(self) -> RenderableType:
        """The whole view: progress line, best line, and the table of running trials."""
        parts: list[RenderableType] = [self._progress(), self._best_line()]
        if self.running:
            parts.append(self._table())
        return Group(*parts)

    def _progress(self) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(width=40)
        grid.add_column()
        summary = [f"{self.done}/{self.target} trials", f"{len(self.running)} running"]
        for state in (TrialState.PRUNED, TrialState.FAILED, TrialState.DIVERGED):
            if self.counts[state]:
                summary.append(f"{self.counts[state]} {state.name.lower()}")
        summary.append(_clock(time.monotonic() - self._started))
        bar = ProgressBar(total=max(self.target, 1), completed=min(self.done, self.target))
        grid.add_row(bar, Text("  ".join(summary)))
        return grid

    def _best_line(self) -> Text:
        if self.best is None or self.best.value is None:
            return Text(f"best {self.metric}: none yet", style="dim")
        text = Text(f"best {self.metric} ")
        text.append(f"{self.best.value:.4g}", style="bold green")
        text.append(f" (trial {self.best.number})")
        return text

    def _table(self) -> Table:
        names = self._metric_names()
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("trial", justify="right")
        table.add_column("epoch", justify="right")
        for name in names:
            table.add_column(name, justify="right")
        table.add_column("params", overflow="ellipsis", no_wrap=True)
        for number in sorted(self.running):
            entry = self.running[number]
            cells = [_number(entry.metrics.get(name)) for name in names]
            epoch = "-" if entry.epoch is None else str(entry.epoch)
            table.add_row(str(number), epoch, *cells, _params(entry.params))
        return table

    def _metric_names(self) -> list[str]:
        """The study's metric first, then the others reported by running trials, in order seen."""
        names = dict.fromkeys([self.metric])
        for entry in self.running.values():
            names.update(dict.fromkeys(entry.metrics))
        return list(names)

    # -- lifetime --------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self.enabled:
            # No refresh thread: the coordinator redraws in its own loop (see tick).
            live = Live(get_renderable=self.render, console=self.console, auto_refresh=False)
            try:
                live.start(refresh=True)
            except LiveError:  # rich < 14 draws one live display at a time; the caller's wins
                return self
            self._live = live
            self._drawn = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _params(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{name}={_number(v) if isinstance(v, float) else v}" for name, v in params.items()
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
