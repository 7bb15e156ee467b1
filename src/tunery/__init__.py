"""tunery: tune deep networks the way the course teaches (random, right scale, coarse to fine).

    import tunery

    space = {
        "lr": tunery.Float(1e-4, 1, scale="log"),
        "beta": tunery.Float(0.9, 0.999, scale="one_minus_log"),
        "units": tunery.Int(10, 100),
        "batch_size": tunery.Choice([32, 64, 128, 256]),
    }
    study = tunery.Study("mlp", "sqlite:///tunery.db", direction="maximize")
    study.caviar(objective, space, n_trials=40, rounds=2)

The names below are imported on first use, so ``import tunery`` stays light: the study machinery
(NumPy, the store) loads only when ``tunery.Study`` is first touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tunery._exceptions import (
    ConfigError,
    DataError,
    Diverged,
    Pruned,
    StorageError,
    TuneryError,
    TuneryWarning,
)

if TYPE_CHECKING:
    from tunery.config import load_config
    from tunery.records import FrozenTrial, TrialState
    from tunery.space import Choice, Float, Int, zoom
    from tunery.study import Study, list_studies, load_study
    from tunery.trial import Trial
    from tunery.workflows.panda import babysit
    from tunery.workflows.pbt import pbt

__version__ = "0.1.0"

__all__ = [
    "Choice",
    "ConfigError",
    "DataError",
    "Diverged",
    "Float",
    "FrozenTrial",
    "Int",
    "Pruned",
    "StorageError",
    "Study",
    "Trial",
    "TrialState",
    "TuneryError",
    "TuneryWarning",
    "__version__",
    "babysit",
    "list_studies",
    "load_config",
    "load_study",
    "pbt",
    "zoom",
]

# Public name → the module that defines it, imported on first access (PEP 562).
_LAZY = {
    "Choice": "tunery.space",
    "Float": "tunery.space",
    "Int": "tunery.space",
    "zoom": "tunery.space",
    "FrozenTrial": "tunery.records",
    "Study": "tunery.study",
    "Trial": "tunery.trial",
    "TrialState": "tunery.records",
    "babysit": "tunery.workflows.panda",
    "list_studies": "tunery.study",
    "load_study": "tunery.study",
    "load_config": "tunery.config",
    "pbt": "tunery.workflows.pbt",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tunery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
