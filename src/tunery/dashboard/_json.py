"""JSON answers that a browser can only read as data.

``<``, ``>`` and ``&`` are written as ``\\u003c`` and friends, so a study called
``<script>alert(1)</script>`` stays inert even if a page pasted the text into HTML; NaN and inf
(a diverged curve) become ``null``, which ``JSON.parse`` accepts and ``NaN`` is not.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["JSON", "dumps", "error", "finite"]

_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, allow_nan=False, separators=(",", ":"))
        except ValueError:  # a NaN or inf somewhere: clean the whole answer once
            text = json.dumps(finite(content), allow_nan=False, separators=(",", ":"))
        return text.translate(_ESCAPES).encode("utf-8")


def finite(value: Any) -> Any:
    """``value`` with every NaN or inf float replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def error(status: int, message: str) -> JSON:
    return JSON({"error": message}, status_code=status)


def dumps(content: Any) -> str:
    """The same text as ``JSON`` writes, for server-sent events."""
    return JSON(None).render(content).decode("utf-8")
