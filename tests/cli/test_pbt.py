"""``tunery pbt``, ``tunery nudge --member``, and a PBT study in ``tunery show`` and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunery.cli import main
from tunery.report import segment_info
from tunery.storage import SqliteStorage

CONFIG = """
[study]
name = "pop"
storage = "sqlite:///{db}"
seed = 2

[model]
layers = [10]
epochs = 4

[space]
lr = {{ low = 1e-3, high = 0.3, scale = "log" }}
beta = {{ low = 0.8, high = 0.99, scale = "one_minus_log" }}

[run]
workers = 1

[pbt]
population = 3
perturbation_interval = 2
{extra}
"""


def write_config(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    db = tmp_path / "pop.db"
    path = tmp_path / "pop.toml"
    path.write_text(CONFIG.format(db=db, extra=extra), encoding="utf-8")
    return path, db


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace collapsed: rich wraps long lines)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    out, err = (" ".join(text.split()) for text in (captured.out, captured.err))
    return int(code) if isinstance(code, int) else 1, out, err


@pytest.fixture
def trained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, str]:
    config, db = write_config(tmp_path)
    code, out, err = run_cli(capsys, "pbt", str(config), "--no-report")
    assert code == 0, err
    return config, db, out


def test_pbt_trains_the_population_and_draws_its_lineage(trained: tuple[Path, Path, str]) -> None:
    _, db, out = trained
    assert "3 members, 4 epochs each, exploit/explore every 2" in out
    assert out.count("epochs 0–2") >= 3
    assert "pop population lineage" in out
    store = SqliteStorage(db)
    info = store.get_study("pop")
    assert info is not None
    trials = store.get_all_trials(info.study_id)
    assert sorted((segment_info(t)["member"], segment_info(t)["step"]) for t in trials) == [
        (m, s) for m in range(3) for s in range(2)
    ]
    assert "exploits member" in out  # one of 3 is the bottom quantile at the boundary


def test_show_draws_the_population_tree(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = trained
    code, out, _ = run_cli(capsys, "show", "pop", "--storage", f"sqlite:///{db}")
    assert code == 0
    assert "population lineage" in out
    assert "member 0" in out
    assert "(by pbt)" in out


def test_the_report_draws_the_lineage_and_the_schedules(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, db, _ = trained
    out_dir = tmp_path / "report"
    code, _, err = run_cli(
        capsys, "report", "pop", "--storage", f"sqlite:///{db}", "--out", str(out_dir)
    )
    assert code == 0, err
    assert (out_dir / "lineage.png").stat().st_size > 0
    assert (out_dir / "schedules.png").stat().st_size > 0
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    assert "Population-based training" in page
    assert "schedules.png" in page


def test_nudge_queues_for_a_member_and_refuses_mistakes(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = trained
    url = f"sqlite:///{db}"
    code, out, _ = run_cli(capsys, "nudge", "pop", "--storage", url, "--member", "1", "lr=0.002")
    assert code == 0
    assert "queued nudge lr=0.002" in out
    assert "member 1" in out
    for args, needle in [
        (["lr=0.002"], "--member"),
        (["--member", "7", "lr=0.002"], "member: expected a member"),
        (["--member", "1", "units=3"], "nudge: expected a setting a nudge can change"),
        (["--member", "1", "lr=-1"], "lr: expected"),
    ]:
        code, _, err = run_cli(capsys, "nudge", "pop", "--storage", url, *args)
        assert code == 2, args
        assert needle in err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "extra", "needle"),
    [
        (["--population", "1"], "", "pbt.population: expected an int >= 2, got 1"),
        (["--interval", "4"], "", "pbt.perturbation_interval: expected fewer epochs"),
        ([], "quantile = 0.2", "pbt.quantile"),
        ([], "quantile_fraction = 0.9", "pbt.quantile_fraction: expected a number in [0, 0.5]"),
        ([], "perturbation_factors = [2, 3]", "pbt.perturbation_factors"),
    ],
)
def test_a_mistake_is_exit_code_2_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    extra: str,
    needle: str,
) -> None:
    config, db = write_config(tmp_path, extra)
    code, _, err = run_cli(capsys, "pbt", str(config), *flags)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert not db.exists()


def test_rerunning_with_another_population_is_refused(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = trained
    code, _, err = run_cli(capsys, "pbt", str(config), "--population", "4", "--no-report")
    assert code == 2
    assert "pbt.population: expected 3, as study 'pop' was started with, got 4" in err
