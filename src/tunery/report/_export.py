"""A study's trials as flat rows: CSV files and a pandas DataFrame.

from tunery.report import export_csv, to_dataframe

export_csv(study.trials, "trials.csv", curves_path="curves.csv")
frame = to_dataframe(study.trials)
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunery.records import FrozenTrial

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["export_csv", "to_dataframe", "trial_rows"]

_EMPTY_COLUMNS = ["number", "round", "sample_id", "state", "value"]


def trial_rows(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """One flat dict per trial: number, round, state, value, ..., ``params_<name>``."""
    params = _union(t.params for t in trials)
    attrs = _union(t.user_attrs for t in trials)
    return [
        {
            "number": t.number,
            "round": t.round,
            "sample_id": t.sample_id,
            "state": t.state.name,
            "value": t.value,
            "interrupted": t.interrupted,
            "started": t.started,
            "finished": t.finished,
            "duration": t.duration,
            "parent": None if t.parent is None else f"{t.parent[0]}@{t.parent[1]}",
            **{f"params_{name}": t.params.get(name) for name in params},
            **{f"user_attrs_{name}": t.user_attrs.get(name) for name in attrs},
        }
        for t in trials
    ]


def to_dataframe(trials: Sequence[FrozenTrial]) -> pd.DataFrame:
    """The trials as a pandas DataFrame, one row per trial (columns as ``trial_rows``)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_dataframe needs pandas: pip install pandas (or use tunery.report.export_csv)"
        ) from None
    return pd.DataFrame(trial_rows(trials))


def export_csv(
    trials: Sequence[FrozenTrial],
    path: str | PathLike[str],
    curves_path: str | PathLike[str] | None = None,
) -> None:
    """Write one row per trial to ``path``; with ``curves_path``, one row per trial and epoch.

    The curves file has columns ``number, epoch`` and one column per metric.
    """
    rows = trial_rows(trials)
    _write_csv(Path(path), list(rows[0]) if rows else _EMPTY_COLUMNS, rows)
    if curves_path is None:
        return
    metrics = _union(row for t in trials for row in t.curve.values())
    curve_rows = [
        {"number": t.number, "epoch": epoch, **t.curve[epoch]}
        for t in trials
        for epoch in sorted(t.curve)
    ]
    _write_csv(Path(curves_path), ["number", "epoch", *metrics], curve_rows)


def _union(mappings: Iterable[Mapping[str, Any]]) -> list[str]:
    """Keys of all mappings, in order of first appearance."""
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
