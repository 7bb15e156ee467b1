"""Stores filled by real small studies, and a real uvicorn server for the browser tests.

- ``caviar_db``: an SQLite file with study ``"digits"`` (24 trials of a real ``Study.caviar``,
  two rounds, every trial reporting ``val_accuracy`` and ``loss`` for 5 epochs, some pruned and
  some failed) and a study named ``<script>alert(1)</script>`` (3 trials);
- ``serving(app)``: a context manager that runs ``app`` on uvicorn in a background thread on a
  free loopback port and yields its base URL (``"http://127.0.0.1:PORT"``);
- ``dashboard_url``: ``serving(create_app(caviar_db))`` as a fixture;
- ``panda_db`` / ``fresh_panda_db``: an SQLite file with the panda study ``"cub"`` (a real
  babysat model on digits: 3 epochs, a nudge of lr applied after epoch 3, a rollback to epoch 2,
  the new branch run to epoch 5), once per session / per test;
- ``client(app)``: an ``httpx.AsyncClient`` over the app through ``ASGITransport`` (no server).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tunery import Choice, Float, Int, Pruned, Study, Trial

SPACE: dict[str, Any] = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "beta": Float(0.9, 0.999, scale="one_minus_log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh"]),
}
ESCAPED_NAME = "<script>alert(1)</script>"
EPOCHS = 5
BASE_URL = "http://127.0.0.1:8765"
PANDA_CONFIG = """\
[study]
name = "cub"
storage = "sqlite:///{db}"

[data]
source = "digits"

[model]
layers = [12]
epochs = 5

[space]
lr = {{ low = 1e-3, high = 1e-2, scale = "log" }}
"""
BASE_LR = 3e-3
NUDGED_LR = 1e-3


def learning(trial: Trial) -> float:
    """A curve that rises fastest near lr = 0.01; every 7th trial is pruned, every 11th fails."""
    lr, units = trial.params["lr"], trial.params["units"]
    ceiling = 0.95 - 0.1 * abs(math.log10(lr) + 2) - (units - 50) ** 2 / 1e5
    accuracy = 0.0
    for epoch in range(1, EPOCHS + 1):
        accuracy = ceiling * (1 - 0.5**epoch)
        trial.report(epoch, val_accuracy=accuracy, loss=1.0 - accuracy)
        if trial.number % 7 == 6 and epoch == 2:
            raise Pruned()
    if trial.number % 11 == 10:
        raise ValueError("a bad batch")
    return accuracy


def fill_store(path: Path) -> Path:
    url = f"sqlite:///{path}"
    with Study("digits", url, "maximize", seed=1) as study:
        study.caviar(learning, SPACE, n_trials=24, rounds=2, workers=1, live=False)
    with Study(ESCAPED_NAME, url, "minimize", metric="loss") as study:
        study.caviar(
            lambda t: t.params["lr"], {"lr": SPACE["lr"]}, n_trials=3, workers=1, live=False
        )
    return path


@pytest.fixture(scope="session")
def caviar_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filled store, made once per session: tests that write to it must use ``fresh_db``."""
    return fill_store(tmp_path_factory.mktemp("dashboard") / "tunery.db")


@pytest.fixture
def fresh_db(tmp_path: Path) -> Path:
    """A filled store of this test's own (for tests that write)."""
    return fill_store(tmp_path / "tunery.db")


def panda_config(folder: Path, db: Path) -> Path:
    path = folder / "cub.toml"
    path.write_text(PANDA_CONFIG.format(db=db), encoding="utf-8")
    return path


def fill_panda(folder: Path) -> Path:
    """Study "cub": branch 0 runs epochs 1-4 (lr nudged after epoch 3), then rolls back to epoch
    2; branch 1 (parent (0, 2)) runs epochs 3-5."""
    from tunery.config import load_config
    from tunery.workflows.panda import babysit

    db = folder / "panda.db"
    config = load_config(panda_config(folder, db))
    with Study("cub", f"sqlite:///{db}") as study:
        babysitter = babysit(study, config, {"lr": BASE_LR}, epochs=EPOCHS)
        for _ in range(3):
            babysitter.run_epoch()
        babysitter.nudge(lr=NUDGED_LR)
        babysitter.run_epoch()  # the boundary after epoch 3 applies the nudge
        babysitter.rollback(2)
        babysitter.run()
    return db


@pytest.fixture(scope="session")
def panda_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fill_panda(tmp_path_factory.mktemp("panda"))


@pytest.fixture
def fresh_panda_db(tmp_path: Path) -> Path:
    return fill_panda(tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def client(app: Any, **headers: str) -> AsyncIterator[Any]:
    """An async httpx client that calls ``app`` directly (``ASGITransport``), as ``BASE_URL``."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
        yield c


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@contextmanager
def serving(app: Any, *, timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread; yield ``http://127.0.0.1:PORT``; stop it afterwards."""
    import uvicorn

    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # an open event stream: make it let go
            server.force_exit = True
            thread.join(timeout)
        sock.close()


@pytest.fixture
def dashboard_url(caviar_db: Path) -> Iterator[str]:
    from tunery.dashboard import create_app

    app = create_app(f"sqlite:///{caviar_db}")
    with serving(app) as url:
        yield url
    app.state.store.close()
