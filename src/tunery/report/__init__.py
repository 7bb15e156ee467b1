"""The study report: plain data → matplotlib PNGs → index.html, and a terminal summary.

    from tunery.report import print_summary, write_report

    print_summary(study)                                  # rich tables in the terminal
    write_report(study, "tunery-report/mlp")              # → tunery-report/mlp/index.html
    export_csv(study.trials, "trials.csv")                # one row per trial (to_dataframe too)

Every plot is computed as plain data first (``curves_data``, ``param_points``, ``zoom_data``,
``importance``, ...; dataclasses of lists), then rendered. matplotlib and scikit-learn are imported
only when a report is drawn or an importance is fitted.
"""

from __future__ import annotations

from tunery.report._data import (
    MIN_IMPORTANCE_TRIALS,
    CurveLine,
    CurvesData,
    ParamAxis,
    ParamPoints,
    StudySnapshot,
    best_trials,
    curves_data,
    format_value,
    param_axes,
    param_points,
    state_counts,
)
from tunery.report._export import export_csv, to_dataframe, trial_rows
from tunery.report._html import write_report
from tunery.report._importance import Importance, importance
from tunery.report._report import ReportData, report_data
from tunery.report._rounds import (
    ParamRange,
    RoundRanges,
    ZoomBox,
    ZoomData,
    round_ranges,
    zoom_data,
)
from tunery.report._summary import print_summary

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "CurveLine",
    "CurvesData",
    "Importance",
    "ParamAxis",
    "ParamPoints",
    "ParamRange",
    "ReportData",
    "RoundRanges",
    "StudySnapshot",
    "ZoomBox",
    "ZoomData",
    "best_trials",
    "curves_data",
    "export_csv",
    "format_value",
    "importance",
    "param_axes",
    "param_points",
    "print_summary",
    "report_data",
    "round_ranges",
    "state_counts",
    "to_dataframe",
    "trial_rows",
    "write_report",
    "zoom_data",
]
