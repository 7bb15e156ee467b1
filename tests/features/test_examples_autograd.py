"""The autograd example minimizes J(w) = w² − 10w + 25 with no hand-written gradient."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autograd_quadratic.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("autograd_quadratic", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_reaches_the_minimum_and_prints_progress(capsys: pytest.CaptureFixture[str]) -> None:
    example = _load_example()
    example.main()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 10  # progress every 100 steps, then the result
    assert lines[0].startswith("step")
    assert "w = 5.0000" in lines[-1]


def test_w_is_five_and_the_gradient_vanishes() -> None:
    example = _load_example()
    result = example.minimize()
    assert result.w == pytest.approx(5.0, abs=1e-6)
    assert result.grad == pytest.approx(0.0, abs=1e-5)
    assert result.grad == pytest.approx(2 * result.w - 10, abs=1e-9)  # dJ/dw, by autograd


def test_too_few_steps_stop_short_of_the_minimum() -> None:
    """The checks above are not vacuous: three Adam steps of 0.1 from w = 0 cannot reach 5."""
    example = _load_example()
    result = example.minimize(steps=3)
    assert result.w < 1.0
    assert result.grad < -8.0
