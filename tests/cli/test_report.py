"""``tunery report`` end to end, through the real entry point, on a small SQLite study."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tunery import Float, Study
from tunery.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace collapsed: rich wraps long lines)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    out, err = (" ".join(text.split()) for text in (captured.out, captured.err))
    return int(code) if isinstance(code, int) else 1, out, err


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store with study ``mlp`` (6 COMPLETE trials over lr, 1 DIVERGED); cwd is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    with Study("mlp", url, seed=0) as study:
        space = {"lr": Float(1e-4, 1.0, scale="log")}
        for _ in range(6):
            trial = study.ask(space)
            trial.report(1, val_accuracy=0.5)
            study.tell(trial, 1.0 - abs(math.log10(trial.params["lr"]) + 2.0) / 4)
        study.tell(study.ask(space), math.nan)
    return url


def test_report_writes_the_folder_and_prints_the_summary(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "report", "mlp", "--storage", store, "--out", "out/r")
    assert code == 0, err
    index = tmp_path / "out" / "r" / "index.html"
    assert index.is_file()
    assert (index.parent / "curves.png").stat().st_size > 0
    assert f"report: {Path('out/r/index.html')}" in out
    assert "mlp maximize val_accuracy, 7 trials: 6 COMPLETE, 1 DIVERGED" in out
    with Study("mlp", store) as study:
        assert f"{study.best_value:.4g}" in out
    assert "importance" in out


def test_report_goes_to_tunery_report_study_by_default(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "report", "mlp", "--storage", store, "--top", "2")
    assert code == 0, err
    assert (tmp_path / "tunery-report" / "mlp" / "index.html").is_file()


def test_an_unknown_study_is_exit_2_naming_the_studies_there(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "report", "nope", "--storage", store)
    assert code == 2
    assert "'nope'" in err
    assert "['mlp']" in err
    assert "Traceback" not in err
    assert out == ""
    assert not (tmp_path / "tunery-report").exists()


def test_a_missing_store_is_exit_2_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "report", "mlp", "--storage", "sqlite:///none.db")
    assert code == 2
    assert "--storage" in err
    assert "none.db" in err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_top_is_a_usage_error(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "report", "mlp", "--storage", store, "--top", "0")
    assert code == 2
    assert "--top" in err


def test_help_lists_every_option_and_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "report", "--help")
    assert code == 0
    for text in ("STUDY", "--storage", "--out", "--top", "--seed", "report/STUDY"):
        assert text in out
    for file in ("index.html", "curves.png", "param-NN-*.png", "zoom.png", "importance.png"):
        assert file in out


def test_report_is_listed_among_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "report" in out.split("Commands:")[1]
