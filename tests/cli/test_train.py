"""``tunery train`` and ``tunery predict`` end to end, through ``tunery.cli.main``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.data.helpers import balanced_labels, write_h5
from tunery import ConfigError
from tunery.cli import main
from tunery.cli._train import parse_decay, parse_layers
from tunery.data import CACHE_ENV, load_dataset, load_images
from tunery.nn.schedules import SCHEDULES
from tunery.trained import CURVE_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, load_run

QUICK = ["--epochs", "12", "--layers", "16", "--seed", "3"]
COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}
IMAGE_SIZE = 6


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``tunery ARGS``: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short training run on the bundled digits, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.raises(SystemExit) as exited:
        main(["train", *QUICK, "--out", str(out), "--name", "digits"])
    assert exited.value.code == 0
    return out / "digits"


# ------------------------------------------------------------------------------------------ train


def test_train_writes_a_complete_run_folder(digits_run: Path) -> None:
    for name in (RUN_FILE, MODEL_FILE, HISTORY_FILE, METRICS_FILE, CURVE_FILE):
        assert (digits_run / name).stat().st_size > 0, name
    description = json.loads((digits_run / RUN_FILE).read_text())
    assert description["model"]["sizes"] == [64, 16, 10]
    assert description["class_names"] == [str(k) for k in range(10)]
    assert description["image_shape"] == [8, 8]
    assert description["options"]["optimizer"] == "adam"
    assert description["options"]["epochs"] == 12
    assert description["normalizer"]["kind"] == "standardize"


def test_metrics_are_accuracies_that_beat_chance(digits_run: Path) -> None:
    metrics = json.loads((digits_run / METRICS_FILE).read_text())
    for split in ("train", "val", "test"):
        accuracy = metrics[f"{split}_accuracy"]
        assert 0 <= accuracy <= 1
        assert accuracy > 0.5  # chance is 0.1 with ten classes
    assert metrics["outcome"] == "complete"
    assert metrics["epochs"] == 12
    history = json.loads((digits_run / HISTORY_FILE).read_text())
    assert len(history["cost"]) == 12
    assert history["cost"][-1] < history["cost"][0]
    assert history["train_accuracy"][-1] == pytest.approx(metrics["train_accuracy"])


def test_the_saved_model_is_the_trained_one(digits_run: Path) -> None:
    # Reloaded and run on the same split, it scores exactly the test accuracy reported.
    run = load_run(digits_run)
    data = load_dataset("digits", seed=3)
    accuracy = float(np.mean(run.model.predict(data.X_test) == data.y_test))
    metrics = json.loads((digits_run / METRICS_FILE).read_text())
    assert accuracy == metrics["test_accuracy"]


def test_curve_is_a_readable_two_panel_png(digits_run: Path) -> None:
    image = matplotlib.image.imread(digits_run / CURVE_FILE)
    height, width, channels = image.shape
    assert width > height > 100
    assert channels in (3, 4)
    assert image[..., :3].std() > 0.01


def test_train_prints_progress_and_the_accuracy_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["train", *QUICK, "--out", str(tmp_path)], capsys)
    assert code == 0
    # not a terminal: besides the bar's final state, one plain line per epoch (12 // 10 = 1)
    for epoch in range(1, 13):
        assert f"epoch {epoch}/12  cost" in out
    for split in ("train", "val", "test"):
        assert re.search(rf"{split}\s*│\s*[01]\.\d{{4}}", out), out
    (folder,) = tmp_path.iterdir()  # the default name: timestamp, data, layers
    assert re.fullmatch(r"\d{8}-\d{6}-digits-16", folder.name)


def test_a_diverged_run_says_so_saves_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--optimizer", "gd", "--lr", "1e35", "--no-batchnorm", "--epochs", "5"]
    code, out, err = run_cli([*args, "--out", str(tmp_path), "--name", "x"], capsys)
    assert code == 1
    assert "diverged" in err
    assert "--lr" in err
    assert "Traceback" not in out + err
    metrics = json.loads((tmp_path / "x" / METRICS_FILE).read_text())
    assert metrics["outcome"] == "diverged"
    assert metrics["diverged_at"] == metrics["epochs"]
    assert metrics["final_cost"] is None
    assert (tmp_path / "x" / CURVE_FILE).stat().st_size > 0
    assert load_run(tmp_path / "x").outcome == "diverged"


def test_torch_backend_trains_the_same_network_and_saves_numpy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    args = ["train", "--epochs", "2", "--layers", "16", "--lr", "0.01", "--out", str(tmp_path)]
    assert run_cli([*args, "--backend", "torch", "--name", "torch"], capsys)[0] == 0
    assert run_cli([*args, "--name", "numpy"], capsys)[0] == 0
    torch_run, numpy_run = load_run(tmp_path / "torch"), load_run(tmp_path / "numpy")
    assert torch_run.metrics["backend"] == "torch"
    assert torch_run.options["backend"] == "torch"
    # Same seed, same batches, same update rule: the same costs up to float32 rounding.
    np.testing.assert_allclose(torch_run.history["cost"], numpy_run.history["cost"], rtol=1e-3)
    data = load_dataset("digits")
    # rounding differences grow a little over training: the labels agree, probabilities nearly
    agree = torch_run.model.predict(data.X_test) == numpy_run.model.predict(data.X_test)
    assert agree.mean() > 0.97
    np.testing.assert_allclose(
        torch_run.model.predict_proba(data.X_test),
        numpy_run.model.predict_proba(data.X_test),
        atol=0.05,
    )
    assert torch_run.metrics["test_accuracy"] > 0.5  # chance is 0.1


# -------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--lr", "0"], ["--lr", "0"]),
        (["--lr", "nan"], ["--lr", "nan"]),
        (["--layers", "25,x"], ["--layers", "25,x"]),
        (["--layers", "25,0"], ["--layers", "25,0"]),
        (["--decay", "cosine"], ["--decay", "cosine", "inverse_time"]),
        (["--decay", "step:0"], ["--decay", "step:0", "EVERY"]),
        (["--decay", "exponential:2"], ["--decay", "exponential:2", "RATE"]),
        (["--decay", "step:3:0.5:1"], ["--decay", "step:3:0.5:1"]),
        (["--classes", "5-1"], ["--classes", "5-1"]),
        (["--classes", "11-12"], ["classes", "11", "12"]),
        (["--optimizer", "sgd"], ["--optimizer", "sgd", "adam"]),
        (["--optimizer", "gd", "--beta", "0.9"], ["--beta", "0.9", "gd"]),
        (["--beta", "1"], ["--beta", "1"]),
        (["--keep-prob", "1.5"], ["--keep-prob", "1.5"]),
        (["--batch-size", "0"], ["--batch-size", "0"]),
        (["--normalize", "minmax"], ["--normalize", "minmax"]),
        (["--backend", "jax"], ["--backend", "jax"]),
        (["--threads", "0"], ["--threads", "0"]),
        (["--data", "/no/such/folder"], ["/no/such/folder"]),
        (["--name", "a/b"], ["--name", "a/b"]),
    ],
)
def test_bad_options_exit_2_naming_option_and_value(
    args: list[str], named: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "runs"
    code, out, err = run_cli(["train", "--epochs", "1", "--out", str(out_dir), *args], capsys)
    assert code == 2
    assert "Traceback" not in out + err
    message = " ".join(err.split())  # rich wraps long lines
    for text in named:
        assert text in message, (text, message)
    assert not out_dir.exists()  # nothing written for a run that never started


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    options = (
        "--data --classes --layers --batchnorm --no-batchnorm --optimizer --lr --beta --decay "
        "--epochs --batch-size --l2 --keep-prob --normalize --image-size --backend --threads "
        "--seed --out --name"
    )
    for option in options.split():
        assert option in out, option
    for schedule in SCHEDULES:
        assert schedule in out


# ------------------------------------------------------------------------------------ parsers


@given(st.lists(st.integers(1, 10_000), max_size=5))
def test_parse_layers_reads_comma_separated_sizes(sizes: list[int]) -> None:
    text = ",".join(map(str, sizes)) if sizes else "none"
    assert parse_layers(text) == tuple(sizes)
    assert parse_layers(" , ".join(map(str, sizes))) == tuple(sizes)


@given(
    st.sampled_from(["inverse_time", "exponential", "inverse-sqrt", "step"]),
    st.floats(min_value=0.01, max_value=1.0),
    st.integers(1, 50),
)
def test_parse_decay_fills_options_in_order(name: str, value: float, every: int) -> None:
    text = f"step:{every}:{value}" if name == "step" else f"{name}:{value}"
    schedule = parse_decay(text)
    assert schedule.name == name.replace("-", "_")
    expected = {"every": every, "factor": value} if name == "step" else {}
    if name != "step":
        (option,) = SCHEDULES[schedule.name].options
        expected = {option: value}
    assert dict(schedule.options) == expected


def test_parse_decay_defaults_and_none() -> None:
    assert parse_decay("none").name == "none"
    assert dict(parse_decay("step").options) == {"every": 10, "factor": 0.5}
    assert parse_decay("exponential:0.5")(1.0, 2) == pytest.approx(0.25)


@pytest.mark.parametrize("text", ["", "step:x", "exponential:0", "step:2.5", "inverse_time:1:2"])
def test_parse_decay_refuses_with_the_option_name(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_decay(text)
    assert caught.value.field == "--decay"


# ------------------------------------------------------------------------------------- predict


def _write_photo(path: Path, colour: tuple[int, int, int], seed: int) -> Path:
    """A small photo of one colour with a little noise, so images of a class are not identical."""
    noise = np.random.default_rng(seed).integers(-15, 16, size=(9, 7, 3))
    pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def photo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A run trained on a tiny folder of coloured photos, one class per colour."""
    for index, (name, colour) in enumerate(COLOURS.items()):
        for i in range(10):
            _write_photo(tmp_path / "photos" / name / f"{i}.png", colour, 100 * index + i)
    args = ["train", "--data", str(tmp_path / "photos"), "--image-size", str(IMAGE_SIZE)]
    args += ["--epochs", "30", "--layers", "8", "--batch-size", "8", "--lr", "0.01"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "runs"), "--name", "p"], capsys)
    assert code == 0, err
    return tmp_path / "runs" / "p"


def test_predict_classifies_new_photos(
    photo_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # short relative names keep the table rows on one line
    files = {
        name: _write_photo(Path(f"{name[0]}.jpg"), colour, 999) for name, colour in COLOURS.items()
    }
    code, out, err = run_cli(["predict", str(photo_run), *map(str, files.values())], capsys)
    assert code == 0, err
    for name, path in files.items():
        (row,) = [line for line in out.splitlines() if f" {path} " in line]
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        assert cells[1] == name
        probability = float(cells[2])
        assert 1 / len(COLOURS) < probability <= 1
    # what predict printed is what the saved model computes
    run = load_run(photo_run)
    probabilities = run.predict_proba(load_images(list(files.values()), size=IMAGE_SIZE))
    assert [run.class_names[k] for k in probabilities.argmax(axis=1)] == list(files)


def test_predict_needs_an_image_run(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _write_photo(tmp_path / "a.png", (0, 0, 0), 0)
    code, out, err = run_cli(["predict", str(digits_run), str(photo)], capsys)
    assert code == 2
    message = " ".join(err.split())
    assert "RUN" in message
    assert "photos" in message
    assert "8×8" in message
    assert "Traceback" not in out + err


def test_predict_on_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _write_photo(tmp_path / "a.png", (0, 0, 0), 0)
    code, out, err = run_cli(["predict", str(tmp_path), str(photo)], capsys)
    assert code == 2
    assert "tunery train" in " ".join(err.split())
    assert "Traceback" not in out + err


def test_predict_works_on_a_run_trained_on_h5_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_h5(tmp_path / "train_tiny.h5", "train", balanced_labels(8), side=5)
    write_h5(tmp_path / "test_tiny.h5", "test", balanced_labels(2), side=5, seed=1)
    args = ["train", "--data", str(tmp_path / "train_tiny.h5"), "--epochs", "3", "--layers", "4"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "runs"), "--name", "h5"], capsys)
    assert code == 0, err
    assert load_run(tmp_path / "runs" / "h5").image_shape == (5, 5, 3)
    monkeypatch.chdir(tmp_path)
    photo = _write_photo(Path("x.png"), COLOURS["red"], 0)
    code, out, err = run_cli(["predict", str(tmp_path / "runs" / "h5"), str(photo)], capsys)
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if " x.png " in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[1] in ("0", "1", "2")  # list_classes of the files
    assert 1 / 3 <= float(cells[2]) <= 1
