"""Bad guided input names its field, value and what was expected (exit 2 at the CLI, nothing
stored); ``tunery tune --guided`` runs the default digits study end to end at a tiny budget."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tunery import ConfigError
from tunery.cli import main
from tunery.config import DEFAULT_TOML, config_from_dict, default_config
from tunery.samplers import GuidedSampler, make_sampler
from tunery.space import Choice, Float, Int
from tunery.study import Study, load_study

SPACE = {"x": Float(0.0, 1.0)}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_.value.code
    return int(code) if isinstance(code, int) else 1, " ".join(captured.out.split()), captured.err


def default_tables(**run: Any) -> dict[str, Any]:
    tables = tomllib.loads(DEFAULT_TOML)
    tables["run"].update(run)
    return tables


# -- Python -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "expected"),
    [
        ({"model": "foo"}, "sampler.model", "'gp', 'tpe'"),
        ({"batch": 0}, "sampler.batch", ">= 1"),
        ({"batch": 2.5}, "sampler.batch", "int"),
        ({"batch": True}, "sampler.batch", "int"),
    ],
)
def test_a_bad_guided_sampler_names_the_field_the_value_and_the_rule(
    options: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        GuidedSampler(**options)
    assert error.value.field == field
    assert error.value.value == next(iter(options.values()))
    assert expected in error.value.expected


def test_guided_names_a_model_and_only_zoomed_rounds_are_guided() -> None:
    study = Study("s", ":memory:")
    with pytest.raises(ConfigError) as error:
        study.caviar(lambda t: t.params["x"], SPACE, n_trials=8, rounds=2, guided="foo")
    assert (error.value.field, error.value.value) == ("guided", "foo")
    assert "'gp', 'tpe'" in error.value.expected
    with pytest.raises(ConfigError) as error:
        study.caviar(lambda t: t.params["x"], SPACE, n_trials=8, rounds=1, guided="gp")
    assert (error.value.field, error.value.value) == ("guided", "gp")
    assert "rounds=1" in error.value.expected
    assert study.trials == []
    assert study.rounds == []
    with pytest.raises(ConfigError) as error:
        Study("t", ":memory:", sampler="guided")  # round 1 has no trials to model
    assert (error.value.field, error.value.value) == ("sampler", "guided")
    with pytest.raises(ConfigError):
        Study("t", ":memory:", sampler=make_sampler("guided", model="tpe"))


def test_a_refused_zoom_adds_no_round() -> None:
    study = Study("s", ":memory:")
    study.caviar(lambda t: t.params["x"], SPACE, n_trials=6, workers=1)
    with pytest.raises(ConfigError) as error:
        study.zoom(guided="bayes")
    assert (error.value.field, error.value.value) == ("guided", "bayes")
    assert len(study.rounds) == 1
    assert study.zoom(guided="tpe").sampler_text == "guided by tpe, batches of 8"


@pytest.mark.parametrize(
    ("run", "field", "value"),
    [
        ({"guided": "foo"}, "run.guided", "foo"),
        ({"guided": 3}, "run.guided", 3),
        ({"guided": "gp", "guided_batch": 0}, "run.guided_batch", 0),
        ({"guided": "gp", "guided_batch": "8"}, "run.guided_batch", "8"),
        ({"guided": "gp", "rounds": 1}, "run.guided", "gp"),
    ],
)
def test_a_bad_run_guided_is_a_config_error(run: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict(default_tables(**run))
    assert (error.value.field, error.value.value) == (field, value)


def test_run_guided_none_and_a_model_are_read() -> None:
    assert config_from_dict(default_tables(guided="none")).run.guided is None
    run = config_from_dict(default_tables(guided="tpe", guided_batch=4)).run
    assert (run.guided, run.guided_batch) == ("tpe", 4)
    assert default_config().run.guided is None  # uniform zoomed rounds unless asked


# -- the command line ---------------------------------------------------------------------------


def write_config(folder: Path, **run: Any) -> Path:
    lines = [f"{key} = {value!r}".replace("'", '"') for key, value in run.items()]
    text = DEFAULT_TOML.replace("[run]\n", "[run]\n" + "".join(line + "\n" for line in lines))
    path = folder / "tune.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("run", "flags", "field"),
    [
        ({"guided": "foo"}, (), "run.guided"),
        ({"guided_batch": 0}, ("--guided", "gp"), "run.guided_batch"),
        ({}, ("--guided", "gp", "--rounds", "1"), "run.guided"),
        ({}, ("--guided", "foo"), "--guided"),
    ],
)
def test_bad_guided_input_exits_2_without_a_traceback_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run: dict[str, Any],
    flags: tuple[str, ...],
    field: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, **run)
    code, _, err = run_cli(capsys, "tune", str(config), *flags)
    assert code == 2
    assert field in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.toml"]


def test_tune_guided_runs_the_default_digits_study_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    tiny = ("--trials", "8", "--epochs", "1", "--workers", "1", "--storage", url)
    code, out, err = run_cli(capsys, "tune", "--guided", "gp", *tiny, "--report-dir", "r")
    assert code == 0, err
    assert "best trial" in out
    study = load_study(default_config().study.name, url)
    rounds = study.rounds
    assert [r.sampler_text for r in rounds] == ["random sampler", "guided by gp, batches of 8"]
    second = [t for t in study.trials if t.round == 2]
    assert len(second) == 4
    assert all(t.state.is_finished() for t in second)
    for trial in second:  # inside the zoomed box, on the zoomed space's bounds
        for name, dist in rounds[1].space.items():
            value = trial.params[name]
            if isinstance(dist, Choice):
                assert value in dist.options
            else:
                assert isinstance(dist, Float | Int)
                assert dist.low <= value <= dist.high
    code, out, _ = run_cli(capsys, "show", default_config().study.name, "--storage", url)
    assert code == 0
    assert "guided by gp, batches of 8" in out
