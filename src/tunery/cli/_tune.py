"""``tunery tune``, ``ls``, ``show`` and ``export``: run a study from a config, then look at it.

``tune`` reads and validates the whole config (and the flags that override its ``[run]``) before
it opens the store, and loads the data before it creates the study, so a mistake costs nothing
and leaves no database behind. Re-running the same command continues the study: finished trials
are never re-run.

``ls``, ``show`` and ``export`` only read: they never create a store that is not there.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from tunery._exceptions import ConfigError
from tunery.cli._app import REPORT_DIR, STORAGE_OPTION, TOP_OPTION, app, console, console_err
from tunery.cli._pictures import result_text
from tunery.config import GUIDED, SAMPLERS, TuneConfig, default_config, load_config
from tunery.data import Dataset
from tunery.pruners import PRUNERS
from tunery.records import FrozenTrial, TrialState
from tunery.run import EXECUTORS, OUTPUT_LIMIT, connect
from tunery.space import Choice, Distribution, Float, Int
from tunery.storage import get_storage
from tunery.study import DEFAULT_HEARTBEAT_TIMEOUT, Round, Study, load_study
from tunery.workflows.objective import TEST_ACCURACY, TrainerObjective, open_study, run_study

__all__ = ["export", "ls", "show", "tune"]

_MEMORY_URLS = ("memory", ":memory:", "sqlite:///:memory:", "sqlite://")
_STATES = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.DIVERGED,
    TrialState.FAILED,
    TrialState.RUNNING,
)


# ------------------------------------------------------------------------------------------ tune


def study_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `tunery tune` and `tunery pbt` share: where trials run, the study, the report."""
    for option in reversed(_STUDY_RUN_OPTIONS):
        command = option(command)
    return command


_STUDY_RUN_OPTIONS = (
    click.option(
        "--executor", type=click.Choice(EXECUTORS), help="local processes or Ray (run.executor)."
    ),
    click.option(
        "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (run.address)."
    ),
    click.option(
        "--checkpoint-dir",
        help="Checkpoints go there, not in the store: a folder or fsspec URL (run.checkpoint_dir).",
    ),
    click.option("--seed", type=int, help="Seed of every draw (study.seed)."),
    click.option("--storage", help="Study store URL (study.storage)."),
    click.option("--name", help="Study name (study.name)."),
    click.option(
        "--report-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=REPORT_DIR,
        help="Where the HTML report goes (in a folder named after the study).",
    ),
    click.option("--report/--no-report", default=True, help="Write the HTML report at the end."),
)


@app.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trials", type=int, help="Finished trials to reach, over all rounds (run.trials).")
@click.option("--workers", type=int, help="Worker processes (run.workers).")
@click.option("--rounds", type=int, help="Coarse-to-fine rounds, zooming between (run.rounds).")
@click.option("--sampler", type=click.Choice(SAMPLERS), help="Sampler of new rounds (run.sampler).")
@click.option(
    "--guided",
    type=click.Choice(["none", *GUIDED]),
    help="Zoomed rounds draw from a model of the trials so far (run.guided).",
)
@click.option(
    "--pruner", type=click.Choice(["none", *PRUNERS]), help="Stop hopeless trials (run.pruner)."
)
@click.option("--epochs", type=int, help="Epochs per trial (run.epochs, over model.epochs).")
@study_run_options
@click.option("--quiet", is_flag=True, help="No line per finished trial.")
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the effective config (file or default, flags applied) as TOML; run nothing.",
)
def tune(
    config: Path | None,
    trials: int | None,
    workers: int | None,
    rounds: int | None,
    sampler: str | None,
    guided: str | None,
    pruner: str | None,
    epochs: int | None,
    executor: str | None,
    address: str | None,
    checkpoint_dir: str | None,
    seed: int | None,
    storage: str | None,
    name: str | None,
    report_dir: Path,
    report: bool,
    quiet: bool,
    print_config: bool,
) -> None:
    """Run the study a tune.toml describes; CONFIG defaults to the built-in digits study.

    The built-in study (see it with --print-config) tunes a batch-norm MLP on the bundled 8×8
    digits, coarse to fine: 2 rounds of random search over lr (log scale), beta (1 − β on a log
    scale), units and batch_size, with 2 worker processes.

    Flags override the matching keys of the config. Running the same command again continues
    the study: finished trials count and are never re-run. At the end it prints the best trial
    and its test accuracy, and writes the report to REPORT_DIR/<study>/ when tunery.report is
    installed.

    \b
    Config sections: [study] name, direction, metric, seed, storage
                     [data] source, classes, normalize, seed, val_fraction, test_fraction
                     [model] layers, batchnorm, optimizer, lr, beta, ..., epochs, backend
                     [space] lr = { low = 1e-4, high = 1, scale = "log" }, ...
                     [run] trials, workers, rounds, sampler, guided, guided_batch, pruner,
                           epochs, top, margin, executor, address, resources, checkpoint_dir
    Exit code 2 (and nothing written) for a bad config or flag.
    """
    settings = load_config(config) if config is not None else default_config()
    settings = settings.with_overrides(
        trials=trials,
        workers=workers,
        rounds=rounds,
        sampler=sampler,
        guided=guided,
        pruner=pruner,
        epochs=epochs,
        executor=executor,
        address=address,
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        storage=storage,
        name=name,
    )
    if print_config:
        click.echo(settings.to_toml(), nl=False)
        return
    _check_backend(settings)
    _check_pool(settings)
    objective = TrainerObjective(settings)
    # An unreachable cluster, or one no node of which fits a trial, writes nothing.
    connect(settings.run.executor, settings.run.address, settings.run.resources or None)
    with console_err.status(f"loading {escape(settings.data.source)}…"):
        dataset = objective.dataset  # before the store is opened: bad data writes nothing
    console.print(
        f"study [bold]{escape(settings.study.name)}[/] in {escape(settings.study.storage)}: "
        f"{settings.run.trials} trials in {settings.run.rounds} round(s), "
        f"{_runner_text(settings)}, {settings.epochs} epochs each on "
        f"{len(dataset.y_train)} training examples{_validation_text(settings, dataset)}",
        highlight=False,
    )
    with open_study(settings) as study:
        done = study.count_done()
        if done:
            console.print(f"continuing: {done} finished trial(s) already in the study")
        callbacks = () if quiet else (_TrialPrinter(settings, done),)
        run_study(settings, study, objective, callbacks=callbacks)
        _print_best(study)
        if report:
            _write_report(study, report_dir)


def _runner_text(config: TuneConfig) -> str:
    if config.run.executor == "ray":
        return f"Ray tasks at {config.run.address or 'a Ray of this machine'}"
    return f"{config.run.workers} worker(s)"


def _check_backend(config: TuneConfig) -> None:
    if config.model.backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            expected = "'numpy' (PyTorch is not installed: pip install 'tunery[torch]')"
            raise ConfigError("model.backend", "torch", expected) from None


def _check_pool(config: TuneConfig) -> None:
    # Study.caviar would say so too, but only after the store was created.
    pool = config.run.executor == "local" and config.run.workers > 1
    if pool and importlib.util.find_spec("tunery.run.caviar") is None:
        expected = "1 (this tunery has no process pool, tunery.run.caviar)"
        raise ConfigError("run.workers", config.run.workers, expected)


class _TrialPrinter:
    """A callback ``(study, trial)``: one line per finished trial."""

    def __init__(self, config: TuneConfig, done: int) -> None:
        self.target = config.run.trials
        self.metric = config.study.metric
        self.done = done  # counted here: re-reading every trial per line would cost O(n²)

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        self.done += 1
        done = self.done
        console.print(
            f"{done:>4}/{self.target}  trial {trial.number:<4} round {trial.round}  "
            f"{_state_text(trial.state)}  {result_text(trial, self.metric)}  "
            f"[dim]{escape(_params_text(trial.params))}[/]",
            highlight=False,
        )


def _validation_text(settings: TuneConfig, dataset: Dataset) -> str:
    """``; scored on 186 validation photos and 3 changed copies of them`` when they are changed."""
    if not settings.data.validation_augment.active:
        return ""
    copies = settings.data.validation_copies
    clean = len(dataset.y_val) // (copies + 1)
    return (
        f"; scored on {clean} validation examples and {copies} changed "
        f"cop{'y' if copies == 1 else 'ies'} of them ([data.validation_augment])"
    )


def _print_best(study: Study) -> None:
    complete = study.get_trials([TrialState.COMPLETE])
    if not complete:
        console_err.print("no trial completed: nothing to call best (see `tunery show`)")
        return
    best = study.best_trial
    test = best.user_attrs.get(TEST_ACCURACY)
    console.print(
        f"\n[bold]best trial {best.number}[/] (round {best.round}): "
        f"{study.metric} {_number(best.value)}, test accuracy {_number(test)}",
        highlight=False,
    )
    for key, value in best.params.items():
        console.print(f"  {key} = {_format_value(value)}", highlight=False)


def _write_report(study: Study, report_dir: Path) -> None:
    try:
        from tunery.report import (  # type: ignore[attr-defined, unused-ignore]
            print_summary,
            write_report,
        )
    except ImportError:
        console_err.print("no report written: this tunery has no tunery.report module")
        return
    subject: Any = study
    try:  # compute the report's data once for both (its importance fit takes a moment)
        from tunery.report import report_data  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        pass
    else:
        subject = report_data(study)
    print_summary(subject, console)
    path = write_report(subject, report_dir / study.name)
    console.print(f"report: [bold]{escape(str(path))}[/]", highlight=False)


# -------------------------------------------------------------------------------------------- ls


@app.command(name="ls")
@STORAGE_OPTION
def ls(storage: str) -> None:
    """List the studies in a store: trials by state and the best value."""
    with get_storage(storage, create=False, field="--storage") as store:
        summaries = store.list_studies()
    if not summaries:
        console.print(f"no studies in {escape(store.url)}")
        return
    table = Table(title=f"studies in {escape(store.url)}", title_justify="left")
    for column in ("study", "direction", "metric", "trials", "by state", "best"):
        table.add_column(column, justify="right" if column in ("trials", "best") else "left")
    for summary in summaries:
        info = summary.study
        table.add_row(
            escape(info.name),
            info.direction,
            info.metric,
            str(summary.n_trials),
            _counts_text(summary.counts),
            _number(summary.best_value),
        )
    console.print(table)


# ------------------------------------------------------------------------------------------ show


@app.command()
@click.argument("study_name", metavar="STUDY")
@click.option("--trial", "trial_number", type=int, help="Show this trial instead of the study.")
@TOP_OPTION
@STORAGE_OPTION
def show(study_name: str, trial_number: int | None, top: int, storage: str) -> None:
    """Show a study (its rounds with their boxes, the best trials) or one of its trials.

    With --trial N: the trial's params, state, value, user attributes, its curve epoch by epoch,
    what it printed in a pool worker and, for a failed trial, the error. A panda study also shows
    its lineage tree; a PBT study, its population's lineage tree.
    """
    with load_study(study_name, get_storage(storage, create=False, field="--storage")) as study:
        if trial_number is None:
            _show_study(study, top)
        else:
            _show_trial(study, trial_number)


def _show_study(study: Study, top: int) -> None:
    trials = study.trials
    console.print(
        f"[bold]{escape(study.name)}[/]  {study.direction} {study.metric}, seed {study.seed}, "
        f"{len(trials)} trials: {_counts_text(Counter(t.state for t in trials))}"
        + _stale_text(trials),
        highlight=False,
    )
    for round_ in study.rounds:
        console.print(_round_table(round_))
    console.print(_best_table(study, trials, top))
    _show_lineage(study, trials)


def _show_trial(study: Study, number: int) -> None:
    trials = {t.number: t for t in study.trials}
    trial = trials.get(number)
    if trial is None:
        expected = f"a trial number of {study.name!r} (0..{len(trials) - 1})"
        raise ConfigError("--trial", number, expected if trials else "a trial (there are none)")
    console.print(
        f"[bold]trial {trial.number}[/] of {escape(study.name)}  round {trial.round}  "
        f"{_state_text(trial.state)}  {study.metric} {_number(trial.value)}"
        + (f"  {trial.duration:.1f} s" if trial.duration is not None else "")
        + ("  (interrupted)" if trial.interrupted else "")
        + _heartbeat_text(trial)
        + (
            f"  branched from trial {trial.parent[0]} at epoch {trial.parent[1]}"
            if trial.parent
            else ""
        ),
        highlight=False,
    )
    for key, value in trial.params.items():
        console.print(f"  {key} = {_format_value(value)}", highlight=False)
    for key, value in trial.user_attrs.items():
        console.print(f"  [dim]{escape(key)}[/] {escape(_format_value(value))}", highlight=False)
    if trial.curve:
        console.print(_curve_table(trial.curve))
    if trial.output:
        console.print(
            f"[bold]output[/] (its last {OUTPUT_LIMIT // 1024} KiB):\n{escape(trial.output)}",
            highlight=False,
        )
    if trial.error:
        console_err.print(f"[bold]error:[/]\n{escape(trial.error)}", highlight=False)


def _round_table(round_: Round) -> Table:
    origin = "zoomed" if round_.box is not None else "given"
    table = Table(
        title=f"round {round_.index} ({origin}, {round_.sampler_text})", title_justify="left"
    )
    for column in ("param", "kind", "range", "box (round-1 unit coords)"):
        table.add_column(column)
    for name, distribution in round_.space.items():
        table.add_row(
            escape(name),
            _kind_text(distribution),
            escape(_range_text(distribution)),
            _box_text(round_, name),
        )
    return table


def _best_table(study: Study, trials: Sequence[FrozenTrial], top: int) -> Table:
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    complete.sort(key=lambda t: float(t.value or 0.0), reverse=study.direction == "maximize")
    table = Table(title=f"best {min(top, len(complete))} trials", title_justify="left")
    names = list(dict.fromkeys(key for t in complete[:top] for key in t.params))
    for column in ("trial", "round", study.metric, "test", *names):
        table.add_column(escape(column), justify="right")
    for trial in complete[:top]:
        table.add_row(
            str(trial.number),
            str(trial.round),
            _number(trial.value),
            _number(trial.user_attrs.get(TEST_ACCURACY)),
            *(escape(_format_value(trial.params.get(name, "—"))) for name in names),
        )
    return table


def _curve_table(curve: Mapping[int, Mapping[str, float]]) -> Table:
    metrics = list(dict.fromkeys(name for row in curve.values() for name in row))
    table = Table(title="curve", title_justify="left")
    table.add_column("epoch", justify="right")
    for name in metrics:
        table.add_column(escape(name), justify="right")
    for epoch in sorted(curve):
        table.add_row(str(epoch), *(_number(curve[epoch].get(name)) for name in metrics))
    return table


def _show_lineage(study: Study, trials: Sequence[FrozenTrial]) -> None:
    """The panda lineage tree, for a study with branched trials."""
    if not any(t.parent is not None or t.sample_id is None for t in trials):
        return
    from tunery.cli._pictures import lineage_tree, population_tree  # only these studies need it
    from tunery.report import is_segment

    if any(is_segment(t) for t in trials):
        console.print(population_tree(study))
        return
    console.print(lineage_tree(study))


# ---------------------------------------------------------------------------------------- export


def _optional_path(flag: str, name: str, rows: str, default: str) -> Callable[[Any], Any]:
    """``--flag [PATH]``: given alone, the flag writes to its default path."""
    return click.option(
        flag,
        name,
        is_flag=False,
        flag_value="",
        metavar="[PATH]",
        type=click.Path(dir_okay=False),
        help=f"Write {rows} to PATH [default PATH: {default}].",
    )


@app.command()
@click.argument("study_name", metavar="STUDY")
@_optional_path("--csv", "csv_path", "one row per trial", "STUDY.csv")
@_optional_path("--curves", "curves_path", "one row per trial and epoch", "STUDY-curves.csv")
@STORAGE_OPTION
def export(study_name: str, csv_path: str | None, curves_path: str | None, storage: str) -> None:
    """Export a study's trials (--csv) and their per-epoch curves (--curves) as CSV files.

    With neither flag, --csv is implied. Columns: number, round, sample_id, state, value,
    interrupted, started, finished, duration, parent, params_<name>..., user_attrs_<name>...;
    the curves file has number, epoch and one column per metric.
    """
    if csv_path is None and curves_path is None:
        csv_path = ""
    trials_file = Path(csv_path or f"{study_name}.csv")
    curves_file = None if curves_path is None else Path(curves_path or f"{study_name}-curves.csv")
    from tunery.report import export_csv  # the report's imports load only when it is used

    with load_study(study_name, get_storage(storage, create=False, field="--storage")) as study:
        export_csv(study.trials, trials_file, curves_file)
    for path in (trials_file, curves_file):
        if path is not None:
            console.print(f"wrote {escape(str(path))}", highlight=False)


# --------------------------------------------------------------------------------------- helpers


def _counts_text(counts: Mapping[TrialState, int]) -> str:
    """``"8 complete, 2 pruned"``: the non-zero counts, in a fixed order of states."""
    parts = [f"{counts[state]} {state.name.lower()}" for state in _STATES if counts.get(state)]
    return ", ".join(parts) or "none"


_STATE_STYLE = {
    TrialState.COMPLETE: "green",
    TrialState.PRUNED: "yellow",
    TrialState.DIVERGED: "magenta",
    TrialState.FAILED: "red",
    TrialState.RUNNING: "cyan",
}


def _stale_text(trials: Sequence[FrozenTrial]) -> str:
    """``" (1 running trial stale)"``: RUNNING trials without a heartbeat for the default timeout.

    Their process is gone or frozen; running the study again takes them back.
    """
    now = time.time()
    stale = sum(1 for t in trials if t.is_stale(now, DEFAULT_HEARTBEAT_TIMEOUT))
    return f"  ([yellow]{stale} running trial(s) stale[/]: no heartbeat)" if stale else ""


def _heartbeat_text(trial: FrozenTrial) -> str:
    if trial.state is not TrialState.RUNNING or trial.heartbeat is None:
        return ""
    ago = max(0.0, time.time() - trial.heartbeat)
    stale = trial.is_stale(time.time(), DEFAULT_HEARTBEAT_TIMEOUT)
    return f"  last heartbeat {ago:.0f} s ago" + ("  [yellow](stale)[/]" if stale else "")


def _state_text(state: TrialState) -> str:
    return f"[{_STATE_STYLE[state]}]{state.name:<8}[/]"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_format_value(value)}" for key, value in params.items())


def _kind_text(distribution: Distribution) -> str:
    if isinstance(distribution, Choice):
        return "choice"
    scale = getattr(distribution, "scale", "linear")
    kind = "int" if isinstance(distribution, Int) else "float"
    return kind if scale == "linear" else f"{kind} {scale}"


def _range_text(distribution: Distribution) -> str:
    if isinstance(distribution, Float | Int):
        return f"{_format_value(distribution.low)} … {_format_value(distribution.high)}"
    assert isinstance(distribution, Choice)
    return ", ".join(_format_value(option) for option in distribution.options)


def _box_text(round_: Round, name: str) -> str:
    if round_.box is None:
        return "—"
    if name in round_.box.bounds:
        low, high = round_.box.bounds[name]
        return f"[{low:.3f}, {high:.3f}]"
    kept = round_.box.choices.get(name, ())
    return escape(", ".join(_format_value(option) for option in kept))
