"""What trials print in pool workers is captured, stored with the trial and shown, never drawn."""

from __future__ import annotations

import os
import signal
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from tunery.cli import main
from tunery.run._capture import OUTPUT_LIMIT, OutputCapture, read_tail
from tunery.run.caviar import run_pool
from tunery.space import Float, Space
from tunery.study import Study, Trial, TrialState

SPACE: Space = {"x": Float(0.0, 1.0)}


def noisy(trial: Trial) -> float:
    """Prints every way there is; trial 2 dies by SIGKILL after printing."""
    print(f"python stdout of trial {trial.number}")
    print(f"python stderr of trial {trial.number} [bold]not markup[/bold]", file=sys.stderr)
    os.write(1, f"fd 1 of trial {trial.number}\n".encode())
    os.write(2, f"fd 2 of trial {trial.number}\n".encode())
    if trial.number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return float(trial.params["x"])


def test_pool_output_is_stored_and_shown_but_not_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    study = Study("s", url)
    study.ask(SPACE)  # a round to run, and trial 0 done in this process
    study.tell(0, 0.5)
    screen = Console(file=StringIO(), width=120, force_terminal=True)
    run_pool(study, noisy, target=5, workers=2, live=True, console=screen)
    assert "of trial" not in screen.file.getvalue()  # type: ignore[attr-defined]

    trials = {t.number: t for t in study.trials}
    one = trials[1].output or ""
    assert one.splitlines() == [
        "python stdout of trial 1",
        "python stderr of trial 1 [bold]not markup[/bold]",
        "fd 1 of trial 1",
        "fd 2 of trial 1",
    ]
    assert trials[0].output is None  # run in this process: not captured
    dead = trials[2]
    assert dead.state is TrialState.FAILED
    assert "fd 2 of trial 2" in (dead.output or "")  # the dead worker's tail is kept too
    study.close()

    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["show", "s", "--trial", "1", "--storage", url])
    out = capsys.readouterr().out
    assert "fd 1 of trial 1" in out
    assert "[bold]not markup[/bold]" in out  # escaped: shown as written, not styled


def test_only_the_tail_is_kept_cut_at_a_line(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    tail = read_tail(str(path)) or ""
    first, *rest = tail.splitlines()
    assert first.startswith("[… ")
    assert first.endswith(" earlier bytes not kept]")
    assert rest[0].startswith("line ")  # a whole line, not the end of one
    assert rest[-1] == "line 4999"
    assert len("\n".join(rest).encode()) <= OUTPUT_LIMIT
    assert read_tail(str(tmp_path / "missing")) is None


def test_the_capture_file_starts_empty_for_each_trial_and_restores_the_streams() -> None:
    capture = OutputCapture()
    streams = sys.stdout, sys.stderr
    try:
        with capture.trial():
            os.write(1, b"first\n")
        with capture.trial():
            print("second")
        assert capture.tail() == "second\n"
        assert (sys.stdout, sys.stderr) == streams
    finally:
        capture.close()
    assert not Path(capture.path).exists()
