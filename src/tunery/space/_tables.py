"""Spaces as plain data: a config's ``[space]`` table, and the dicts the store keeps."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, cast

from tunery._exceptions import ConfigError
from tunery.space._distributions import (
    _MISSING,
    Choice,
    Distribution,
    Float,
    Int,
    Space,
    _check_scale,
)

__all__ = [
    "distribution_from_dict",
    "space_from_config",
    "space_from_dict",
    "space_to_dict",
    "validate_space",
]

# --------------------------------------------------------------------------------------------------
# Spaces: plain dicts of distributions

_KEYS = {
    "float": {"type", "low", "high", "scale"},
    "int": {"type", "low", "high", "scale"},
    "choice": {"type", "choices"},
}


def _infer_type(d: Mapping[str, Any], where: str) -> str:
    if "type" in d:
        kind = d["type"]
        _check_scale(kind, tuple(_KEYS), f"{where}.type")
        return cast(str, kind)
    if "choices" in d:
        return "choice"
    if d.get("scale") == "one_minus_log":  # a scale only a Float has
        return "float"
    bounds = (d.get("low"), d.get("high"))
    ints = all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bounds)
    return "int" if ints else "float"


def distribution_from_dict(d: Mapping[str, Any], *, where: str = "distribution") -> Distribution:
    """Build a distribution from ``to_dict()`` output or a config table.

    ``{"low", "high", "scale"?, "type"?}`` gives a Float or an Int (``scale`` defaults to linear;
    without ``type``, integer bounds give an Int); ``{"choices": [...]}`` gives a Choice.
    Unknown keys, missing keys, wrong types and bad bounds raise ConfigError under ``where``.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(where, d, 'a table like { low = 1e-4, high = 1, scale = "log" }')
    kind = _infer_type(d, where)
    for key in d:
        if key not in _KEYS[kind]:
            allowed = ", ".join(repr(k) for k in sorted(_KEYS[kind]))
            raise ConfigError(where, key, f"one of the keys {allowed} for a {kind} parameter")
    if kind == "choice":
        return Choice(Choice._validate(d.get("choices", _MISSING), where=f"{where}.choices"))
    low, high, scale = d.get("low", _MISSING), d.get("high", _MISSING), d.get("scale", "linear")
    if kind == "int":
        return Int(*Int._validate(low, high, scale, where=where))
    return Float(*Float._validate(low, high, scale, where=where))


def validate_space(space: Mapping[str, Any], *, where: str = "space") -> Space:
    """Check a space and return it as a plain dict of distributions (in the given key order).

    Values may be distributions or dicts accepted by :func:`distribution_from_dict`. Names must be
    non-empty strings, and a space needs at least one parameter. Errors name ``{where}.{name}``.
    """
    if not isinstance(space, Mapping):
        raise ConfigError(where, space, "a table of parameters")
    if not space:
        raise ConfigError(where, dict(space), "at least one parameter")
    checked: Space = {}
    for name, value in space.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(where, name, "parameter names that are non-empty strings")
        if isinstance(value, Distribution):
            checked[name] = value
        else:
            checked[name] = distribution_from_dict(value, where=f"{where}.{name}")
    return checked


def space_from_config(table: Mapping[str, Any], *, where: str = "space") -> Space:
    """Read the ``[space]`` table of a config file (see the module docstring for its form)."""
    if isinstance(table, Mapping):
        for name, value in table.items():
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{where}.{name}",
                    value,
                    "a table like { low = 1, high = 10 } or { choices = [..] }",
                )
    return validate_space(table, where=where)


def space_to_dict(space: Mapping[str, Distribution]) -> dict[str, dict[str, Any]]:
    """A JSON-able dict of ``to_dict()`` per parameter."""
    return {name: dist.to_dict() for name, dist in space.items()}


def space_from_dict(d: Mapping[str, Any]) -> Space:
    """The inverse of :func:`space_to_dict`."""
    return validate_space(d)
