"""``checkpoint_dir``: checkpoints written to a folder or an fsspec URL, the store keeping only
where each one is; restore, branches, re-runs and panda's rollback read them back from there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunery import ConfigError, StorageError
from tunery._files import (
    check_checkpoint_dir,
    checkpoint_location,
    read_checkpoint,
    stored_location,
    write_checkpoint,
)
from tunery.config import config_from_dict, default_config
from tunery.records import TrialState
from tunery.run import make_executor
from tunery.space import Float
from tunery.storage import BaseStorage, get_storage
from tunery.study import Study
from tunery.trial import Trial
from tunery.workflows.objective import load_config_dataset, open_study
from tunery.workflows.panda import babysit

REPO = Path(__file__).resolve().parents[2]
SPACE = {"x": Float(0.0, 1.0)}


@pytest.fixture(params=["path", "file", "memory"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A checkpoint_dir: a plain path, a ``file://`` URL, fsspec's in-memory file system."""
    if request.param == "path":
        yield str(tmp_path / "checkpoints")
    elif request.param == "file":
        yield f"file://{tmp_path / 'checkpoints'}"
    else:
        name = f"memory://tunery-{uuid.uuid4().hex}"
        yield name
        fsspec.filesystem("memory").rm(name.removeprefix("memory://"), recursive=True)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStorage]:
    url = "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'tunery.db'}"
    with get_storage(url) as opened:
        yield opened


def _stored(store: BaseStorage, trial_id: int, epoch: int) -> bytes:
    found = store.load_checkpoint(trial_id, epoch)
    assert found is not None
    return found[1]


def _exists(location: str) -> bool:
    files, path = fsspec.core.url_to_fs(location)
    return bool(files.exists(path))


# -- the folder ------------------------------------------------------------------------------------


def test_a_relative_path_is_made_absolute_and_urls_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_checkpoint_dir("ck") == str(tmp_path / "ck")  # Ray workers run elsewhere
    assert check_checkpoint_dir(tmp_path / "ck") == str(tmp_path / "ck")
    assert check_checkpoint_dir("memory://run/") == "memory://run"
    assert check_checkpoint_dir("file:///shared/run") == "file:///shared/run"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("nope://bucket/run", "Protocol not known: nope"),
        ("", "a folder path, or a URL fsspec opens"),
        (3, "a folder path, or a URL fsspec opens"),
    ],
)
def test_a_bad_folder_names_the_field(value: object, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"^run.checkpoint_dir: expected .*{why}") as caught:
        check_checkpoint_dir(value, "run.checkpoint_dir")
    assert caught.value.value == value


def test_object_storage_without_its_library_says_which_to_install() -> None:
    if _installed("s3fs"):
        pytest.skip("s3fs is installed here: s3:// is a valid checkpoint_dir")
    with pytest.raises(ConfigError, match=r"^checkpoint_dir: .*s3fs"):
        check_checkpoint_dir("s3://bucket/run")


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@settings(max_examples=20, deadline=None)
@given(blob=st.binary(max_size=4096), trial_id=st.integers(0, 10**6), epoch=st.integers(0, 999))
def test_what_is_written_is_read_back_through_the_stored_reference(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes, trial_id: int, epoch: int
) -> None:
    for root in (str(tmp_path_factory.mktemp("ck")), f"memory://{uuid.uuid4().hex}"):
        location = checkpoint_location(root, trial_id, epoch)
        stored = write_checkpoint(location, blob)
        assert stored_location(stored) == location
        assert read_checkpoint(stored) == blob
        assert location.startswith(f"{root}/trial-{trial_id}/epoch-{epoch}-")
    assert stored_location(blob) is None or blob.startswith(b"tunery-checkpoint-at:")
    if stored_location(blob) is None:
        assert read_checkpoint(blob) == blob  # a checkpoint kept in the store is itself


def test_a_checkpoint_whose_file_is_gone_is_a_storage_error(tmp_path: Path) -> None:
    stored = write_checkpoint(checkpoint_location(str(tmp_path), 1, 2), b"state")
    location = stored_location(stored)
    assert location is not None
    Path(location).unlink()
    with pytest.raises(StorageError, match="cannot read the checkpoint at"):
        read_checkpoint(stored)


# -- the study -------------------------------------------------------------------------------------


def test_checkpoints_go_to_the_folder_and_restore_from_it(folder: str, store: BaseStorage) -> None:
    study = Study("s", store, checkpoint_dir=folder)
    trial = study.ask(SPACE)
    trial.checkpoint(b"start")
    trial.checkpoint(b"after one", epoch=1)
    trial.checkpoint(b"at five", epoch=5)
    assert trial.restore() == b"at five"
    assert trial.restore(0) == b"start"
    assert trial.restore(2) is None
    assert store.checkpoint_epochs(trial.trial_id) == [0, 1, 5]
    for epoch in (0, 1, 5):
        location = stored_location(_stored(store, trial.trial_id, epoch))
        assert location is not None
        assert location.startswith(check_checkpoint_dir(folder) + "/")
        assert _exists(location)
    assert len(_stored(store, trial.trial_id, 1)) < 200  # a reference, not the state
    assert trial.stored_checkpoint(1) == _stored(store, trial.trial_id, 1)  # what executors relay


def test_a_rerun_of_an_interrupted_draw_and_a_branch_restore_from_the_folder(
    folder: str, store: BaseStorage
) -> None:
    study = Study("s", store, checkpoint_dir=folder)
    first = study.ask(SPACE)
    first.checkpoint(b"epoch 3 of the first run", epoch=3)
    study.tell(first, state=TrialState.FAILED, error="node died", interrupted=True)
    rerun = study.ask()
    assert rerun.sample_id == first.sample_id
    assert rerun.restore() == b"epoch 3 of the first run"  # the pruned-then-resumed path too
    study.tell(rerun, 0.5)
    branch = study.ask(params=rerun.params, parent=(first.number, 3))
    assert branch.restore() == b"epoch 3 of the first run"


def resume_or_checkpoint(trial: Trial) -> float:
    """Restores what an earlier run of the draw saved (noted as user attr ``restored``)."""
    restored = trial.restore()
    trial.set_user_attr("restored", None if restored is None else restored.decode())
    return 1.0


def test_pool_workers_restore_from_the_folder_through_the_coordinator(
    folder: str, tmp_path: Path
) -> None:
    study = Study("s", f"sqlite:///{tmp_path / 'pool.db'}", checkpoint_dir=folder)
    study._prepare(SPACE)
    first = study.ask()
    first.checkpoint(b"saved before the crash", epoch=2)
    study.tell(first, state=TrialState.FAILED, error="crashed", interrupted=True)
    study.caviar(resume_or_checkpoint, SPACE, n_trials=2, workers=2, live=False)
    rerun = next(t for t in study.trials if t.sample_id == first.sample_id and not t.interrupted)
    assert rerun.user_attrs["restored"] == "saved before the crash"  # memory:// as well


def test_ray_refuses_a_folder_only_one_process_sees() -> None:
    with pytest.raises(ConfigError, match=r"^checkpoint_dir: expected a place every node"):
        make_executor("ray", checkpoint_dir="memory://run")


def test_a_study_without_a_folder_keeps_checkpoints_in_the_store(store: BaseStorage) -> None:
    study = Study("s", store)
    trial = study.ask(SPACE)
    trial.checkpoint(b"state", epoch=1)
    assert _stored(store, trial.trial_id, 1) == b"state"
    with pytest.raises(ConfigError, match=r"^checkpoint_dir:"):
        Study("t", store, checkpoint_dir="nope://x")


def test_panda_rolls_back_from_checkpoints_in_the_folder(tmp_path: Path) -> None:
    tables = {
        "study": {"name": "cub", "storage": f"sqlite:///{tmp_path / 'panda.db'}"},
        "data": {"source": "digits"},
        "model": {"layers": [12], "epochs": 4},
        "space": {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}},
        "run": {"checkpoint_dir": str(tmp_path / "ck")},
    }
    config = config_from_dict(tables)
    with open_study(config) as study:
        panda = babysit(study, config, dataset=load_config_dataset(config))
        for _ in range(3):
            panda.run_epoch()
        panda.rollback(2)
        panda.run_epoch()
        assert (panda.branch, panda.parent) == (1, (0, 2))
        trials = {t.number: t for t in study.trials}
        # The branch's epoch 3 starts from the file of trial 0's epoch 2: so does the re-run.
        assert sorted(trials[1].curve) == [3]
        stored = _stored(study.storage, trials[0].trial_id, 2)
    location = stored_location(stored)
    assert location is not None
    assert location.startswith(str(tmp_path / "ck"))
    assert len(list((tmp_path / "ck").rglob("*.ckpt"))) >= 4  # epochs 0..3 of trial 0, and more


# -- config and CLI --------------------------------------------------------------------------------


def test_the_run_table_takes_a_checkpoint_dir() -> None:
    tables = default_config().to_dict()
    tables["run"]["checkpoint_dir"] = "memory://run"
    config = config_from_dict(tables)
    assert config.run.checkpoint_dir == "memory://run"
    assert config_from_dict(config.to_dict()) == config
    assert default_config().with_overrides(checkpoint_dir="ck").run.checkpoint_dir == "ck"
    tables["run"]["checkpoint_dir"] = "nope://run"
    with pytest.raises(ConfigError, match=r"^run.checkpoint_dir: .*Protocol not known"):
        config_from_dict(tables)


def test_a_bad_checkpoint_dir_at_the_cli_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "tunery.db"
    command = [sys.executable, "-m", "tunery", "tune", "--checkpoint-dir", "nope://x"]
    command += ["--storage", f"sqlite:///{store}", "--trials", "2", "--rounds", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "run.checkpoint_dir" in lines[0]
    assert "nope://x" in lines[0]
    assert not store.exists()
