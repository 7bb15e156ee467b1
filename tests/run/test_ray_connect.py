"""Connecting to a Ray cluster that is not there: an address nothing answers at, a port that
answers but not as Ray, the file a stopped ``ray start`` left behind, Ray not installed. Each is
one line naming ``--address`` (or the extra to install), exit code 2, nothing written, within a
bounded time; no cluster is started here but the one-machine Ray of ``connect(None)``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.run import _ray_objectives as objectives
from tunery import ConfigError
from tunery.run import Run, connect, make_executor
from tunery.study import Study

pytest.importorskip("ray", reason="Ray is not installed (pip install 'tunery[ray]')")

REPO = Path(__file__).resolve().parents[2]
_TIMEOUT = 120  # seconds a subprocess may take before the test calls it hung (never a bound)

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_tmpdir() -> Iterator[Path]:
    """A Ray temp folder of this test (``RAY_TMPDIR``), short: Ray's socket paths live in it."""
    folder = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    """A port nothing listens at (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _record_cluster(ray_tmpdir: Path, address: str) -> None:
    """The file where ``ray start`` records its cluster (``$RAY_TMPDIR/ray``, as ``/tmp/ray``)."""
    (ray_tmpdir / "ray").mkdir(exist_ok=True)
    (ray_tmpdir / "ray" / "ray_current_cluster").write_text(address)


def test_auto_with_no_cluster_here_says_so_in_one_line(tmp_path: Path, ray_tmpdir: Path) -> None:
    done, store = _tune(tmp_path, _env(ray_tmpdir), "--address", "auto")
    line = _one_line(done)
    assert "--address" in line
    assert "none found" in line
    assert not store.exists()


def _env(ray_tmpdir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    env.update(TUNERY_RAY_CONNECT_TIMEOUT="2", RAY_TMPDIR=str(ray_tmpdir), COLUMNS="200")
    env.update(extra)  # COLUMNS: the line is not wrapped to a narrow pipe's 80 columns
    return env


def _tune(
    tmp_path: Path, env: dict[str, str], *flags: str, prelude: str = ""
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``tunery tune`` on Ray with ``flags``, in a subprocess; its store's path."""
    store = tmp_path / "tunery.db"
    command = [sys.executable, "-c", f"{prelude}\nfrom tunery.cli import main\nmain()", "tune"]
    command += ["--executor", "ray", "--storage", f"sqlite:///{store}", "--trials", "2"]
    command += ["--rounds", "1", *flags]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=_TIMEOUT
    )
    return done, store


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_nothing_listens_at_is_one_line_naming_address(
    tmp_path: Path, ray_tmpdir: Path, scheme: str
) -> None:
    address = f"{scheme}127.0.0.1:{_free_port()}"
    done, store = _tune(tmp_path, _env(ray_tmpdir), "--address", address)
    line = _one_line(done)
    assert "--address" in line
    assert address in line
    assert "refused" in line.lower()
    assert not store.exists()
    assert not (tmp_path / "tunery-report").exists()


def test_a_port_that_answers_but_not_as_ray_is_refused_within_the_timeout(
    tmp_path: Path, ray_tmpdir: Path
) -> None:
    with socket.socket() as silent:  # takes the connection (the kernel's backlog), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        done, store = _tune(tmp_path, _env(ray_tmpdir), "--address", address)
    line = _one_line(done)
    assert "--address" in line
    assert "no answer within 2 s" in line
    assert not store.exists()


def test_auto_with_the_file_of_a_stopped_cluster_is_one_line_not_a_hang(
    tmp_path: Path, ray_tmpdir: Path
) -> None:
    stale = f"127.0.0.1:{_free_port()}"
    _record_cluster(ray_tmpdir, stale)  # what a `ray start` left, and then its cluster stopped
    done, store = _tune(tmp_path, _env(ray_tmpdir), "--address", "auto")
    line = _one_line(done)
    assert "--address" in line
    assert stale in line
    assert not store.exists()


CONNECT_NONE = textwrap.dedent(
    """
    import ray
    from tunery.run._ray_connect import connect
    connect(None)
    print("CPUs", ray.cluster_resources().get("CPU"))
    ray.shutdown()
    """
)


def test_no_address_starts_a_ray_here_whatever_file_a_stopped_cluster_left(
    tmp_path: Path, ray_tmpdir: Path
) -> None:
    _record_cluster(ray_tmpdir, f"127.0.0.1:{_free_port()}")
    env = _env(ray_tmpdir, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    command = [sys.executable, "-c", CONNECT_NONE]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=_TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert "CPUs" in done.stdout


def test_without_ray_the_cli_names_the_extra_and_writes_nothing(
    tmp_path: Path, ray_tmpdir: Path
) -> None:
    hide_ray = "import sys; sys.modules['ray'] = None"  # `import ray` raises ImportError
    done, store = _tune(tmp_path, _env(ray_tmpdir), "--address", "auto", prelude=hide_ray)
    line = _one_line(done)
    assert 'pip install "tunery[ray]"' in line
    assert not store.exists()


def test_without_ray_the_python_api_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "tunery\[ray\]"'):
        connect("ray", "auto")
    study = Study("ray", "memory", direction="maximize", seed=0)
    with pytest.raises(ConfigError, match=r"tunery\[ray\]"):
        make_executor("ray").run(Run(study, objectives.steps, target=1))
    assert study.trials == []
