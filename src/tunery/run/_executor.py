"""The executor seam: what runs a study's trials, chosen by name.

An ``Executor`` has one method, ``run``, with the contract every executor keeps (the module
docstring of ``tunery.run``): ask and tell in the calling process, which alone writes the store;
objectives wherever the executor puts them, classified by ``call_objective``; stop once
``study.count_done()`` reaches ``target``; call ``on_finished(frozen_trial)`` once each trial is
stored. That is the whole interface because it is all the study, its samplers, its zoom rounds and
its report may rely on: none of them learns which executor ran a trial. Finer steps (submit a
trial, stream its reports, answer prune questions, learn that it died) differ too much between a
pipe to a forked process and a Ray task to be worth a shared abstraction; each executor keeps them
private.

- ``LocalExecutor(workers)``: this process (``workers == 1``) or the forkserver pool (``caviar``);
- ``RayExecutor(address, resources)`` (``_ray.py``, Ray imported only when chosen): Ray tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.run._protocol import Run
from tunery.run._resources import Resources
from tunery.run._sequential import run_sequential

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "Resources", "make_executor"]

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs trials of ``run.study`` until it holds ``run.target`` finished ones (module docs)."""

    def run(self, run: Run) -> None: ...


@dataclass(frozen=True, slots=True)
class LocalExecutor:
    """This machine: in this process with one worker, the forkserver pool with more."""

    workers: int = 1

    def run(self, run: Run) -> None:
        if self.workers == 1:
            run_sequential(run.study, run.objective, target=run.target, on_finished=run.on_finished)
            return
        try:
            from tunery.run.caviar import run_pool  # the process pool
        except ModuleNotFoundError as exc:
            if exc.name != "tunery.run.caviar":
                raise
            expected = "1 (this build has no process pool)"
            raise ConfigError("workers", self.workers, expected) from None
        run_pool(
            run.study,
            run.objective,
            target=run.target,
            workers=self.workers,
            on_finished=run.on_finished,
            live=run.live,
        )


def make_executor(
    name: str = "local",
    *,
    workers: int = 1,
    address: str | None = None,
    resources: Mapping[str, Any] | Resources | None = None,
) -> Executor:
    """The executor called ``name`` (one of ``EXECUTORS``); ``address``/``resources`` are Ray's."""
    if name == "local":
        check_int("workers", workers, 1)
        if address is not None:
            raise ConfigError("address", address, "no address with executor 'local' (Ray's key)")
        return LocalExecutor(workers)
    if name == "ray":
        from tunery.run._ray import RayExecutor  # imports nothing of Ray until it runs

        if not isinstance(resources, Resources):
            resources = Resources.from_mapping(resources)
        return RayExecutor(address=address, resources=resources)
    raise ConfigError("executor", name, "one of " + ", ".join(map(repr, EXECUTORS)))
