"""The study report as a folder: PNGs and an ``index.html`` that shows them, self-contained.

    out_dir/
      index.html            tables (states, best trials, rounds, importance) and the figures
      curves.png            the caviar picture: every trial's metric per epoch
      importance.png        the importance ranking (when there are enough COMPLETE trials)
      zoom.png              the two most important parameters, the trials, every round's box
      param-01-lr.png, ...  each hyperparameter against the metric, on its own scale

The page uses relative links and inline CSS only, so the folder can be copied, zipped or served
as it is. Every name from the study (its name, parameter names, options) is HTML-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from os import PathLike
from pathlib import Path

from tunery._exceptions import ConfigError
from tunery.records import FrozenTrial
from tunery.report._data import StudyLike, format_value
from tunery.report._report import ReportData, report_data
from tunery.report._rounds import RoundRanges

__all__ = ["write_report"]

INDEX = "index.html"
_FIXED_PNGS = ("curves.png", "importance.png", "zoom.png", "lineage.png", "schedules.png")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td.name, th.name { text-align: left; }
.note { color: #666; font-style: italic; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(26rem, 1fr)); gap: 1rem; }
figure { margin: 0; } img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
"""


@dataclass(frozen=True)
class Picture:
    """A PNG of the report: its file name (relative to ``index.html``) and its caption."""

    file: str
    caption: str


def write_report(
    study: StudyLike | ReportData,
    out_dir: str | PathLike[str],
    *,
    top: int = 10,
    seed: int = 0,
) -> Path:
    """Write the report of ``study`` into ``out_dir`` (created); return the path of index.html.

    ``top`` best trials are listed; ``seed`` seeds the importance forest (both unused when given
    ``ReportData``, computed already). PNGs an earlier report left in ``out_dir`` under the
    report's own names are replaced or removed; other files are left alone.
    """
    data = study if isinstance(study, ReportData) else report_data(study, top=top, seed=seed)
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("out_dir", str(folder), "a folder (a file of that name is in the way)")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_old_pngs(folder)
    figures = _render_figures(data, folder)
    index = folder / INDEX
    index.write_text(render_html(data, figures), encoding="utf-8")
    return index


def _remove_old_pngs(folder: Path) -> None:
    for path in [*folder.glob("param-*.png"), *(folder / name for name in _FIXED_PNGS)]:
        path.unlink(missing_ok=True)


def param_file(index: int, name: str) -> str:
    """The PNG name of the ``index``-th parameter: ``param-01-lr.png`` (safe characters only)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "param"
    return f"param-{index:02d}-{slug}.png"


def _render_figures(data: ReportData, folder: Path) -> dict[str, list[Picture]]:
    """Draw every PNG the data has something for; figures by report section."""
    from tunery.report import _plots  # matplotlib loads here, only when a report is written

    figures: dict[str, list[Picture]] = {
        "curves": [],
        "importance": [],
        "zoom": [],
        "params": [],
        "population": [],
    }
    if data.lineage:
        size = len({s.member for s in data.schedules}) or 1
        _plots.render_lineage(data.lineage, size, folder / "lineage.png")
        caption = "the population's lineage: each exploit copies a member's checkpoint"
        figures["population"].append(Picture("lineage.png", caption))
        drawn = _plots.render_schedules(
            data.schedules, data.axes, data.metric, folder / "schedules.png"
        )
        if drawn is not None:
            caption = "each final member's hyperparameter schedule over the epochs"
            figures["population"].append(Picture("schedules.png", caption))
    if data.curves.lines:
        _plots.render_curves(data.curves, folder / "curves.png")
        caption = f"{data.curves.metric} per epoch; diverged trials are red, with a cross"
        figures["curves"].append(Picture("curves.png", caption))
    if data.importance.ranking:
        _plots.render_importance(data.importance, folder / "importance.png")
        figures["importance"].append(Picture("importance.png", "hyperparameter importance"))
    if data.zoom is not None:
        _plots.render_zoom(
            data.zoom, data.metric, folder / "zoom.png", maximize=data.direction == "maximize"
        )
        pair = f"{data.zoom.x_axis.name} × {data.zoom.y_axis.name}"
        figures["zoom"].append(Picture("zoom.png", f"{pair}: the trials and every round's box"))
    for index, points in enumerate(data.params, start=1):
        if points.x or points.diverged_x:
            file = param_file(index, points.axis.name)
            _plots.render_param(points, data.metric, folder / file)
            figures["params"].append(Picture(file, f"{points.axis.name} ({points.axis.scale})"))
    return figures


# -- HTML ------------------------------------------------------------------------------------------


def render_html(data: ReportData, figures: dict[str, list[Picture]]) -> str:
    """The page: ``figures`` maps a section (curves, importance, zoom, params) to its PNGs."""
    name = escape(data.name)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>tunery report: {name}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Study {name}</h1>",
        f"<p>{escape(data.direction)} {escape(data.metric)}, {data.n_trials} trials</p>",
        "<h2>Trials by state</h2>",
        _table(["state", "trials"], [[s, str(n)] for s, n in data.counts.items()]),
        f"<h2>Best trials ({escape(data.metric)})</h2>",
        _best_table(data.metric, data.best),
        *_population(data, figures.get("population", [])),
        "<h2>Learning curves</h2>",
        _figures(figures.get("curves", []), "no trial reported a metric per epoch"),
        "<h2>Hyperparameter importance</h2>",
        _importance(data, figures.get("importance", [])),
        "<h2>Coarse to fine</h2>",
        _figures(figures.get("zoom", []), "the study has fewer than two parameters"),
        _rounds_table(data.rounds),
        f"<h2>Each hyperparameter against {escape(data.metric)}</h2>",
        _figures(figures.get("params", []), "no finished trial to draw", grid=True),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _population(data: ReportData, pictures: Sequence[Picture]) -> list[str]:
    """A PBT study's section: its final members, the lineage and their schedules."""
    if not data.schedules:
        return []
    rows = [
        [str(s.member), str(s.trial), s.state, format_value(s.value), str(len(s.exploits))]
        for s in data.schedules
    ]
    header = ["member", "final trial", "state", data.metric, "exploits on its path"]
    return [
        "<h2>Population-based training</h2>",
        _table(header, rows, names=0),
        _figures(pictures, ""),
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], names: int = 1) -> str:
    """A table of already-escaped-or-plain cells; the first ``names`` columns align left."""
    head = "".join(_cell("th", text, i < names) for i, text in enumerate(header))
    body = "".join(
        "<tr>" + "".join(_cell("td", text, i < names) for i, text in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(tag: str, text: str, name: bool) -> str:
    css = ' class="name"' if name else ""
    return f"<{tag}{css}>{escape(text)}</{tag}>"


def _best_table(metric: str, best: Sequence[FrozenTrial]) -> str:
    if not best:
        return '<p class="note">no COMPLETE trial yet</p>'
    params = list(dict.fromkeys(name for trial in best for name in trial.params))
    rows = [
        [
            str(t.number),
            str(t.round),
            format_value(t.value),
            *(format_value(t.params.get(p)) for p in params),
        ]
        for t in best
    ]
    return _table(["trial", "round", metric, *params], rows, names=0)


def _importance(data: ReportData, pictures: Sequence[Picture]) -> str:
    ranking = data.importance
    if not ranking.ranking:
        return f'<p class="note">no ranking: {escape(ranking.note or "")}</p>'
    rows = [[name, f"{share:.3f}"] for name, share in ranking.ranking]
    method = (
        f"<p>A random forest fitted on the {ranking.n_trials} COMPLETE trials, params in unit "
        "coordinates (each on its own scale); impurity importances, summing to 1.</p>"
    )
    return method + _table(["parameter", "importance"], rows) + _figures(pictures, "")


def _rounds_table(rounds: Sequence[RoundRanges]) -> str:
    if not rounds:
        return '<p class="note">the study has no round yet</p>'
    params = list(dict.fromkeys(name for r in rounds for name in r.ranges))
    rows = [
        [
            str(r.index),
            r.origin,
            r.sampler,
            str(r.n_trials),
            format_value(r.best),
            *(r.ranges[p].describe() if p in r.ranges else "—" for p in params),
        ]
        for r in rounds
    ]
    return _table(["round", "origin", "sampler", "trials", "best", *params], rows, names=0)


def _figures(figures: Sequence[Picture], empty: str, *, grid: bool = False) -> str:
    if not figures:
        return f'<p class="note">{escape(empty)}</p>' if empty else ""
    items = "".join(
        f'<figure><a href="{escape(f.file)}"><img src="{escape(f.file)}" '
        f'alt="{escape(f.caption)}"></a><figcaption>{escape(f.caption)}</figcaption></figure>'
        for f in figures
    )
    return f'<div class="grid">{items}</div>' if grid else items
