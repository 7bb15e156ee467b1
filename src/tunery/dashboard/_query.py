"""Query parameters, checked; a bad one: a 400 naming the field, its value and what was expected."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import QueryParams

__all__ = ["BadQueryError", "choice", "integer", "number", "optional_integer", "text"]


class BadQueryError(ValueError):
    def __init__(self, field: str, value: str, expected: str) -> None:
        super().__init__(f"query parameter {field!r}: {value!r} is not {expected}")
        self.field = field


def integer(query: QueryParams, field: str, default: int, low: int, high: int) -> int:
    raw = query.get(field)
    if raw is None:
        return default
    expected = f"an integer in {low}..{high}"
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadQueryError(field, raw, expected) from None
    if not low <= value <= high:
        raise BadQueryError(field, raw, expected)
    return value


def optional_integer(query: QueryParams, field: str, low: int, high: int) -> int | None:
    return None if query.get(field) is None else integer(query, field, low, low, high)


def number(query: QueryParams, field: str) -> float | None:
    raw = query.get(field)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadQueryError(field, raw, "a finite number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadQueryError(field, raw, "a finite number")
    return value


def choice(query: QueryParams, field: str, options: Sequence[str], default: str) -> str:
    raw = query.get(field)
    if raw is None:
        return default
    if raw not in options:
        raise BadQueryError(field, raw, "one of " + ", ".join(options))
    return raw


def text(query: QueryParams, field: str) -> str:
    raw = query.get(field)
    if raw is None or not raw:
        raise BadQueryError(field, raw or "", "given (it is required)")
    return raw
