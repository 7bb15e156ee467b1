"""Class names: parsing a ``classes`` selection, sorting names, selecting a subset of labelled rows.

Class names are strings (a folder's name, or ``str(label)`` for the digits and .h5 files). A
selection such as ``"0-5"``, ``"0,2,4"``, ``"0-2,7"`` or ``[0, 2, 4]`` keeps those classes;
labels are then re-indexed ``0..C-1`` in the order of the source's sorted class names, and the
names are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError, DataError

__all__ = ["ClassSpec", "Labeled", "parse_classes", "resolve_classes", "sort_class_names"]

ClassSpec = str | Sequence[int | str | np.integer[Any]] | None

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_EXPECTED = "a range like '0-5', a list like '0,2,4', or a sequence of class names"


@dataclass(frozen=True, eq=False)
class Labeled:
    """Rows before splitting: ``X (N, D)`` raw values (``X / scale`` in [0, 1]), ``y (N,)`` int64.

    ``image_shape`` is the shape one row came from (``(64, 64, 3)`` for photos, ``(8, 8)`` for the
    digits); rows are the image flattened in that order.
    """

    X: NDArray[Any]
    y: NDArray[np.int64]
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    scale: float

    def select(self, names: Sequence[str]) -> Labeled:
        """Keep the rows of ``names`` (a subset of ``class_names``, in order); re-index labels."""
        old_index = np.array([self.class_names.index(name) for name in names], dtype=np.int64)
        new_label = np.full(len(self.class_names), -1, dtype=np.int64)
        new_label[old_index] = np.arange(len(names))
        keep = np.isin(self.y, old_index)
        return Labeled(
            X=self.X[keep],
            y=new_label[self.y[keep]],
            class_names=tuple(names),
            image_shape=self.image_shape,
            scale=self.scale,
        )


def parse_classes(spec: ClassSpec) -> tuple[str, ...] | None:
    """Turn a ``classes`` selection into class names; ``None`` (all classes) stays ``None``.

    ``"0-5"`` → ``("0", ..., "5")``; ``"0,2,4"`` → ``("0", "2", "4")``; ranges and names mix
    (``"0-2,7"``); a sequence of ints or strings gives their string forms. Repeats are dropped, the
    first occurrence kept. A part that is not a non-decreasing integer range is taken as a name.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        names = _parse_text(spec)
    elif isinstance(spec, Sequence) and not isinstance(spec, bytes):
        names = [_name_of(item, spec) for item in spec]
    else:
        raise ConfigError("classes", spec, _EXPECTED)
    if not names:
        raise ConfigError("classes", spec, "at least one class")
    return tuple(dict.fromkeys(names))


def _parse_text(spec: str) -> list[str]:
    names: list[str] = []
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            raise ConfigError("classes", spec, _EXPECTED + " (no empty parts)")
        match = _RANGE.match(part)
        if match is None:
            names.append(part)
            continue
        low, high = int(match[1]), int(match[2])
        if low > high:
            raise ConfigError("classes", spec, f"a range low-high with low <= high, not {part!r}")
        names.extend(str(label) for label in range(low, high + 1))
    return names


def _name_of(item: object, spec: object) -> str:
    # bool is an int subclass; True as a class name is surely a mistake.
    if isinstance(item, bool) or not isinstance(item, int | str | np.integer):
        raise ConfigError("classes", spec, _EXPECTED)
    name = str(item).strip()
    if not name:
        raise ConfigError("classes", spec, "non-empty class names")
    return name


def sort_class_names(names: Iterable[str]) -> tuple[str, ...]:
    """Sort numerically when every name is an integer (``"2" < "10"``), else as strings."""
    unique = set(names)
    if all(_is_integer(name) for name in unique):
        return tuple(sorted(unique, key=int))
    return tuple(sorted(unique))


def _is_integer(name: str) -> bool:
    try:
        int(name)
    except ValueError:
        return False
    return True


def resolve_classes(
    available: Sequence[str], wanted: tuple[str, ...] | None, source: object
) -> tuple[str, ...]:
    """The names of ``available`` that ``wanted`` selects, in ``available``'s order.

    When all names are integers, ``"7"`` also finds a folder named ``"07"``. Raises ``DataError``
    naming ``source`` for unknown classes, and when fewer than two classes remain.
    """
    if wanted is None:
        chosen = tuple(available)
    else:
        lookup = _lookup(available)
        unknown = [name for name in wanted if name not in lookup]
        if unknown:
            raise DataError(
                f"{source}: unknown classes {unknown} in `classes`; "
                f"it has {', '.join(available) or 'none'}"
            )
        picked = {lookup[name] for name in wanted}
        chosen = tuple(name for name in available if name in picked)
    if len(chosen) < 2:
        raise DataError(
            f"{source}: a classifier needs at least two classes, got {list(chosen)} "
            f"(available: {', '.join(available) or 'none'})"
        )
    return chosen


def _lookup(available: Sequence[str]) -> dict[str, str]:
    lookup = {name: name for name in available}
    if all(_is_integer(name) for name in available):
        for name in available:
            lookup.setdefault(str(int(name)), name)
    return lookup
