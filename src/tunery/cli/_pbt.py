"""``tunery pbt``: population-based training of a config's model (``tunery.workflows.pbt``).

It reads and validates the whole config and the flags, and loads the data, before it opens the
store, so a mistake is one line on stderr, exit code 2, and nothing written. Re-running the same
command resumes the population from its last boundary. ``tunery nudge STUDY --member M lr=...``
nudges one member by hand; ``tunery show STUDY`` draws the lineage tree.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from tunery.cli._app import app, console
from tunery.cli._pictures import assignments_text, population_tree, result_text
from tunery.cli._tune import study_run_options
from tunery.config import load_config
from tunery.records import FrozenTrial
from tunery.report import segment_info
from tunery.run import connect
from tunery.workflows.objective import load_config_dataset, open_study
from tunery.workflows.pbt import Population, check_pbt
from tunery.workflows.pbt import pbt as run_pbt

__all__ = ["pbt"]


@app.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--population", type=int, help="Members training side by side (pbt.population).")
@click.option(
    "--interval", type=int, help="Epochs between exploit/explore steps (pbt.perturbation_interval)."
)
@click.option("--epochs", type=int, help="Epochs each member trains (run.epochs).")
@click.option("--workers", type=int, help="Worker processes (run.workers).")
@study_run_options
@click.option("--quiet", is_flag=True, help="No line per finished segment.")
def pbt(
    config: Path,
    population: int | None,
    interval: int | None,
    epochs: int | None,
    workers: int | None,
    executor: str | None,
    address: str | None,
    seed: int | None,
    storage: str | None,
    name: str | None,
    report_dir: Path,
    report: bool,
    quiet: bool,
) -> None:
    """Population-based training of CONFIG's model: many pandas that copy the best one.

    POPULATION members train in parallel; every INTERVAL epochs the bottom quarter
    (pbt.quantile_fraction) loads a top member's checkpoint and perturbs its hyperparameters on
    their own scales ([pbt] perturbation_factors, resample_probability). Running the same command
    again resumes from the last boundary. Nudge a member by hand from another terminal:

    \b
      tunery nudge STUDY --member 3 lr=3e-4

    Exit code 2 (and nothing written) for a bad config or flag.
    """
    settings = load_config(config).with_overrides(
        epochs=epochs,
        workers=workers,
        executor=executor,
        address=address,
        seed=seed,
        storage=storage,
        name=name,
    )
    if population is not None or interval is not None:
        import dataclasses

        from tunery.config import PBTSection

        changes = {"population": population, "perturbation_interval": interval}
        given = {key: value for key, value in changes.items() if value is not None}
        values = dataclasses.asdict(settings.pbt) | given
        settings = dataclasses.replace(settings, pbt=PBTSection(**values))
    check_pbt(settings)
    connect(settings.run.executor, settings.run.address)
    load_config_dataset(settings)  # before the store: bad data writes nothing
    options = settings.pbt
    console.print(
        f"pbt: study [bold]{escape(settings.study.name)}[/] in {escape(settings.study.storage)}: "
        f"{options.population} members, {settings.epochs} epochs each, exploit/explore every "
        f"{options.perturbation_interval}",
        highlight=False,
    )
    with open_study(settings) as study:
        printer = None if quiet else _SegmentPrinter(settings.study.metric)
        population_run = run_pbt(study, settings, on_segment=printer)
        _print_members(population_run)
        console.print(population_tree(study))
        if report:
            from tunery.cli._tune import _write_report

            _write_report(study, report_dir)


class _SegmentPrinter:
    """``on_segment``: one line per finished segment."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def __call__(self, trial: FrozenTrial) -> None:
        info = segment_info(trial)
        value = "—" if trial.value is None else f"{trial.value:.4f}"
        console.print(
            f"member {info.get('member')}  epochs {info.get('start')}–{info.get('end')}  "
            f"trial {trial.number}  {trial.state.name}  {self.metric} {value}  "
            f"[dim]{escape(assignments_text(trial.params))}[/]",
            highlight=False,
        )


def _print_members(population: Population) -> None:
    best = population.best
    for trial in population.members:
        mark = "*" if best is not None and trial.number == best.number else " "
        console.print(
            f"{mark} member {segment_info(trial)['member']}  trial {trial.number}  "
            f"{result_text(trial, population.study.metric)}  "
            f"[dim]{escape(assignments_text(trial.params))}[/]",
            highlight=False,
        )
