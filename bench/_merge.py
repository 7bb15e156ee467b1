"""``bench/search_efficiency.py --methods``: rerun some methods of an objective and merge their
rows into the JSON record of an earlier run, keeping which run each row comes from."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = ["merged", "method_subset", "parse_methods", "source_lines"]


def parse_methods(text: str, known_methods: Collection[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    for name in names:
        if name not in known_methods:
            known = ", ".join(known_methods)
            raise argparse.ArgumentTypeError(f"unknown method {name!r} (known: {known})")
    return names


def method_subset(
    methods: tuple[str, ...] | None,
    previous: Mapping[str, Any] | None,
    seeds: int,
    budgets: Sequence[int],
) -> tuple[str, ...] | None:
    """The methods to run: None (all) without ``--methods`` or an earlier record of the same
    seeds and budgets to merge into; else those named, plus the grid if the record lacks it."""
    if methods is None or previous is None:
        return None
    if previous["seeds"] != list(range(seeds)) or previous["budgets"] != list(budgets):
        return None
    return methods if "grid" in previous["runs"] else ("grid", *methods)


def merged(
    previous: Mapping[str, Any], record: Mapping[str, Any], subset: Sequence[str]
) -> dict[str, Any]:
    """``previous`` with the rows of ``subset`` replaced by ``record``'s; ``sources`` says which
    run each row comes from."""
    provenance = ("command", "machine", "date", "workers", "seconds")
    old_sources = previous.get("sources") or [
        {"methods": list(previous["runs"]), **{k: previous[k] for k in provenance}}
    ]
    sources = [
        {**source, "methods": [m for m in source["methods"] if m not in subset]}
        for source in old_sources
    ]
    sources = [source for source in sources if source["methods"]]
    sources.append({"methods": list(subset), **{k: record[k] for k in provenance}})
    out = {**previous, **{k: record[k] for k in provenance}}
    out["runs"] = {**previous["runs"], **record["runs"]}
    out["picks"] = {**previous.get("picks", {}), **record["picks"]}
    out["sources"] = sources
    return out


def source_lines(record: Mapping[str, Any]) -> list[str]:
    """The command, machine, date and wall time of each run the record's rows come from."""
    sources = record.get("sources") or [{"methods": None, **record}]
    lines = []
    for source in sources:
        rows = "" if source["methods"] is None else "rows " + ", ".join(source["methods"]) + ": "
        lines += [
            f"- {rows}command: `{source['command']}`",
            f"  machine: {source['machine']}; date: {source['date']}; "
            f"wall time {source['seconds']:.0f} s with {source['workers']} worker(s)",
        ]
    return lines
