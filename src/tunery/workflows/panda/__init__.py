"""Panda mode: babysit one model epoch by epoch ("day by day"), as a panda raises one cub.

One trial trains in the foreground, one epoch at a time. Between epochs (at an *epoch boundary*)
it applies the control events queued in the study's store, by ``tunery nudge / rollback / pause /
resume`` from a second terminal or by the methods below::

    study = tunery.Study("digits-panda", "sqlite:///tunery.db")
    panda = babysit(study, load_config("tune.toml"), {"lr": 3e-3}, epochs=20)
    with panda:                        # leaving the block early records the branch interrupted
        for _ in range(5):
            panda.run_epoch()          # train epoch 1..5; each is reported and checkpointed
        panda.nudge(lr=1e-3)           # queued; applied at the next boundary (after epoch 5)
        panda.run_epoch()              # epoch 6 trains with lr 1e-3
        panda.rollback(3)              # a new branch from epoch 3's checkpoint (lr 3e-3 again)
        panda.run()                    # epochs 4..20 of the new branch
    panda.curve[4]["val_accuracy"]     # the curve of the current branch's whole path
    lineage(study.trials)              # which branch came from where, with the nudges

``tunery show STUDY`` draws that lineage as a tree (``tunery.cli``: this package prints nothing).

``babysit(study, source, params, epochs=..., control=fn)`` runs to the end, calling ``fn(panda)`` at
every boundary (and at every poll while paused), so a program can babysit too.

Branches. Each branch is one trial of the study. The first (``origin`` "start") is built from
``params`` (a config's searchable names, e.g. ``lr``, ``units``; or anything a trainer factory
takes) and checkpoints its initial state as epoch 0. A rollback to epoch ``e`` starts a new
branch, a trial with ``parent = (owner, e)``, where ``owner`` is the branch on the current path
whose epoch ``e`` it is; the new branch restores that checkpoint bit for bit, with the
hyperparameters that were in force when epoch ``e`` ended, and reports epochs ``e + 1, ...`` only
(its earlier epochs are its ancestors'). Every branch checkpoints the state it starts from and
every epoch after it.

Events. A nudge changes hyperparameters for the following epochs: ``lr`` (the base rate the
schedule decays), ``l2``, ``batch_size``, and ``beta``, ``beta2``, ``epsilon`` where the optimizer
uses them (with a trainer factory: the names of ``trainer.hyperparameters()``). It is applied after
the boundary's checkpoint, so rolling back to that epoch undoes it. While paused the loop trains
nothing and polls the store every ``poll`` seconds (sleeping in between); nudges and rollbacks are
still applied, and a rollback keeps the pause. Each applied event is marked applied in the store
and logged on its branch (user attribute ``panda.log``) with the epoch at which it applied; a bad
event is logged with its error and skipped. The control side validates before it writes, so that
only happens when something changed in between.

How a branch ends:

- its epochs are done: COMPLETE, valued by the study's metric at its last epoch;
- a rollback: PRUNED (a person judged it not worth going on), valued by its last metric;
- a NaN or inf loss: DIVERGED (panda stops; nudge, or roll back, and run it again);
- anything else stopping it (Ctrl-C, an exception, leaving the ``with`` block): FAILED and
  interrupted. A Ctrl-C waits for the store writes under way (an epoch's metrics and checkpoint,
  an event and its mark), so an epoch in a curve always has its checkpoint.

Running panda again on a study continues its latest branch from the last checkpoint on its path,
as a new branch (``origin`` "resume") with the hyperparameters that branch ended with, including
nudges applied after that checkpoint. Events queued while no panda ran are applied first (a queued
rollback picks where the new branch starts; nudges queued before it are skipped as superseded).
``params`` must then be left out or equal to the first branch's: change hyperparameters with a
nudge instead. A re-run starts unpaused unless a pause is queued. With its epochs already done and
nothing queued, there is nothing to do (``done`` is True at once).
"""

from tunery.workflows.panda._branches import LineageNode, branch_curve, branch_events, lineage
from tunery.workflows.panda._control import PandaControl
from tunery.workflows.panda._events import BRANCH_ATTR, KINDS, LOG_ATTR, AppliedEvent
from tunery.workflows.panda._loop import Panda, babysit
from tunery.workflows.panda._nudges import check_model_nudge, nudgeable
from tunery.workflows.panda._recipes import TrainerFactory

__all__ = [
    "BRANCH_ATTR",
    "KINDS",
    "LOG_ATTR",
    "AppliedEvent",
    "LineageNode",
    "Panda",
    "PandaControl",
    "TrainerFactory",
    "babysit",
    "branch_curve",
    "branch_events",
    "check_model_nudge",
    "lineage",
    "nudgeable",
]
