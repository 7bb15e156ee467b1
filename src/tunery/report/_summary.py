"""The study summary for the terminal (rich): state counts, best trials, rounds, importance."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tunery.records import FrozenTrial
from tunery.report._data import StudyLike, format_value
from tunery.report._importance import Importance
from tunery.report._report import ReportData, report_data
from tunery.report._rounds import RoundRanges

__all__ = ["print_summary"]

_BAR_WIDTH = 30
_STATE_STYLES = {"COMPLETE": "green", "PRUNED": "yellow", "DIVERGED": "red", "FAILED": "bold red"}


def print_summary(
    study: StudyLike | ReportData,
    console: Console | None = None,
    *,
    top: int = 5,
    seed: int = 0,
) -> None:
    """Print the summary of ``study`` (or of report data already computed) to ``console``.

    The state counts, the ``top`` best trials, each round's range per parameter (a zoomed round's
    box mapped back to values) and the importance ranking (``seed`` seeds its forest).
    """
    data = study if isinstance(study, ReportData) else report_data(study, top=top, seed=seed)
    out = console if console is not None else Console()
    out.print(_headline(data), highlight=False)
    out.print(_best_table(data.metric, data.best[:top]))
    if data.rounds:
        out.print(_rounds_table(data.rounds))
    _print_importance(out, data.importance)


def _headline(data: ReportData) -> str:
    counts = ", ".join(
        f"[{_STATE_STYLES.get(state, 'default')}]{n} {state}[/]"
        for state, n in data.counts.items()
        if n
    )
    return (
        f"[bold]{escape(data.name)}[/]  {data.direction} {escape(data.metric)}, "
        f"{data.n_trials} trials" + (f": {counts}" if counts else "")
    )


def _best_table(metric: str, best: Sequence[FrozenTrial]) -> Table | str:
    if not best:
        return "[dim]no COMPLETE trial yet[/]"
    params = list(dict.fromkeys(name for trial in best for name in trial.params))
    table = Table(title=f"best {len(best)} trials", title_justify="left")
    for column in ("trial", "round", metric, *params):
        table.add_column(escape(column), justify="right")
    for trial in best:
        table.add_row(
            str(trial.number),
            str(trial.round),
            format_value(trial.value),
            *(escape(format_value(trial.params.get(name))) for name in params),
        )
    return table


def _rounds_table(rounds: Sequence[RoundRanges]) -> Table:
    params = list(dict.fromkeys(name for r in rounds for name in r.ranges))
    table = Table(title="rounds (a zoomed round: its box, in values)", title_justify="left")
    for column in ("round", "origin", "trials", "best", *params):
        table.add_column(
            escape(column), justify="right" if column in ("trials", "best") else "left"
        )
    for r in rounds:
        table.add_row(
            str(r.index),
            r.origin,
            str(r.n_trials),
            format_value(r.best),
            *(escape(r.ranges[p].describe()) if p in r.ranges else "—" for p in params),
        )
    return table


def _print_importance(out: Console, ranking: Importance) -> None:
    if not ranking.ranking:
        out.print(f"[dim]importance: {escape(ranking.note or 'no ranking')}[/]", highlight=False)
        return
    table = Table(
        title=f"importance ({ranking.n_trials} COMPLETE trials)",
        title_justify="left",
    )
    table.add_column("parameter")
    table.add_column("share", justify="right")
    table.add_column("")
    for name, share in ranking.ranking:
        table.add_row(escape(name), f"{share:.3f}", "█" * round(share * _BAR_WIDTH))
    out.print(table)
