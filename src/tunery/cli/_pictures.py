"""Panda's pictures for a terminal: a unicode sparkline, and the lineage tree (rich).

``tunery.workflows.panda`` hands over plain data (curves, ``lineage``); this draws it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.tree import Tree

from tunery.report import Stretch, population_lineage
from tunery.workflows.objective import TEST_ACCURACY
from tunery.workflows.panda import AppliedEvent, LineageNode, branch_events, lineage

if TYPE_CHECKING:
    from tunery.records import FrozenTrial
    from tunery.study import Study

__all__ = [
    "assignments_text",
    "lineage_tree",
    "population_tree",
    "result_text",
    "sparkline",
    "value_text",
]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], low: float | None = None, high: float | None = None) -> str:
    """One character per value, ``▁`` (``low``) to ``█`` (``high``); NaN or inf is ``×``.

    ``low`` and ``high`` default to the finite values' range; values outside are clipped.
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "×" * len(values)
    bottom = min(finite) if low is None else low
    top = max(finite) if high is None else high
    span = top - bottom
    chars = []
    for value in values:
        if not math.isfinite(value):
            chars.append("×")
            continue
        share = 0.5 if span <= 0 else (min(max(value, bottom), top) - bottom) / span
        chars.append(_BARS[min(len(_BARS) - 1, int(share * len(_BARS)))])
    return "".join(chars)


def lineage_tree(study: Study) -> Tree:
    """The study's branches as a tree: each trial, its nudges and, at their fork epochs, the
    branches that came from it. Trials that neither branched nor were branched are left out."""
    tree = Tree(f"[bold]{escape(study.name)}[/] lineage", highlight=False)
    for root in lineage(study.trials):
        _add_branch(tree, root, study.metric)
    return tree


def _add_branch(node: Tree, branch: LineageNode, metric: str) -> None:
    drawn = node.add(_branch_label(branch, metric))
    for item in branch.items:
        if isinstance(item, AppliedEvent):
            drawn.add(escape(item.describe()), style="dim" if item.error else "")
        else:
            _add_branch(drawn, item, metric)


def _branch_label(branch: LineageNode, metric: str) -> str:
    trial = branch.trial
    head = f"[bold]trial {trial.number}[/]"
    if trial.parent is not None:
        head += f" ⑂ {branch.origin} from trial {trial.parent[0]} @ epoch {trial.parent[1]}"
    epochs = sorted(trial.curve)
    span = f"epochs {epochs[0]}–{epochs[-1]}" if epochs else "no epochs yet"
    value = trial.last(metric)
    figure = "" if value is None else f" {metric} {value:.4g}"
    state = trial.state.name + (" (interrupted)" if trial.interrupted else "")
    params = f"  [dim]{escape(assignments_text(branch.changed))}[/]" if branch.changed else ""
    return f"{head}  {span}  {state}{figure}{params}"


def population_tree(study: Study) -> Tree:
    """A PBT population's lineage: each member's stretches between exploits; a stretch that began
    by exploiting hangs under the stretch it copied, at the epoch it copied, with the nudges
    (PBT's perturbations and a person's) applied on it."""
    tree = Tree(f"[bold]{escape(study.name)}[/] population lineage", highlight=False)
    for root in population_lineage(study.trials):
        _add_stretch(tree, root, study.metric)
    return tree


def _add_stretch(node: Tree, stretch: Stretch, metric: str) -> None:
    drawn = node.add(_stretch_label(stretch, metric))
    items: list[tuple[int, int, AppliedEvent | Stretch]] = []
    for trial in stretch.trials:
        for entry in branch_events(trial):
            if entry.kind == "nudge":
                items.append((entry.epoch, 1, entry))
    items += [(epoch, 0, child) for epoch, child in stretch.children]
    for _, _, item in sorted(items, key=lambda x: (x[0], x[1])):
        if isinstance(item, Stretch):
            _add_stretch(drawn, item, metric)
        else:
            drawn.add(escape(item.describe()), style="dim" if item.error else "")


def _stretch_label(stretch: Stretch, metric: str) -> str:
    head = f"[bold]member {stretch.member}[/]"
    if stretch.source is not None:
        member, trial, epoch = stretch.source
        head += f" ⑂ exploits member {member} (trial {trial}) @ epoch {epoch}"
    numbers = ", ".join(str(t.number) for t in stretch.trials)
    last = stretch.last
    value = last.value if last.value is not None else last.last(metric)
    figure = "" if value is None else f" {metric} {value:.4g}"
    params = escape(assignments_text(stretch.trials[0].params))
    return (
        f"{head}  epochs {stretch.start}–{stretch.end}  trials {numbers}  "
        f"{last.state.name}{figure}  [dim]{params}[/]"
    )


def assignments_text(values: Mapping[str, Any]) -> str:
    """``{"lr": 0.0003, "batch_size": 32}`` → ``"lr=0.0003 batch_size=32"``."""
    return " ".join(f"{key}={value_text(value)}" for key, value in values.items())


def value_text(value: Any) -> str:
    """A float to 4 significant digits; anything else as ``str`` has it."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def result_text(trial: FrozenTrial, metric: str) -> str:
    """``val_accuracy 0.9667  test 0.9630``: the trial's value, and its test accuracy if stored."""
    value = "—" if trial.value is None else f"{trial.value:.4f}"
    test = trial.user_attrs.get(TEST_ACCURACY)
    return f"{metric} {value}" + (f"  test {test:.4f}" if isinstance(test, int | float) else "")
