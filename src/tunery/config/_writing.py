"""Writing a config back: the few TOML forms it holds (``tomllib`` only reads)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tunery._exceptions import ConfigError

__all__ = []

# --------------------------------------------------------------------------------------------------
# Writing: the few TOML forms a config holds (tomllib only reads).


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError("config", value, "TOML scalars, lists and tables")


def _dump_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    blocks = []
    for section, table in tables.items():
        lines = [f"[{section}]"] + [f"{key} = {_toml_value(v)}" for key, v in table.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
