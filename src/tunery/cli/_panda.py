"""``tunery panda``: babysit one model; ``nudge``, ``rollback``, ``pause``, ``resume`` steer it.

``panda`` trains one trial of a config's study in the foreground, one epoch at a time, and shows
its learning curve as it goes (a live view in a terminal, one line per epoch in a pipe). From a
second terminal, the control commands queue events in the study's store; panda applies them at
the next epoch boundary. Each control command validates everything first: a mistake is one line
on stderr, exit code 2, and nothing written. See ``tunery.workflows.panda`` for what each event
does, how a branch ends and how a re-run continues.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tunery._exceptions import ConfigError
from tunery.cli._app import STORAGE_OPTION, app, console, console_err
from tunery.cli._pictures import assignments_text, lineage_tree, sparkline, value_text
from tunery.config import DEFAULT_STORAGE, SEARCHABLE, TuneConfig, load_config, trial_data
from tunery.nn.train import EpochMetrics
from tunery.records import Event
from tunery.storage import get_storage
from tunery.study import Study, load_study
from tunery.workflows.objective import check_resizable, load_config_dataset, trial_settings
from tunery.workflows.panda import AppliedEvent, Panda, PandaControl, branch_curve
from tunery.workflows.pbt import PopulationControl, is_population

__all__ = ["nudge", "panda", "parse_assignments", "pause", "resume", "rollback"]

_MEMORY_URLS = ("memory", ":memory:", "sqlite:///:memory:", "sqlite://")
_CHART_WIDTH = 60  # epochs shown in the live chart (the latest ones)


# ------------------------------------------------------------------------------------ NAME=VALUE


def parse_assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    """``["lr=3e-4", "batch_size=32"]`` → ``{"lr": 0.0003, "batch_size": 32}``.

    Values read as an int, else a float, else ``true``/``false``, else the text itself; the
    settings they are meant for check them. Each name may appear once.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        name, sign, text = item.partition("=")
        name = name.strip()
        if not sign or not name or not text.strip():
            raise ConfigError(option, item, "NAME=VALUE, e.g. lr=3e-4")
        if name in parsed:
            raise ConfigError(option, item, f"each name once ({name} is given twice)")
        parsed[name] = _parse_value(text.strip())
    return parsed


def _parse_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# ----------------------------------------------------------------------------------------- panda


@app.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="A model setting for the first branch, e.g. --set lr=3e-4 --set beta=0.95 (repeatable).",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), help="The epoch a branch trains to [default: config]."
)
@click.option("--storage", help="Study store URL (study.storage).")
@click.option("--name", help="Study name (study.name).")
@click.option(
    "--live/--no-live",
    default=None,
    help="Redraw one live view [default: in a terminal] instead of printing a line per epoch.",
)
@click.option("--epoch-delay", type=click.FloatRange(min=0), default=0.0, hidden=True)
def panda(
    config: Path,
    assignments: tuple[str, ...],
    epochs: int | None,
    storage: str | None,
    name: str | None,
    live: bool | None,
    epoch_delay: float,
) -> None:
    """Babysit one model of CONFIG's study, epoch by epoch ("day by day").

    Trains one trial with the config's [model] settings and the --set values, checkpointing every
    epoch, until --epochs are done or you stop it (Ctrl-C records the trial interrupted). Steer it
    from another terminal; each command applies at the next epoch boundary:

    \b
      tunery nudge STUDY lr=3e-4 beta=0.95   change hyperparameters from the next epoch on
      tunery rollback STUDY --epoch 12       go on from epoch 12's checkpoint, as a new branch
      tunery pause STUDY / tunery resume STUDY

    Running the same command again continues the latest branch from its last checkpoint
    (--set must then be left out or unchanged). `tunery show STUDY` draws the lineage.
    """
    settings = load_config(config).with_overrides(name=name, storage=storage)
    params = _checked_settings(settings, parse_assignments(assignments, "--set"))
    dataset = load_config_dataset(settings)  # before the store: bad data writes nothing
    with _open_study(settings) as study:
        babysitter = Panda(
            study, settings, params or None, epochs=epochs or settings.epochs, dataset=dataset
        )
        view = _View(babysitter, live if live is not None else console.is_terminal)
        view.start()
        try:
            _babysit(babysitter, view, epoch_delay)
        except KeyboardInterrupt:
            view.interrupted()
            raise
        finally:
            view.stop()
        view.finish()


def _checked_settings(config: TuneConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """``--set`` values, checked against the config's model before anything is opened."""
    for name in params:
        if name not in SEARCHABLE:
            raise ConfigError("--set", name, "a model setting: " + ", ".join(SEARCHABLE))
    try:
        trial_settings(config, params)
        data = trial_data(config.data, params)
    except ConfigError as error:
        field = error.field.replace("model.", "--set ", 1).replace("data.", "--set ", 1)
        raise ConfigError(field, error.value, error.expected) from None
    if data != config.data:
        check_resizable(data, "--set image_size")
    return dict(params)


def _open_study(config: TuneConfig) -> Study:
    study = config.study
    return Study(
        study.name, study.storage, direction=study.direction, seed=study.seed, metric=study.metric
    )


def _babysit(babysitter: Panda, view: _View, epoch_delay: float) -> None:
    """The loop: boundary (events), epoch, show; sleep while paused. Leaving it early (Ctrl-C)
    records the branch interrupted."""
    with babysitter:
        while not babysitter.done:
            trained = _boundary_and_epoch(babysitter, view)
            if _finished(babysitter):
                break
            if not trained:
                babysitter.wait()
            elif epoch_delay:
                time.sleep(epoch_delay)


def _boundary_and_epoch(babysitter: Panda, view: _View) -> bool:
    """Apply the queued events and train an epoch (unless paused); show both. Trained?"""
    seen = len(babysitter.events)
    metrics = babysitter.run_epoch()
    view.update(babysitter.events[seen:], metrics)
    return metrics is not None


def _finished(babysitter: Panda) -> bool:
    # A function, not `babysitter.done` inline: the type checker would take the loop's test to
    # still hold after run_epoch changed it.
    return babysitter.done


class _View:
    """What panda shows: a live view (chart, figures, hyperparameters, events) or plain lines."""

    def __init__(self, babysitter: Panda, live: bool) -> None:
        self.panda = babysitter
        self.study = babysitter.study
        self.live = live
        self.recent: list[AppliedEvent] = []
        self.last_branch = babysitter.branch
        self._live: Live | None = None

    def start(self) -> None:
        study, url = self.study.name, self.study.storage.url
        console.print(f"panda: study [bold]{escape(study)}[/] in {escape(url)}", highlight=False)
        if self.panda.done:
            console.print(
                f"nothing to do: the latest branch is at epoch {self.panda.epoch} of "
                f"{self.panda.epochs} (raise --epochs, or roll back with `tunery rollback`)",
                highlight=False,
            )
            return
        console.print(escape(self._branch_text()), highlight=False)
        storage = "" if url == DEFAULT_STORAGE else f" --storage {url}"
        console.print(
            f"[dim]steer it: tunery nudge {escape(study)} lr=3e-4 | tunery rollback "
            f"{escape(study)} --epoch N | tunery pause/resume {escape(study)}"
            f"{escape(storage)}[/]",
            highlight=False,
        )
        if self.live:
            self._live = Live(get_renderable=self.render, console=console, auto_refresh=False)
            self._live.start(refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, applied: Sequence[AppliedEvent], metrics: EpochMetrics | None) -> None:
        self.recent = [*self.recent, *applied][-5:]
        if self._live is not None:
            self._live.refresh()
            return
        for entry in applied:
            console.print(f"  ↳ {escape(entry.describe())}", highlight=False)
            if entry.kind == "pause" and entry.error is None:
                console.print("    paused: waiting for `tunery resume`", highlight=False)
        if self.panda.branch != self.last_branch:
            console.print(escape(self._branch_text()), highlight=False)
            self.last_branch = self.panda.branch
        if metrics is not None:
            console.print(escape(_epoch_line(self.last_branch, metrics, self.panda.epochs)))

    def interrupted(self) -> None:
        console_err.print(
            f"interrupted at epoch {self.panda.epoch}: the branch is recorded interrupted; "
            "run the same command to continue from its last checkpoint"
        )

    def finish(self) -> None:
        trials = self.study.trials
        if trials:
            last = trials[-1]
            value = last.value
            figure = "" if value is None else f", {self.study.metric} {value:.4f}"
            console.print(f"trial {last.number} {last.state.name}{figure}", highlight=False)
            console.print(lineage_tree(self.study))

    def _branch_text(self) -> str:
        babysitter = self.panda
        text = f"trial {babysitter.branch} ({babysitter.origin}"
        if babysitter.parent is not None:
            text += f" from trial {babysitter.parent[0]} @ epoch {babysitter.parent[1]}"
        return text + f"), training to epoch {babysitter.epochs}"

    # -- the live view ---------------------------------------------------------------------------

    def render(self) -> RenderableType:
        babysitter = self.panda
        state = "done" if babysitter.done else "paused" if babysitter.paused else "running"
        header = Text.assemble(
            ("panda ", "bold"),
            f"{self.study.name}  ",
            (self._branch_text() if babysitter.branch is not None else "no branch", "cyan"),
            f"  epoch {babysitter.epoch}/{babysitter.epochs}  ",
            (state, "yellow" if babysitter.paused else "green"),
        )
        parts: list[RenderableType] = [header, self._chart()]
        if babysitter.branch is not None:
            hp = babysitter.hyperparameters
            shown = "  ".join(f"{k}={value_text(v)}" for k, v in hp.items())
            parts.append(Text(shown, style="dim"))
        parts += [Text(f"↳ {entry.describe()}", style="dim") for entry in self.recent]
        return Group(*parts)

    def _chart(self) -> Table:
        trials = self.study.trials
        number = self.panda.branch if self.panda.branch is not None else trials[-1].number
        curve = branch_curve(trials, number)
        epochs = sorted(curve)[-_CHART_WIDTH:]
        parent = self.panda.parent
        own = 0 if parent is None else parent[1] + 1  # epochs before this are the ancestors'
        table = Table.grid(padding=(0, 1))
        for name, label, bounds in (
            ("loss", "cost", (None, None)),
            ("val_accuracy", "val acc", (0.0, 1.0)),
            ("train_accuracy", "train acc", (0.0, 1.0)),
        ):
            values = [curve[e].get(name, math.nan) for e in epochs]
            line = sparkline(values, *bounds)
            split = sum(1 for e in epochs if e < own)
            chart = Text.assemble((line[:split], "dim"), (line[split:], "bold"))
            latest = f"{values[-1]:.4f}" if values else "—"
            table.add_row(label, chart, latest)
        return table


def _epoch_line(branch: int | None, metrics: EpochMetrics, epochs: int) -> str:
    val = "—" if metrics.val_accuracy is None else f"{metrics.val_accuracy:.4f}"
    return (
        f"trial {branch}  epoch {metrics.epoch}/{epochs}  cost {metrics.cost:.4f}  "
        f"train {metrics.train_accuracy:.4f}  val {val}  lr {metrics.lr:.4g}"
    )


# ------------------------------------------------------------------------------ control commands


def _control_command(function: Callable[..., None]) -> click.Command:
    """A control command on ``app``: the STUDY argument first, ``--storage`` last."""
    with_storage = STORAGE_OPTION(function)
    return app.command()(click.argument("study_name", metavar="STUDY")(with_storage))


@_control_command
@click.argument("assignments", nargs=-1, metavar="NAME=VALUE...")
@click.option(
    "--member",
    type=int,
    help="A PBT study: the member to nudge (applied at its next interval boundary).",
)
def nudge(study_name: str, assignments: tuple[str, ...], member: int | None, storage: str) -> None:
    """Change hyperparameters of the model panda trains, from its next epoch on.

    NAME is lr, l2, batch_size, or beta, beta2, epsilon where the optimizer uses them:
    `tunery nudge digits lr=3e-4 beta=0.95`. In a PBT study (`tunery pbt`), --member M nudges
    member M from its next interval boundary on, recorded as made by hand.
    """
    changes = parse_assignments(assignments, "NAME=VALUE")
    with _control(study_name, storage) as control:
        if is_population(control.study):
            _nudge_member(PopulationControl(control.study), member, changes)
            return
        if member is not None:
            raise ConfigError("--member", member, "no --member: this is a panda study, not PBT")
        _queued(control, control.nudge(**changes))


def _nudge_member(control: PopulationControl, member: int | None, changes: dict[str, Any]) -> None:
    if member is None:
        raise ConfigError("--member", None, "the member to nudge (a PBT study has many)")
    event = control.nudge(member, **changes)
    console.print(
        f"queued nudge {escape(assignments_text(event.payload))} (event {event.event_id}) for "
        f"member {member} of {escape(repr(control.study.name))}: applied at its next interval "
        "boundary (when `tunery pbt` runs the study)",
        highlight=False,
    )


@_control_command
@click.option("--epoch", type=click.IntRange(min=0), required=True, help="The epoch to go back to.")
@click.option(
    "--trial",
    "trial_number",
    type=click.IntRange(min=0),
    help="Take the epoch on this trial's path [default: the latest branch].",
)
def rollback(study_name: str, epoch: int, trial_number: int | None, storage: str) -> None:
    """Go back to an epoch's checkpoint and go on from there as a new branch.

    The current branch ends (PRUNED); the new one starts from the checkpoint bit for bit, with the
    hyperparameters in force when that epoch ended.
    """
    with _control(study_name, storage) as control:
        _queued(control, control.rollback(epoch, trial_number))


@_control_command
def pause(study_name: str, storage: str) -> None:
    """Pause panda at the next epoch boundary (it waits, still taking nudges and rollbacks)."""
    with _control(study_name, storage) as control:
        _queued(control, control.pause())


@_control_command
def resume(study_name: str, storage: str) -> None:
    """Let a paused panda train again."""
    with _control(study_name, storage) as control:
        _queued(control, control.resume())


@contextmanager
def _control(study_name: str, url: str) -> Iterator[PandaControl]:
    """The control side of a study in an existing store (a missing file is never created)."""
    with load_study(study_name, get_storage(url, create=False, field="--storage")) as study:
        yield PandaControl(study)


def _queued(control: PandaControl, event: Event) -> None:
    what = event.kind + (" " + assignments_text(event.payload) if event.kind == "nudge" else "")
    if event.kind == "rollback":
        what += f" to trial {event.payload['trial']} @ epoch {event.payload['epoch']}"
    name = control.study.name
    when = (
        "at its next epoch boundary"
        if control.running()
        else f"when `tunery panda` next runs study {name!r} (none runs it now)"
    )
    console.print(
        f"queued {escape(what)} (event {event.event_id}) for trial {event.trial_number} of "
        f"{escape(repr(name))}: applied {escape(when)}",
        highlight=False,
    )
