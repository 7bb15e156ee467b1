"""Pictures: a unicode sparkline, and the lineage tree."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.tree import Tree

from tunery.storage import FrozenTrial
from tunery.workflows.panda._branches import branch_events, is_branch
from tunery.workflows.panda._events import BRANCH_ATTR, AppliedEvent

if TYPE_CHECKING:
    from tunery.study import Study

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
    trials = study.trials
    children: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        if trial.parent is not None:
            children.setdefault(trial.parent[0], []).append(trial)
    by_number = {t.number: t for t in trials}
    shown = [t for t in trials if is_branch(t) or t.parent is not None or t.number in children]
    tree = Tree(f"[bold]{escape(study.name)}[/] lineage", highlight=False)
    for trial in shown:
        if trial.parent is None or trial.parent[0] not in by_number:
            _add_branch(tree, trial, None, children, study.metric)
    return tree


def _add_branch(
    node: Tree,
    trial: FrozenTrial,
    parent: FrozenTrial | None,
    children: Mapping[int, list[FrozenTrial]],
    metric: str,
) -> None:
    branch = node.add(_branch_label(trial, parent, metric))
    # Nudges and rollbacks change the lineage; pauses do not (they stay in the branch's log).
    items: list[tuple[int, int, Any]] = [
        (entry.epoch, 1, entry)
        for entry in branch_events(trial)
        if entry.kind in ("nudge", "rollback")
    ]
    items += [(_fork_epoch(child), 0, child) for child in children.get(trial.number, [])]
    for _, _, item in sorted(items, key=lambda x: (x[0], x[1])):
        if isinstance(item, AppliedEvent):
            branch.add(escape(item.describe()), style="dim" if item.error else "")
        else:
            _add_branch(branch, item, trial, children, metric)


def _branch_label(trial: FrozenTrial, parent: FrozenTrial | None, metric: str) -> str:
    info = trial.user_attrs.get(BRANCH_ATTR)
    origin = info.get("origin", "branch") if isinstance(info, dict) else "branch"
    head = f"[bold]trial {trial.number}[/]"
    if trial.parent is not None:
        head += f" ⑂ {origin} from trial {trial.parent[0]} @ epoch {trial.parent[1]}"
    epochs = sorted(trial.curve)
    span = f"epochs {epochs[0]}–{epochs[-1]}" if epochs else "no epochs yet"
    value = trial.last(metric)
    figure = "" if value is None else f" {metric} {value:.4g}"
    state = trial.state.name + (" (interrupted)" if trial.interrupted else "")
    changed = _changed_params(trial.params, parent.params if parent is not None else {})
    params = f"  [dim]{escape(_assignments(changed))}[/]" if changed else ""
    return f"{head}  {span}  {state}{figure}{params}"


def _changed_params(params: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in before or before[k] != v}


def _assignments(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value_text(v)}" for k, v in values.items())


def _value_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fork_epoch(trial: FrozenTrial) -> int:
    return -1 if trial.parent is None else trial.parent[1]
