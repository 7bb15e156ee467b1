"""``tunery train --augment-*`` and ``tunery predict``'s unsure answers, end to end; the measured
confidence threshold on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tunery.cli import main
from tunery.data import CACHE_ENV, load_images
from tunery.trained import (
    METRICS_FILE,
    RUN_FILE,
    UNSURE_FALLBACK,
    confidence_threshold,
    load_run,
)

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}
SIZE = 6
AUGMENT = ["--augment-rotation", "20", "--augment-scale", "0.1", "--augment-flip"]
AUGMENT += ["--augment-brightness", "0.2", "--augment-hue", "0.02", "--augment-temperature", "0.1"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def _photo(path: Path, colour: tuple[int, int, int], seed: int) -> Path:
    noise = np.random.default_rng(seed).integers(-15, 16, size=(9, 7, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for index, (name, colour) in enumerate(COLOURS.items()):
        for i in range(10):
            _photo(tmp_path / "photos" / name / f"{i}.png", colour, 100 * index + i)
    return tmp_path / "photos"


def _train(photos: Path, out: Path, name: str, *extra: str) -> list[str]:
    args = ["train", "--data", str(photos), "--image-size", str(SIZE), "--epochs", "20"]
    return [*args, "--layers", "8", "--batch-size", "8", "--lr", "0.01", *extra,
            "--out", str(out), "--name", name]  # fmt: skip


def test_train_with_augmentation_saves_it_and_repeats_bit_for_bit(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        code, _, err = run_cli(_train(photos, tmp_path / "runs", name, *AUGMENT), capsys)
        assert code == 0, err
    code, _, err = run_cli(_train(photos, tmp_path / "runs", "plain"), capsys)
    assert code == 0, err
    options = json.loads((tmp_path / "runs" / "a" / RUN_FILE).read_text())["options"]
    assert options["augment"] == {
        "rotation": 20.0, "scale": 0.1, "flip": True, "brightness": 0.2, "contrast": 0.0,
        "hue": 0.02, "temperature": 0.1, "mix": 0.0,
    }  # fmt: skip
    a, b, plain = (load_run(tmp_path / "runs" / n).model.parameters() for n in ("a", "b", "plain"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], plain[k]) for k in a)


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--augment-rotation", "200", "in [0, 180]"),
        ("--augment-hue", "0.7", "in [0, 0.5]"),
        ("--augment-scale", "-0.1", "in [0, 1)"),
        ("--augment-brightness", "nan", "in [0, 1]"),
    ],
)
def test_a_bad_amount_exits_2_naming_the_flag(
    flag: str, value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["train", flag, value, "--out", str(tmp_path)], capsys)
    message = " ".join(err.split())
    assert code == 2
    assert flag in message
    assert expected in message
    assert "Traceback" not in out + err
    assert not any(tmp_path.iterdir())  # refused before loading or writing anything


def test_colour_flags_on_the_grey_digits_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["train", "--augment-hue", "0.05", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "--augment-hue" in err
    assert "3 channels" in " ".join(err.split())
    assert "Traceback" not in out + err


# ---------------------------------------------------------------------------------------- predict


def test_predict_marks_answers_below_the_runs_threshold_as_unsure(
    photos: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run_cli(_train(photos, tmp_path / "runs", "p"), capsys)
    assert code == 0, err
    run_dir = tmp_path / "runs" / "p"
    confidence = json.loads((run_dir / METRICS_FILE).read_text())["confidence"]
    run = load_run(run_dir)
    assert run.unsure_below == confidence["threshold"]
    assert 0 < run.unsure_below <= 1
    monkeypatch.chdir(tmp_path)
    files = [_photo(Path(f"{n[0]}.png"), c, 7) for n, c in COLOURS.items()]
    files.append(_photo(Path("grey.png"), (128, 128, 128), 8))
    probabilities = run.predict_proba(load_images(files, size=SIZE)).max(axis=1)
    for given_threshold, unsure in ((None, probabilities < run.unsure_below), ("1", [True] * 4)):
        extra = [] if given_threshold is None else ["--unsure-below", given_threshold]
        code, out, err = run_cli(["predict", str(run_dir), *map(str, files), *extra], capsys)
        assert code == 0, err
        for path, expected in zip(files, unsure, strict=True):
            (row,) = [line for line in out.splitlines() if f" {path} " in line]
            assert row.split("│")[-2].strip() == ("unsure" if expected else "yes")
        if any(unsure):
            assert f"{sum(unsure)} of 4 unsure" in " ".join(out.split())
    code, out, _ = run_cli(
        ["predict", str(run_dir), *map(str, files), "--unsure-below", "0"], capsys
    )
    assert "unsure" not in out


def test_a_run_without_a_measured_threshold_uses_the_fallback(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(_train(photos, tmp_path / "runs", "old"), capsys)
    assert code == 0, err
    metrics_file = tmp_path / "runs" / "old" / METRICS_FILE
    metrics = json.loads(metrics_file.read_text())
    del metrics["confidence"]  # as runs saved before the threshold was measured
    metrics_file.write_text(json.dumps(metrics))
    run = load_run(tmp_path / "runs" / "old")
    assert run.measured_threshold is None
    assert run.unsure_below == UNSURE_FALLBACK


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(20, 200),
    classes=st.integers(2, 6),
)
def test_the_threshold_keeps_95_percent_of_the_right_answers(
    seed: int, n: int, classes: int
) -> None:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(classes) * 0.5, size=n)
    labels = np.where(
        rng.random(n) < 0.7, probabilities.argmax(axis=1), rng.integers(0, classes, n)
    )
    result = confidence_threshold(probabilities, labels)
    top = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    threshold = result["threshold"]
    assert threshold is not None
    kept = np.mean(top[right] >= threshold)
    assert kept >= 0.95 - 1 / right.sum()
    assert result["val_share_below"] == pytest.approx(np.mean(top < threshold))
    below = top < threshold
    if below.any():
        assert result["val_accuracy_below"] == pytest.approx(right[below].mean())


def test_no_right_answer_measures_no_threshold() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
    result = confidence_threshold(probabilities, np.array([1, 0]))
    assert result["threshold"] is None
