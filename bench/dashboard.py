"""How fast the dashboard opens a big study: tunery's against optuna-dashboard, same study size.

    python bench/dashboard.py                 # 50,000 trials x 20 epochs (a minute or two to build)
    python bench/dashboard.py --quick         # 2,000 trials: a smoke test for CI
    python bench/dashboard.py --trials 10000 --epochs 20 --repeats 3 --dir /tmp/dash
    python bench/dashboard.py --no-optuna --browser   # + the page in headless Chromium

With ``--browser`` (Playwright driving /usr/bin/chromium, or TUNERY_CHROMIUM; skipped with a line
saying why when either is missing) each repeat starts a new ``tunery dashboard`` process (cold) and
opens the study page in a new browser context, then reloads it (warm), and reports seconds from
navigation to the curves drawn and to the whole page settled (every panel's ``data-ready`` marker,
plus one frame), and a sort of the table by value.

Builds one study in a tunery SQLite store: the study and its round through the storage API, then
every trial and curve row in one SQL transaction (``executemany`` into the ``trials`` and
``curves`` tables: the rows the store itself writes for finished trials; the storage API writes
one trial per transaction and would take minutes). Each trial is COMPLETE with 4 params (lr log,
beta 1-log, units int, act choice) and ``val_accuracy`` and ``loss`` at every epoch.

Then it times "opening the study page": the requests the page makes before it can draw,
``/`` + ``/api/studies/{name}`` + ``/api/studies/{name}/curves`` + ``/api/studies/{name}/best`` +
``/api/studies/{name}/trials?limit=100``, cold (a new app and store connection, so the 50,000
summaries are read for the first time) and warm (the same app again: what a reload costs), both
in process (httpx's ASGI transport; its WSGI transport for Optuna's Bottle app) and over real
HTTP on uvicorn. The in-process cold open also reports the CPU seconds it took (the process's,
every thread): on a machine shared with other work they vary far less than the wall clock.

If optuna-dashboard is installed, the same trials and intermediate values go into an Optuna RDB
(SQLite) store, filled the same way (Optuna's API makes the study and one trial; its tables are
then filled in one SQL transaction), and its page open is timed the same way: ``/dashboard`` +
``/api/meta`` + ``/api/studies`` + ``/api/studies/{id}`` (which returns every trial with its
intermediate values; the page draws from that). The last line prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tunery import Choice, Float, Int
from tunery.space import space_to_dict
from tunery.storage import SqliteStorage

SPACE = {
    "lr": Float(1e-4, 1.0, scale="log"),
    "beta": Float(0.9, 0.999, scale="one_minus_log"),
    "units": Int(10, 100),
    "act": Choice(["relu", "tanh"]),
}
NAME = "big"


def draw(trials: int, epochs: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, 0, trials)
    beta = 1 - 10 ** rng.uniform(-3, -1, trials)
    units = rng.integers(10, 101, trials)
    act = rng.integers(0, 2, trials)
    ceiling = 0.95 - 0.1 * np.abs(np.log10(lr) + 2) - (units - 50) ** 2 / 1e5
    steps = 1 - 0.5 ** np.arange(1, epochs + 1)
    accuracy = ceiling[:, None] * steps[None, :] + rng.normal(0, 0.005, (trials, epochs))
    return {"lr": lr, "beta": beta, "units": units, "act": act, "accuracy": accuracy}


def build_tunery(path: Path, data: dict[str, np.ndarray]) -> float:
    """The study through the API, its trials and curves in one SQL transaction. Seconds taken."""
    began = time.perf_counter()
    store = SqliteStorage(path)
    study_id = store.open_study(NAME, direction="maximize", seed=0, metric="val_accuracy").study_id
    store.add_round(study_id, space=space_to_dict(SPACE), box=None, sampler="random")
    store.close()
    acc = data["accuracy"]
    trials, epochs = acc.shape
    now = time.time() - trials
    acts = ("relu", "tanh")
    trial_rows = [
        (
            i + 1,
            study_id,
            i,
            i,
            1,
            json.dumps(
                {
                    "lr": float(data["lr"][i]),
                    "beta": float(data["beta"][i]),
                    "units": int(data["units"][i]),
                    "act": acts[int(data["act"][i])],
                },
                separators=(",", ":"),
            ),
            1,
            float(acc[i, -1]),
            now + i,
            now + i + 0.9,
            epochs,  # counted when it finished, as the store does
        )
        for i in range(trials)
    ]
    curve_rows = [
        (
            i + 1,
            e + 1,
            f'{{"val_accuracy":{float(acc[i, e])!r},"loss":{float(1 - acc[i, e])!r}}}',
            i * epochs + e + 1,
        )
        for i in range(trials)
        for e in range(epochs)
    ]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO trials (trial_id, study_id, number, sample_id, round, params, state, value, "
        "started, finished, epochs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        trial_rows,
    )
    con.executemany(
        "INSERT INTO curves (trial_id, epoch, metrics, seq) VALUES (?, ?, ?, ?)", curve_rows
    )
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - began


def build_optuna(path: Path, data: dict[str, np.ndarray]) -> tuple[float, int]:
    """The same trials in an Optuna RDB store. Seconds taken, and the study id."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
        distribution_to_json,
    )

    began = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name=NAME, storage=url, direction="maximize")
    dists = {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "beta": FloatDistribution(0.9, 0.999),
        "units": IntDistribution(10, 100),
        "act": CategoricalDistribution(["relu", "tanh"]),
    }
    study_id = study._study_id
    del study
    acc = data["accuracy"]
    trials, epochs = acc.shape
    start = time.time() - trials
    stamp = lambda s: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s)) + ".000000"  # noqa: E731
    json_of = {name: distribution_to_json(d) for name, d in dists.items()}
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) "
        "VALUES (?, ?, ?, 'COMPLETE', ?, ?)",
        [(i + 1, i, study_id, stamp(start + i), stamp(start + i + 0.9)) for i in range(trials)],
    )
    params = []
    for i in range(trials):
        internal = {
            "lr": float(data["lr"][i]),
            "beta": float(data["beta"][i]),
            "units": float(data["units"][i]),
            "act": float(data["act"][i]),
        }
        params += [(i + 1, name, value, json_of[name]) for name, value in internal.items()]
    con.executemany(
        "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
        "VALUES (?, ?, ?, ?)",
        params,
    )
    con.executemany(
        "INSERT INTO trial_values (trial_id, objective, value, value_type) "
        "VALUES (?, 0, ?, 'FINITE')",
        [(i + 1, float(acc[i, -1])) for i in range(trials)],
    )
    con.executemany(
        "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
        "intermediate_value_type) VALUES (?, ?, ?, 'FINITE')",
        [(i + 1, e + 1, float(acc[i, e])) for i in range(trials) for e in range(epochs)],
    )
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - began, study_id


# -- timing --------------------------------------------------------------------------------------

TUNERY_OPEN = [
    "/",
    f"/api/studies/{NAME}",
    f"/api/studies/{NAME}/curves",
    f"/api/studies/{NAME}/best",
    f"/api/studies/{NAME}/trials?limit=100",
]


def optuna_open(study_id: int) -> list[str]:
    return ["/dashboard", "/api/meta", "/api/studies", f"/api/studies/{study_id}"]


def page_open(get: Callable[[str], Any], paths: list[str]) -> tuple[float, int]:
    """Seconds for the requests one after the other (as a page issues them), and bytes received."""
    began = time.perf_counter()
    cpu_began = time.process_time()
    size = 0
    for path in paths:
        response = get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        size += len(response.content)
    # The process's CPU seconds (every thread: the server's too, in process) go to cpu_spent:
    # on a machine shared with other work they vary far less than the wall-clock seconds.
    cpu_spent.append(time.process_time() - cpu_began)
    return time.perf_counter() - began, size


cpu_spent: list[float] = []  # CPU seconds of each page_open, in order


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class InProcess:
    """httpx over ASGI, called from plain code: each request runs in its own event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str) -> Any:
        import anyio
        import httpx

        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                return await client.get(path)

        return anyio.run(fetch)


def time_tunery(path: Path, repeats: int) -> dict[str, float]:
    import httpx

    from tunery.dashboard import create_app

    result: dict[str, float] = {}
    colds, warms = [], []
    cpus = []
    for _ in range(repeats):
        app = create_app(f"sqlite:///{path}")
        client = InProcess(app)
        colds.append(page_open(client.get, TUNERY_OPEN)[0])
        cpus.append(cpu_spent[-1])
        warm, size = page_open(client.get, TUNERY_OPEN)
        warms.append(warm)
        app.state.store.close()
    result["asgi_cold"], result["asgi_warm"], result["bytes"] = min(colds), min(warms), size
    result["asgi_cold_cpu"] = min(cpus)
    colds, warms = [], []
    for _ in range(repeats):
        app = create_app(f"sqlite:///{path}")
        with uvicorn_server(app) as url, httpx.Client(base_url=url, timeout=120) as client:
            colds.append(page_open(client.get, TUNERY_OPEN)[0])
            warms.append(page_open(client.get, TUNERY_OPEN)[0])
        app.state.store.close()
    result["http_cold"], result["http_warm"] = min(colds), min(warms)
    return result


def time_optuna(path: Path, study_id: int, repeats: int) -> dict[str, float]:
    import httpx
    import optuna
    from optuna_dashboard import wsgi

    paths = optuna_open(study_id)
    result: dict[str, float] = {}
    colds, warms = [], []
    cpus = []
    for _ in range(repeats):
        app = wsgi(optuna.storages.RDBStorage(f"sqlite:///{path}"))
        with httpx.Client(
            transport=httpx.WSGITransport(app), base_url="http://127.0.0.1"
        ) as client:
            colds.append(page_open(client.get, paths)[0])
            cpus.append(cpu_spent[-1])
            warm, size = page_open(client.get, paths)
            warms.append(warm)
    result["asgi_cold"], result["asgi_warm"], result["bytes"] = min(colds), min(warms), size
    result["asgi_cold_cpu"] = min(cpus)
    colds, warms = [], []
    for _ in range(repeats):
        app = wsgi(optuna.storages.RDBStorage(f"sqlite:///{path}"))
        with wsgi_server(app) as url, httpx.Client(base_url=url, timeout=600) as client:
            colds.append(page_open(client.get, paths)[0])
            warms.append(page_open(client.get, paths)[0])
    result["http_cold"], result["http_warm"] = min(colds), min(warms)
    return result


# -- in a real browser ---------------------------------------------------------------------------

# Records, in the page, when each panel first carries its data-ready marker (app.js sets it once the
# panel is drawn), after the frame that paints it: milliseconds since navigation started.
MARKS_SCRIPT = """
window.__tuneryMarks = {};
new MutationObserver((records) => {
  for (const record of records) {
    const node = record.target;
    const id = node.id;
    if (!id || !node.dataset.ready || id in window.__tuneryMarks) continue;
    window.__tuneryMarks[id] = null;
    const mark = () => { window.__tuneryMarks[id] = performance.now(); };
    requestAnimationFrame(() => setTimeout(mark));
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
"""
PANELS = {"curves": "curves-chart", "best": "best-chart", "table": "trials", "scatters": "scatters",
          "importance": "importance", "page": "app"}  # fmt: skip
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip


def chromium_path() -> str | None:
    given = os.environ.get("TUNERY_CHROMIUM")
    for candidate in [given] if given else ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
        if Path(candidate).exists():
            return candidate
    return None


@contextmanager
def dashboard_process(path: Path) -> Iterator[str]:
    """``tunery dashboard`` on the store in a new process (so cold is cold: nothing imported or
    read yet); yields its URL once it answers."""
    import httpx

    port = free_port()
    process = subprocess.Popen(dashboard_command(path, port), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/config", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the dashboard did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def dashboard_command(path: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tunery", "dashboard", "--storage", f"sqlite:///{path}",
            "--port", str(port)]  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_in_browser(page: Any, url: str | None) -> dict[str, float]:
    """Navigate to the study (``url``; ``None``: reload) and wait until the whole page is drawn;
    seconds from navigation to each panel drawn."""
    if url is None:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_function("() => window.__tuneryMarks && window.__tuneryMarks.app > 0")
    marks = page.evaluate("() => window.__tuneryMarks")
    return {panel: marks[id_] / 1000 for panel, id_ in PANELS.items()}


def sort_by_value(page: Any) -> float:
    """Seconds from a click on the value column to the table redrawn in that order."""
    first = page.locator("#trials tbody tr").first.get_attribute("data-number")
    began = time.perf_counter()
    page.click('#trials th[data-sort="value"]')
    page.wait_for_function(
        "(before) => { const row = document.querySelector('#trials tbody tr');"
        " return row && row.dataset.number !== before; }",
        arg=first,
    )
    return time.perf_counter() - began


def time_browser(path: Path, repeats: int) -> dict[str, list[dict[str, float]]] | None:
    """Cold (a new dashboard process, a new browser context) and warm (a reload) opens of the
    study page in headless Chromium; ``None`` (and a line saying why) without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print('browser timing skipped: playwright is not installed (pip install -e ".[test]")')
        return None
    executable = chromium_path()
    if executable is None:
        print("browser timing skipped: no Chromium (apt-get install chromium, or TUNERY_CHROMIUM)")
        return None
    found: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        for _ in range(repeats):
            with dashboard_process(path) as url:
                context = browser.new_context(viewport={"width": 1280, "height": 900},
                                              bypass_csp=True)  # fmt: skip
                context.set_default_timeout(120_000)
                context.add_init_script(MARKS_SCRIPT)
                try:
                    page = context.new_page()
                    found["cold"].append(open_in_browser(page, f"{url}/#/study/{NAME}"))
                    found["warm"].append(open_in_browser(page, None))
                    found["warm"][-1]["sort"] = sort_by_value(page)
                finally:
                    context.close()  # first: the page's open stream would hold the server up
        browser.close()
    return found


def _show_browser(found: dict[str, list[dict[str, float]]]) -> None:
    for kind, runs in found.items():
        for panel in ["curves", "page", *(["sort"] if kind == "warm" else [])]:
            figures = ", ".join(f"{run[panel]:.2f}" for run in runs)
            best = min(run[panel] for run in runs)
            print(f"browser {kind} {panel:7s} s: {figures} (best {best:.2f})")
    slowest = max(run["page"] for run in found["cold"])
    panels = ", ".join(f"{p} {found['cold'][-1][p]:.2f}" for p in PANELS)
    print(f"browser cold, last run, each panel drawn at s: {panels}")
    if slowest >= 2.0:
        print("GOAL MISSED: a cold page settled in 2 s or more in the browser", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="best of N page opens")
    parser.add_argument("--quick", action="store_true", help="2,000 trials, 1 repeat")
    parser.add_argument("--no-optuna", action="store_true", help="time tunery only")
    parser.add_argument("--dir", type=Path, help="where the stores go [default: a temp folder]")
    parser.add_argument(
        "--browser", action="store_true", help="also time the page in headless Chromium"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.repeats = 2000, 1
    folder = args.dir or Path(tempfile.mkdtemp(prefix="tunery-dash-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tunery.db", "optuna.db"):
        for suffix in ("", "-wal", "-shm"):
            (folder / (name + suffix)).unlink(missing_ok=True)
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; "
        f"python {platform.python_version()}"
    )
    print(f"study: {args.trials} trials x {args.epochs} epochs, best of {args.repeats}")
    data = draw(args.trials, args.epochs)
    built = build_tunery(folder / "tunery.db", data)
    print(
        f"tunery store built in {built:.1f} s "
        f"({(folder / 'tunery.db').stat().st_size / 1e6:.0f} MB)"
    )
    mine = time_tunery(folder / "tunery.db", args.repeats)
    _show("tunery", mine)
    if args.browser:
        in_browser = time_browser(folder / "tunery.db", args.repeats)
        if in_browser is not None:
            _show_browser(in_browser)
    peer = None
    if not args.no_optuna:
        try:
            import optuna_dashboard  # noqa: F401
        except ImportError:
            print("optuna-dashboard is not installed: no side-by-side figure")
        else:
            built, study_id = build_optuna(folder / "optuna.db", data)
            print(f"optuna store built in {built:.1f} s")
            peer = time_optuna(folder / "optuna.db", study_id, args.repeats)
            _show("optuna-dashboard", peer)
    if peer is not None:
        for key in ("asgi_cold", "asgi_cold_cpu", "http_cold", "http_warm"):
            print(f"ratio optuna-dashboard / tunery, {key}: {peer[key] / mine[key]:.1f}x")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if mine["http_cold"] >= 2.0:
        print("GOAL MISSED: the page open took 2 s or more", file=sys.stderr)


def _show(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label:17s} page open: in process cold {figures['asgi_cold']:.3f} s "
        f"(CPU {figures['asgi_cold_cpu']:.3f} s), warm "
        f"{figures['asgi_warm']:.3f} s; HTTP cold {figures['http_cold']:.3f} s, warm "
        f"{figures['http_warm']:.3f} s; {figures['bytes'] / 1e3:.0f} kB"
    )


if __name__ == "__main__":
    main()
