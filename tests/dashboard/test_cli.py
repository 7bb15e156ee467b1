"""``tunery dashboard``: what it prints when it starts, and its refusals (one clear line on
stderr, exit code 2, no traceback, nothing written)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tunery.cli import main

TIMEOUT = 120.0


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard", *args])
    captured = capsys.readouterr()
    code = exit_.value.code
    return (int(code) if isinstance(code, int) else 1), captured.out, captured.err


def one_line(err: str) -> str:
    """The error, which must be one line (rich may wrap it: joined back) and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert lines[0].startswith("error:")
    return " ".join(" ".join(lines).split())


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """uvicorn's loop replaced by a note of the app it would have served."""
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: served.append(server))
    return served


def test_it_prints_the_url_of_the_store_it_serves(
    caviar_db: Path, no_serving: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{caviar_db}"
    code, out, err = run_cli(capsys, "--storage", url, "--port", "0", "--read-only")
    assert (code, err) == (0, "")
    text = " ".join(out.split())
    assert f"tunery dashboard of {url} at http://127.0.0.1:" in text
    assert "(read-only)" in text
    (server,) = no_serving
    assert server.config.app.state.store.url == url


@pytest.mark.parametrize("kind", ["foreign", "text"])
def test_a_file_that_is_not_a_tunery_store_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_serving: list[Any], kind: str
) -> None:
    path = tmp_path / "other.db"
    if kind == "foreign":
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE notes (text TEXT)")
        con.close()
    else:
        path.write_text("hello, I am a text file\n" * 50, encoding="utf-8")
    before = path.read_bytes()
    code, _, err = run_cli(capsys, "--storage", f"sqlite:///{path}")
    assert code == 2
    assert "not a tunery store" in one_line(err)
    assert str(path) in one_line(err)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["other.db"]
    assert no_serving == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.db", "there is no"), ("empty.db", "is an empty file")],
)
def test_a_missing_or_empty_store_is_refused_and_not_created(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_serving: list[Any],
    name: str,
    message: str,
) -> None:
    path = tmp_path / name
    if name == "empty.db":
        path.touch()
    code, _, err = run_cli(capsys, "--storage", f"sqlite:///{path}")
    assert code == 2
    line = one_line(err)
    assert "--storage" in line
    assert message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if name == "empty.db" else [])
    if path.exists():
        assert path.stat().st_size == 0


@pytest.mark.parametrize("url", ["postgres://db/x", "tunery.db", "sqlite:///x.db?colour=red"])
def test_a_bad_storage_url_is_refused(
    url: str, capsys: pytest.CaptureFixture[str], no_serving: list[Any]
) -> None:
    code, _, err = run_cli(capsys, "--storage", url)
    assert code == 2
    assert "storage" in one_line(err)


def test_a_port_in_use_is_one_line(
    caviar_db: Path, capsys: pytest.CaptureFixture[str], no_serving: list[Any]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "--storage", f"sqlite:///{caviar_db}", "--port", str(port))
    assert code == 2
    line = one_line(err)
    assert f"port {port}" in line
    assert "in use" in line
    assert "--port" in line
    assert no_serving == []


def test_a_bad_port_is_refused_by_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--port", "70000")
    assert code == 2
    assert "70000" in err


@pytest.mark.parametrize("module", ["starlette", "uvicorn"])
def test_a_missing_extra_says_how_to_install_it(
    caviar_db: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    code, _, err = run_cli(capsys, "--storage", f"sqlite:///{caviar_db}")
    assert code == 2
    assert 'pip install "tunery[dashboard]"' in one_line(err)


def test_in_a_real_process_a_port_in_use_exits_2_without_a_traceback(caviar_db: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from tunery.cli import main; main()",
                "dashboard",
                "--storage",
                f"sqlite:///{caviar_db}",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    assert done.returncode == 2
    assert f"port {port}" in one_line(done.stderr)
    assert done.stdout == ""
