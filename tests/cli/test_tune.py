"""``tunery tune``, ``ls``, ``show`` and ``export`` end to end, through the real entry point."""

from __future__ import annotations

import csv
import importlib.util
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tunery.report
from tunery.cli import main
from tunery.config import config_from_dict, default_config
from tunery.space import Float
from tunery.study import FrozenTrial, Study, TrialState, load_study

TINY = """\
[study]
name = "tiny"
storage = "sqlite:///{db}"

[data]
source = "digits"

[model]
layers = [12]
epochs = 2

[space]
lr = {{ low = 3e-3, high = 3e-2, scale = "log" }}
units = {{ low = 8, high = 16 }}

[run]
trials = 4
workers = 1
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (whitespace collapsed: rich wraps long lines)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    return int(code) if isinstance(code, int) else 1, " ".join(captured.out.split()), captured.err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (the default store and report go there), no report module."""
    monkeypatch.chdir(tmp_path)
    for name in ("write_report", "print_summary"):  # `from tunery.report import ...` fails
        monkeypatch.delattr(tunery.report, name, raising=False)
    return tmp_path


def write_config(folder: Path, text: str = TINY, name: str = "tune.toml") -> Path:
    path = folder / name
    path.write_text(text.format(db=folder / "studies.db"), encoding="utf-8")
    return path


@pytest.fixture
def tuned(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A finished tiny study in ``workdir/studies.db``; returns the config path."""
    config = write_config(workdir)
    code, _, err = run_cli(capsys, "tune", str(config))
    assert code == 0, err
    return config


def db_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'studies.db'}"


@dataclass
class Stored:
    """What a study holds, read once (the store is closed again)."""

    trials: list[FrozenTrial]
    rounds: int
    best: FrozenTrial


def stored(name: str, folder: Path) -> Stored:
    with load_study(name, db_url(folder)) as study:
        return Stored(study.trials, len(study.rounds), study.best_trial)


# ------------------------------------------------------------------------------------------ tune


def test_tune_runs_the_config_and_prints_the_best_trial(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    code, out, err = run_cli(capsys, "tune", str(config))
    assert code == 0, err
    study = stored("tiny", workdir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    best = study.best
    assert f"best trial {best.number} " in out
    assert f"test accuracy {best.user_attrs['test_accuracy']:.4g}" in out
    assert f"units = {best.params['units']}" in out
    assert "no report written" in err


def test_running_again_continues_without_rerunning(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = [(t.number, t.params, t.started) for t in stored("tiny", workdir).trials]
    code, out, err = run_cli(capsys, "tune", str(tuned))
    assert code == 0, err
    assert "continuing: 4 finished trial(s)" in out
    after = [(t.number, t.params, t.started) for t in stored("tiny", workdir).trials]
    assert after == before


def test_flags_override_the_run_section(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "tune", str(tuned), "--trials", "5", "--epochs", "1")
    assert code == 0, err
    trials = stored("tiny", workdir).trials
    assert len(trials) == 5
    assert sorted(trials[-1].curve) == [1]  # --epochs 1 over model.epochs = 2
    assert sorted(trials[0].curve) == [1, 2]
    code, _, _ = run_cli(capsys, "tune", str(tuned), "--trials", "2", "--name", "other")
    assert code == 0
    assert len(stored("other", workdir).trials) == 2


def test_the_default_config_runs_when_no_config_is_given(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--trials", "6", "--epochs", "1", "--workers", "1", "--storage", db_url(workdir))
    code, out, err = run_cli(capsys, "tune", *args)
    assert code == 0, err
    study = stored(default_config().study.name, workdir)
    assert len(study.trials) == 6
    assert study.rounds == 2  # coarse to fine: 3 + 3
    assert "best trial" in out


def test_print_config_shows_the_effective_config_and_runs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--print-config", "--trials", "8"])
    assert exit_.value.code == 0
    printed = config_from_dict(tomllib.loads(capsys.readouterr().out))
    assert printed == default_config().with_overrides(trials=8)
    assert list(workdir.iterdir()) == []


def test_the_report_is_written_when_tunery_report_exists(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any]] = []

    def write_report(study: Any, out_dir: Path) -> Path:
        calls.append(("write", out_dir))
        return out_dir / "index.html"

    def print_summary(study: Any, console: Any) -> None:
        calls.append(("summary", study.name))

    monkeypatch.setattr(tunery.report, "write_report", write_report, raising=False)
    monkeypatch.setattr(tunery.report, "print_summary", print_summary, raising=False)
    monkeypatch.delattr(tunery.report, "report_data", raising=False)
    config = write_config(workdir)
    code, out, _ = run_cli(capsys, "tune", str(config), "--report-dir", "reports")
    assert code == 0
    assert calls == [("summary", "tiny"), ("write", Path("reports") / "tiny")]
    assert "report: reports/tiny/index.html" in out
    calls.clear()
    assert run_cli(capsys, "tune", str(config), "--no-report")[0] == 0
    assert calls == []


@pytest.mark.skipif(not hasattr(tunery.report, "write_report"), reason="no report module yet")
def test_the_real_report_lands_in_a_folder_named_after_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path)
    code, out, err = run_cli(capsys, "tune", str(config))
    assert code == 0, err
    assert (tmp_path / "tunery-report" / "tiny" / "index.html").is_file()
    assert "report: tunery-report/tiny/index.html" in out


@pytest.mark.skipif(
    importlib.util.find_spec("tunery.run.caviar") is None, reason="no process pool yet"
)
def test_two_workers_go_through_the_process_pool(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    code, _, err = run_cli(capsys, "tune", str(config), "--workers", "2")
    assert code == 0, err
    trials = stored("tiny", workdir).trials
    assert len(trials) == 4
    assert all(t.state is TrialState.COMPLETE for t in trials)


# ----------------------------------------------------------------------------------- bad input

BAD = [
    pytest.param("[study]", "[study]\nnmae = 'x'", "study.nmae", id="unknown-study-key"),
    pytest.param("[data]", "[data]\nsorce = 'x'", "data.sorce", id="unknown-data-key"),
    pytest.param("[model]", "[model]\ndepth = 3", "model.depth", id="unknown-model-key"),
    pytest.param("[run]", "[run]\ntrails = 3", "run.trails", id="unknown-run-key"),
    pytest.param("[run]", "[extra]\nx = 1\n[run]", "extra", id="unknown-section"),
    pytest.param("trials = 4", "trials = 'four'", "run.trials", id="wrong-type"),
    pytest.param("low = 3e-3", "low = 0.0", "space.lr.low", id="bad-bound"),
    pytest.param(
        "units = {{",
        "momentum = {{ low = 0.8, high = 0.9 }}\nunits = {{",
        "space.momentum",
        id="unknown-space-name",
    ),
    pytest.param(
        "units = {{ low = 8,",
        "units = {{ low = 8, step = 2,",
        "space.units",
        id="unknown-space-key",
    ),
    pytest.param(
        'source = "digits"',
        'source = "digits"\nvalidation_copies = 0\n[data.validation_augment]\nrotation = 10',
        "data.validation_copies",
        id="validation-copies-0",
    ),
    pytest.param(
        'source = "digits"',
        'source = "digits"\n[data.validation_augment]\nhue = 0.1',
        "data.validation_augment.hue",
        id="validation-hue-on-grey-digits",
    ),
]


@pytest.mark.parametrize(("old", "new", "field"), BAD)
def test_a_bad_config_exits_2_naming_the_field_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    assert old in TINY
    config = write_config(workdir, TINY.replace(old, new, 1))
    code, _, err = run_cli(capsys, "tune", str(config))
    assert code == 2
    assert f"{field}: expected" in " ".join(err.split())
    assert "Traceback" not in err
    assert sorted(p.name for p in workdir.iterdir()) == ["tune.toml"]


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (("--trials", "0"), "run.trials"),
        (("--workers", "0"), "run.workers"),
        (("--storage", "mysql://x"), "study.storage"),
        (("--epochs", "-1"), "run.epochs"),
    ],
)
def test_a_bad_flag_exits_2_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, str], field: str
) -> None:
    config = write_config(workdir)
    code, _, err = run_cli(capsys, "tune", str(config), *flags)
    assert code == 2
    assert f"{field}: expected" in " ".join(err.split())
    assert sorted(p.name for p in workdir.iterdir()) == ["tune.toml"]


def test_missing_data_or_config_exits_2_before_the_store_is_created(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir, TINY.replace('source = "digits"', 'source = "no-such-folder"'))
    code, _, err = run_cli(capsys, "tune", str(config))
    assert code == 2
    assert "no-such-folder" in err
    code, _, err = run_cli(capsys, "tune", str(workdir / "absent.toml"))
    assert code == 2
    assert "config: expected" in " ".join(err.split())
    assert sorted(p.name for p in workdir.iterdir()) == ["tune.toml"]


# ------------------------------------------------------------------------- ls, show, export


def test_ls_lists_studies_with_counts_and_best(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "ls", "--storage", db_url(workdir))
    assert code == 0
    best = stored("tiny", workdir).best.value
    assert "tiny" in out
    assert "maximize" in out
    assert "4 complete" in out
    assert f"{best:.4g}" in out


def test_ls_and_show_never_create_a_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (("ls",), ("show", "tiny"), ("export", "tiny")):
        code, _, err = run_cli(capsys, *args)
        assert code == 2
        assert "an existing study store" in " ".join(err.split())
    assert list(workdir.iterdir()) == []


def test_show_prints_rounds_and_best_trials(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "show", "tiny", "--storage", db_url(workdir))
    assert code == 0
    best = stored("tiny", workdir).best
    assert "round 1 (given, random sampler)" in out
    assert "best 4 trials" in out
    assert f"{best.value:.4g}" in out
    assert "4 complete" in out


def test_show_one_trial_prints_params_and_curve(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "show", "tiny", "--trial", "1", "--storage", db_url(workdir))
    assert code == 0
    trial = stored("tiny", workdir).trials[1]
    assert "trial 1 of tiny" in out
    assert f"units = {trial.params['units']}" in out
    assert "curve" in out
    assert f"{trial.curve[2]['val_accuracy']:.4g}" in out


def test_show_prints_the_lineage_of_a_study_with_branches(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Study("branched", db_url(workdir)) as study:
        first = study.ask({"lr": Float(1e-3, 1e-1, scale="log")})
        first.report(1, val_accuracy=0.5)
        study.tell(first, 0.5)
        branch = study.ask(params={"lr": 0.01}, parent=(0, 1))
        branch.report(2, val_accuracy=0.7)
        study.tell(branch, 0.7)
    code, out, _ = run_cli(capsys, "show", "branched", "--storage", db_url(workdir))
    assert code == 0
    lineage = out[out.index("lineage") :]  # after the tables: the tree
    assert "trial 0" in lineage
    assert "trial 1" in lineage


def test_unknown_study_or_trial_exits_2_listing_what_there_is(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "show", "nope", "--storage", db_url(workdir))
    assert code == 2
    assert "'nope'" in err
    assert "tiny" in err
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "show", "tiny", "--trial", "9", "--storage", db_url(workdir))
    assert code == 2
    assert "--trial" in err


def test_export_writes_trials_and_curves(
    tuned: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(
        capsys, "export", "tiny", "--csv", "out.csv", "--curves", "--storage", db_url(workdir)
    )
    assert code == 0
    with (workdir / "out.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"]
    assert {"params_lr", "params_units", "user_attrs_test_accuracy"} <= set(rows[0])
    with (workdir / "tiny-curves.csv").open(encoding="utf-8") as handle:
        curves = list(csv.DictReader(handle))
    assert len(curves) == 4 * 2  # 4 trials × 2 epochs
    assert {"number", "epoch", "loss", "val_accuracy"} <= set(curves[0])


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "tune",
            [
                "--trials",
                "--workers",
                "--rounds",
                "--sampler",
                "--pruner",
                "--epochs",
                "--seed",
                "--storage",
                "--name",
                "--print-config",
            ],
        ),
        ("ls", ["--storage"]),
        ("show", ["--trial", "--storage"]),
        ("export", ["--csv", "--curves", "--storage"]),
    ],
)
def test_help_lists_every_option(
    capsys: pytest.CaptureFixture[str], command: str, options: list[str]
) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    for option in options:
        assert option in out


def test_show_marks_a_running_trial_without_heartbeat_as_stale(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = db_url(workdir)
    with Study("hung", url) as study:
        live, hung = study.ask({"x": Float(0.0, 1.0)}), study.ask()
        study.storage.heartbeat([hung.trial_id], 1.0)  # last seen in 1970: its process is gone
        code, out, _ = run_cli(capsys, "show", "hung", "--storage", url)
        assert code == 0
        assert "2 running" in out
        assert "1 running trial(s) stale" in out
        _, out, _ = run_cli(capsys, "show", "hung", "--trial", str(hung.number), "--storage", url)
        assert "(stale)" in out
        _, out, _ = run_cli(capsys, "show", "hung", "--trial", str(live.number), "--storage", url)
        assert "last heartbeat" in out
        assert "(stale)" not in out


def test_changed_validation_photos_are_announced_and_score_the_trials(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TINY.replace(
        'source = "digits"',
        'source = "digits"\nvalidation_copies = 2\n[data.validation_augment]\nrotation = 30',
    )
    code, out, err = run_cli(capsys, "tune", str(write_config(workdir, text)))
    assert code == 0, err
    assert "scored on 270 validation examples and 2 changed copies of them" in out
    study = stored("tiny", workdir)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.best.value is not None
