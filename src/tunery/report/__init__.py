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
from tunery.report._population import (
    PBT_ATTR,
    MemberSchedule,
    Stretch,
    final_segments,
    is_segment,
    member_schedules,
    population_lineage,
    segment_info,
)
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
    "PBT_ATTR",
    "CurveLine",
    "CurvesData",
    "Importance",
    "MemberSchedule",
    "ParamAxis",
    "ParamPoints",
    "ParamRange",
    "ReportData",
    "RoundRanges",
    "Stretch",
    "StudySnapshot",
    "ZoomBox",
    "ZoomData",
    "best_trials",
    "curves_data",
    "export_csv",
    "final_segments",
    "format_value",
    "importance",
    "is_segment",
    "member_schedules",
    "param_axes",
    "param_points",
    "population_lineage",
    "print_summary",
    "report_data",
    "round_ranges",
    "segment_info",
    "state_counts",
    "to_dataframe",
    "trial_rows",
    "write_report",
    "zoom_data",
]
