"""The dashboard page in a real headless Chromium (Debian's), driven by Playwright's sync API.

Playwright's own browser download does not work here, so the tests point it at the system
Chromium (``/usr/bin/chromium``, or ``TUNERY_CHROMIUM``). Without one they skip, unless
``TUNERY_REQUIRE_BROWSER=1`` (CI sets it once it has installed Chromium): then they fail.

Studies run in subprocesses writing to a real SQLite store while the page watches; every wait
polls for a condition with a generous timeout (a loaded 2-core machine), none asserts a time.
Screenshots go to the test's folder; with ``TUNERY_SCREENSHOTS=1`` they are also copied into
docs/images/ (how the pictures in docs/dashboard.md were made).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.dashboard.conftest import ESCAPED_NAME, serving
from tunery import Float
from tunery.records import TrialState
from tunery.storage import get_storage
from tunery.study import Study, load_study
from tunery.workflows.panda import branch_events

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 90.0  # seconds any condition may take on a loaded machine
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

T = TypeVar("T")


def chromium_path() -> str | None:
    given = os.environ.get("TUNERY_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def _missing(reason: str) -> None:
    if os.environ.get("TUNERY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TUNERY_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing('playwright is not installed (pip install -e ".[test]")')
    executable = chromium_path()
    if executable is None:
        _missing("no Chromium found (apt-get install chromium, or set TUNERY_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def new_page(browser: Any, *, bypass_csp: bool) -> Iterator[Any]:
    """A page in a fresh context; fails the test if the page raised any error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
    context.set_default_timeout(WAIT * 1000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page where the test may run its own JavaScript (evaluate, wait_for_function): the
    page's Content-Security-Policy forbids evaluating strings, so these tests bypass it."""
    with new_page(browser, bypass_csp=True) as opened:
        yield opened


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    """A page under the page's own Content-Security-Policy (the test only uses locators)."""
    with new_page(browser, bypass_csp=False) as opened:
        yield opened


def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def screenshot(page: Any, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "an empty screenshot"
    if os.environ.get("TUNERY_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / name)
    return path


@contextmanager
def running_script(tmp_path: Path, source: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``source`` in a Python subprocess; stop it (Ctrl-C, then kill) when the block ends."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(source))
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen([sys.executable, str(script), *args], stdout=log, stderr=log)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def alive(process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    if process.poll() is not None:
        pytest.fail(f"the study's process ended early:\n{(tmp_path / 'run.log').read_text()}")


# ------------------------------------------------------------------------------- names and pages


def test_names_show_as_text_and_two_studies_compare(
    strict_page: Any, dashboard_url: str, caviar_db: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = strict_page
    done = [t for t in load_study("digits", caviar_db).trials if t.state is TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value or 0.0)
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() from a study name would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{dashboard_url}/#/")
    cell = page.locator("#studies td.name a", has_text="alert")
    assert cell.text_content() == ESCAPED_NAME
    assert page.locator("#studies script").count() == 0
    assert not dialogs, "a study name ran as script"

    page.locator(f'input[data-study="{ESCAPED_NAME}"]').check()
    page.locator('input[data-study="digits"]').check()
    page.locator("#compare").click()
    page.wait_for_selector("#compare-best canvas")
    page.wait_for_selector("#compare-scatter canvas")
    assert ESCAPED_NAME in page.locator("h1").text_content()

    page.locator("#crumbs a", has_text="studies").click()
    page.locator("#studies td.name a", has_text="alert").click()
    page.wait_for_selector("#best-chart canvas")
    page.wait_for_selector("#trials tbody tr")
    assert page.locator("h1").text_content() == ESCAPED_NAME
    assert page.title().startswith(ESCAPED_NAME)
    assert not dialogs, "a study name ran as script"

    page.goto(f"{dashboard_url}/#/study/digits")
    page.wait_for_selector('#scatters .chart[data-param="beta"] canvas')
    page.wait_for_selector("#curves-chart canvas")
    page.wait_for_selector("#trials tbody tr")
    expect(page.locator("#table-info")).to_have_text("trials 1–24 of 24")
    page.locator('input[data-filter-state="PRUNED"]').check()
    expect(page.locator("#table-info")).to_have_text("trials 1–3 of 3")
    states = page.locator("#trials tbody .state").all_text_contents()
    assert states == ["PRUNED"] * 3
    page.locator('input[data-filter-state="PRUNED"]').uncheck()
    page.locator('th[data-sort="value"]').click()
    page.locator('th[data-sort="value"]').click()  # descending: the best first
    page.wait_for_selector('th[data-sort="value"].desc')
    expect(page.locator("#table-info")).to_have_text("trials 1–24 of 24")
    expect(page.locator("#trials tbody tr").first).to_have_attribute(
        "data-number", str(best.number)
    )
    screenshot(page, tmp_path, "dashboard-caviar.png")
    page.goto("about:blank")  # close the page's event stream before the server stops


# ------------------------------------------------------------------------------- a study, live

CAVIAR = """
import math, sys, time
from tunery import Float, Int, Study

def learning(trial):
    lr, units = trial.params["lr"], trial.params["units"]
    ceiling = 0.95 - 0.1 * abs(math.log10(lr) + 2) - (units - 50) ** 2 / 1e5
    accuracy = 0.0
    for epoch in range(1, 41):
        time.sleep(0.25)
        accuracy = ceiling * (1 - 0.85 ** epoch)
        trial.report(epoch, val_accuracy=accuracy, loss=1 - accuracy)
    return accuracy

space = {"lr": Float(1e-4, 1.0, scale="log"), "units": Int(10, 100)}
with Study("live", sys.argv[1], "maximize", seed=3) as study:
    study.caviar(learning, space, n_trials=8, workers=1, live=False)
"""


def test_a_running_trials_curve_grows_on_the_open_page(page: Any, tmp_path: Path) -> None:
    from tunery.dashboard import create_app

    url = f"sqlite:///{tmp_path / 'live.db'}"
    Study("live", url, "maximize", seed=3).close()  # the store exists before the dashboard opens it
    app = create_app(url, poll=0.1)
    with running_script(tmp_path, CAVIAR, url) as process, serving(app) as base:
        page.goto(f"{base}/#/study/live")
        page.evaluate("window.__same_page = true")  # gone if anything reloads the page
        running = page.locator("#running li[data-trial]")
        seen: dict[str, int] = {}  # trial number -> epochs on the page when first seen

        def grown() -> tuple[str, int, int] | None:
            alive(process, tmp_path)
            for item in running.all():
                number, epochs = item.get_attribute("data-trial"), item.get_attribute("data-epochs")
                if number is None or epochs is None:
                    continue
                if number in seen and int(epochs) > seen[number]:
                    return number, seen[number], int(epochs)
                seen.setdefault(number, int(epochs))
            return None

        number, before, after = eventually(grown, "a running trial's curve to gain points")
        assert after > before
        assert page.evaluate("window.__same_page === true"), "the page was reloaded"
        drawn = page.locator("#curves-chart").evaluate(
            """(holder, label) => {
                const u = holder.uplot, at = u.series.findIndex((s) => s.label === label);
                return at < 0 ? 0 : u.data[at].filter((y) => y !== null).length;
            }""",
            f"#{number}",
        )
        assert drawn >= after, "the chart does not hold the points the list shows"
        # The rest of the page follows the stream too: the table and the counts show the trial.
        page.wait_for_selector(f'#trials tbody tr[data-number="{number}"]')
        page.wait_for_selector('#stats [data-state="RUNNING"]')
        screenshot(page, tmp_path, "dashboard-live.png")
        page.goto("about:blank")
    app.state.store.close()


# ------------------------------------------------------------------------------- panda controls

PANDA = """
import sys, time
from tunery.config import config_from_dict
from tunery.study import Study
from tunery.workflows.panda import babysit

config = config_from_dict({
    "study": {"name": "cub"},
    "data": {"source": "digits"},
    "model": {"layers": [12], "epochs": 400},
    "space": {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}},
})
with Study("cub", sys.argv[1]) as study:
    babysit(study, config, {"lr": 3e-3}, control=lambda panda: time.sleep(0.3))
"""
NEW_LR = 4e-4


def test_steer_a_panda_from_its_page(page: Any, tmp_path: Path) -> None:
    from tunery.dashboard import create_app

    url = f"sqlite:///{tmp_path / 'panda.db'}"
    Study("cub", url).close()
    store = get_storage(url)
    study_id = store.get_study("cub").study_id  # type: ignore[union-attr]
    app = create_app(url, poll=0.1)
    with running_script(tmp_path, PANDA, url) as process, serving(app) as base:

        def head_epochs(least: int) -> bool:
            alive(process, tmp_path)
            trials = load_study("cub", store).trials
            return bool(trials) and len(trials[0].curve) >= least

        eventually(lambda: head_epochs(3), "panda's first epochs")
        page.goto(f"{base}/#/study/cub/trial/0")

        # Nudge lr on its log scale: the event is in the store, and the next epoch trains with it.
        page.locator('input[data-nudge="lr"]').fill(str(NEW_LR))
        page.locator('button[data-set="lr"]').click()
        page.wait_for_function(
            "document.querySelector('#control-message').textContent.startsWith('Queued nudge')"
        )
        nudges = [e for e in store.get_events(study_id, pending=False) if e.kind == "nudge"]
        assert [e.payload for e in nudges] == [{"lr": NEW_LR}]

        def applied_at() -> int | None:
            alive(process, tmp_path)
            trial = load_study("cub", store).trials[0]
            entries = [e for e in branch_events(trial) if e.event_id == nudges[0].event_id]
            if entries and trial.curve.get(entries[0].epoch + 1):
                return entries[0].epoch + 1
            return None

        next_epoch = eventually(applied_at, "panda to apply the nudge")
        trained = load_study("cub", store).trials[0].curve[next_epoch]
        assert math.isclose(trained["lr"], NEW_LR, rel_tol=1e-9)
        page.wait_for_selector('#events li[data-kind="nudge"][data-applied="yes"]')
        page.wait_for_function(
            "document.querySelector('[data-now=\"lr\"]').textContent.startsWith(' now 0.0004 ')"
        )
        screenshot(page, tmp_path, "dashboard-panda.png")

        # Pause (so the curve holds still), click epoch 2 on the curve, roll back to it, resume.
        page.locator("#pause").click()
        page.wait_for_selector('#events li[data-kind="pause"][data-applied="yes"]')
        holder = page.locator('#trial-charts .chart[data-metric="val_accuracy"]')
        holder.scroll_into_view_if_needed()
        where = holder.evaluate(
            """(holder) => {
                const u = holder.uplot, box = u.over.getBoundingClientRect();
                return [box.left + u.valToPos(2, "x"), box.top + box.height / 2];
            }"""
        )
        page.mouse.click(where[0], where[1])
        assert page.locator("#rollback").text_content() == "Roll back to epoch 2"
        page.locator("#rollback").click()
        page.wait_for_function(
            "document.querySelector('#control-message').textContent.startsWith('Queued rollback')"
        )
        rollbacks = [e for e in store.get_events(study_id, pending=False) if e.kind == "rollback"]
        assert [e.payload for e in rollbacks] == [{"trial": 0, "epoch": 2}]
        page.locator("#resume").click()

        def branched() -> bool:
            alive(process, tmp_path)
            trials = load_study("cub", store).trials
            return len(trials) > 1 and trials[1].parent == (0, 2) and len(trials[1].curve) >= 1

        eventually(branched, "panda to start a branch from epoch 2 and train it")
        page.wait_for_selector('#lineage li[data-number="1"]')
        assert load_study("cub", store).trials[0].state is not TrialState.RUNNING
        page.goto("about:blank")
    store.close()
    app.state.store.close()


def test_read_only_hides_the_controls(page: Any, tmp_path: Path) -> None:
    from tunery.config import config_from_dict
    from tunery.dashboard import create_app
    from tunery.workflows.panda import babysit

    url = f"sqlite:///{tmp_path / 'panda.db'}"
    tables = {
        "study": {"name": "cub"},
        "data": {"source": "digits"},
        "model": {"layers": [12], "epochs": 3},
        "space": {"lr": {"low": 1e-3, "high": 1e-2, "scale": "log"}},
    }
    with Study("cub", url) as study:
        babysit(study, config_from_dict(tables), {"lr": 3e-3}, control=lambda panda: None)
    app = create_app(url, read_only=True)
    with serving(app) as base:
        page.goto(f"{base}/#/study/cub/trial/0")
        page.wait_for_selector("#events")
        page.wait_for_selector('#trial-charts .chart[data-metric="val_accuracy"] canvas')
        assert page.locator("#controls").count() == 0
        assert page.locator("#mode").text_content() == "read-only"
        page.goto("about:blank")
    app.state.store.close()


def test_a_dashboard_with_a_token_opens_from_its_printed_url(page: Any, caviar_db: Path) -> None:
    from playwright.sync_api import expect

    from tunery.dashboard import create_app

    app = create_app(f"sqlite:///{caviar_db}", token="a-test-token")
    with serving(app) as base:
        page.goto(f"{base}/#/")
        assert "needs its token" in page.locator("body").text_content()
        assert page.locator("#app").count() == 0
        # The URL tunery prints: the token once, then the cookie carries it (API and stream).
        page.goto(f"{base}/?token=a-test-token#/study/digits")
        page.wait_for_selector("#trials tbody tr")
        expect(page.locator("#live")).to_have_text("live")
        page.goto("about:blank")
    app.state.store.close()


def test_the_studies_list_follows_the_store_and_compares_names_with_commas(
    strict_page: Any, tmp_path: Path
) -> None:
    """A study made, and trials added, while the list is open show without a reload; two
    studies whose names hold a comma compare."""
    from playwright.sync_api import expect

    from tunery.dashboard import create_app

    url = f"sqlite:///{tmp_path / 'list.db'}"
    space = {"lr": Float(1e-4, 1.0, scale="log")}

    def run(name: str, n_trials: int) -> None:
        with Study(name, url, "minimize") as study:
            study.caviar(lambda t: t.params["lr"], space, n_trials=n_trials, workers=1, live=False)

    run("lr, wide", 2)
    app = create_app(url)
    page = strict_page
    with serving(app) as base:
        page.goto(f"{base}/#/")
        rows = page.locator("#studies tbody tr")
        expect(rows).to_have_count(1)
        run("lr, narrow", 3)  # a new study
        run("lr, wide", 4)  # two more trials of the first (n_trials counts them all)
        expect(rows).to_have_count(2, timeout=WAIT * 1000)
        wide = page.locator('#studies tr[data-study="lr, wide"] td.num').nth(5)  # "trials"
        expect(wide).to_have_text("4", timeout=WAIT * 1000)
        page.locator('input[data-study="lr, wide"]').check()
        page.locator('input[data-study="lr, narrow"]').check()
        page.locator("#compare").click()
        page.wait_for_selector("#compare-best canvas")
        expect(page.locator("h1")).to_have_text("Comparing lr, wide, lr, narrow")
    app.state.store.close()
