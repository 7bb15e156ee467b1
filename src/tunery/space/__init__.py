"""Search spaces: distributions on the right scale, the unit-cube mapping, and coarse-to-fine zoom.

Bounds are inclusive everywhere: ``Float(low, high)`` can return ``low`` and ``high``, ``Int(1, 6)``
returns each of 1, 2, ..., 6, and a zoomed space contains the trials it was cut around.

Every distribution maps a point ``u`` of the unit interval ``[0, 1]`` to a value (``from_unit``) and
back (``to_unit``). Samplers draw ``u`` and zoom narrows boxes of ``u``; neither knows about scales.

    Float(1e-4, 1, scale="log")               lr = 10^r, r uniform in [-4, 0]: even decades
    Float(0.9, 0.999, scale="one_minus_log")  1 - beta = 10^r, r uniform in [-3, -1]: median 0.99
    Int(10, 100)                              each integer 10..100 equally likely
    Choice([32, 64, 128, 256])                each option equally likely

A space is a plain dict ``{"lr": Float(1e-4, 1, scale="log"), ...}``, or the ``[space]`` table of a
config file, read by :func:`space_from_config`::

    [space]
    lr = { low = 1e-4, high = 1, scale = "log" }
    beta = { low = 0.9, high = 0.999, scale = "one_minus_log" }
    units = { low = 10, high = 100 }               # both bounds are integers: an Int
    keep_prob = { low = 0.5, high = 1.0 }          # a float bound: a Float
    layers = { low = 1, high = 4, type = "float" } # an explicit type wins
    batch_size = { choices = [32, 64, 128, 256] }

Without ``type``, a parameter whose bounds are both integers is an ``Int`` (unless its scale is
``one_minus_log``): write ``0.0``, not ``0``, for a float that starts at zero. Every rule broken
raises :class:`tunery.ConfigError` naming the parameter (``space.lr.low``), the rule and the value.
"""

from __future__ import annotations

from tunery.space._distributions import (
    Choice,
    Distribution,
    Float,
    FloatScale,
    Int,
    IntScale,
    Space,
)
from tunery.space._tables import (
    distribution_from_dict,
    space_from_config,
    space_from_dict,
    space_to_dict,
    validate_space,
)
from tunery.space._zoom import Box, zoom

__all__ = [
    "Box",
    "Choice",
    "Distribution",
    "Float",
    "FloatScale",
    "Int",
    "IntScale",
    "Space",
    "distribution_from_dict",
    "space_from_config",
    "space_from_dict",
    "space_to_dict",
    "validate_space",
    "zoom",
]
