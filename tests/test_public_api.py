"""The public surface is exactly tunery.__all__, every name in it imports, the import is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tunery

PUBLIC = {
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
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(tunery.__all__) == PUBLIC
    assert len(tunery.__all__) == len(PUBLIC)  # no duplicates
    assert tunery.__all__ == sorted(tunery.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_imports(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from tunery import {name}", namespace)  # the form users write
    assert namespace[name] is getattr(tunery, name)
    assert name in dir(tunery)


def test_public_names_are_the_real_objects() -> None:
    from tunery import config, records, space, study, trial
    from tunery.workflows import panda

    assert tunery.Study is study.Study
    assert tunery.Trial is trial.Trial
    assert tunery.FrozenTrial is records.FrozenTrial
    assert tunery.babysit is panda.babysit
    assert tunery.Float is space.Float
    assert tunery.zoom is space.zoom
    assert tunery.load_config is config.load_config
    assert issubclass(tunery.ConfigError, tunery.TuneryError)
    assert issubclass(tunery.Pruned, tunery.TuneryError)
    assert issubclass(tunery.Diverged, tunery.TuneryError)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Tuner'"):
        tunery.Tuner  # noqa: B018
    assert not hasattr(tunery, "nope")
    with pytest.raises(ImportError):
        exec("from tunery import Tuner", {})


def test_import_tunery_loads_no_heavy_dependency() -> None:
    heavy = ("numpy", "scipy", "torch", "matplotlib", "sklearn", "tunery.study")
    code = f"import sys, tunery; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
