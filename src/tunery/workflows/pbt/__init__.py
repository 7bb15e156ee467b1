"""Population-based training (PBT): many pandas that copy the best one and perturb it.

::

    study = tunery.Study("digits-pbt", "sqlite:///tunery.db")
    population = tunery.pbt(study, load_config("tune.toml"), population=8, perturbation_interval=4)
    population.best.user_attrs["test_accuracy"]
    member_schedules(study.trials)     # each final member's hyperparameters, epoch by epoch

``population`` members of the config's model train side by side on the caviar executor (the
local process pool, or Ray with ``[run] executor = "ray"``: the segments go through the same
``tunery.run.execute`` seam as caviar's trials). Every ``perturbation_interval`` epochs the
population stops at a boundary; the bottom ``quantile_fraction`` of the members (ranked by the
study's metric) **exploit**: each loads the checkpoint of a member drawn from the top quantile and
takes its params, then **explores**: each nudgeable parameter that the ``[space]`` searches (lr,
β, β2, ε where the optimizer uses them, l2, batch_size) is redrawn from the space with
``resample_probability``, else perturbed by one of ``perturbation_factors`` on its own scale (lr
×0.8 or ×1.25 in log space, β through 1 − β in log space, ints stepped, choices moved to a
neighbour: ``_explore``), clipped to the space. The rest goes on from its own checkpoint. Searched
settings a nudge cannot change mid-training (units, layers, the optimizer, keep_prob, ...) are
drawn once per member and travel with an exploit, since the weights they shape do.

How it is stored. Each member runs as a chain of *segment* trials, one per step (``PBT_ATTR``
holds member, step, start and end epochs). A segment's ``parent`` is ``(trial, epoch)``: the
member's own previous segment, or, after an exploit, the top member's segment whose checkpoint it
loaded, so every exploit is a lineage edge ``(member, epoch) → (source member, epoch)``. The
exploit is also an event in the store (kind ``"exploit"``, payload: the edge and the new params),
logged on the new segment with the perturbation as a nudge made ``by="pbt"``: the same kind of
nudge a panda branch logs, validated by the same check (``check_model_nudge``) and applied to the
restored trainer the same way (``sync_hyperparameters``). ``tunery show`` and the report draw the
lineage tree and each final member's schedule (``tunery.report.population_lineage``,
``member_schedules``).

A person may nudge a member too: ``tunery nudge STUDY --member 3 lr=1e-3`` (or
``PopulationControl(study).nudge(3, lr=1e-3)``) queues it; it applies at that member's next
boundary, on top of PBT's choice there, and is logged ``by="hand"``.

Determinism and crashes. The first step's params are the study sampler's draws ``0 ..
population - 1``; every later choice (which top member, resample or perturb, which factor) comes
from a generator seeded by ``(study seed, member, step)``, and training restores checkpoints bit
for bit, so a re-run computes the same population. Running ``pbt`` again on a study resumes it
after a crash (SIGKILL included) from its last boundary: segments that finished are kept, the
interrupted ones re-run with the plan and log they had, the missing ones are planned from the
stored results. ``population`` and ``perturbation_interval`` must stay as the study started.

Where it differs from Ray Tune's ``PopulationBasedTraining``: the steps are synchronous (Ray's
``synch=True``): every member reaches the boundary before any exploits, so the ranking compares
members at the same epoch and a re-run decides alike; ``perturbation_interval`` counts epochs
(Ray's counts ``time_attr`` units, training iterations by default); ``perturbation_factors``
apply on each parameter's scale (Ray multiplies every float as it is, so β could pass 1); a
``quantile_fraction`` of 0 still replaces members that diverged or failed; ``resample_probability``
draws from the ``[space]`` itself (Ray needs ``hyperparam_mutations``); a user nudge has no Ray
counterpart. Members are synchronised through the store, one segment trial per member and step.
"""

from tunery.workflows.pbt._control import PopulationControl, is_population
from tunery.workflows.pbt._explore import explore, perturb
from tunery.workflows.pbt._loop import Population, check_pbt, pbt
from tunery.workflows.pbt._plans import member_rng, quantile_size, split
from tunery.workflows.pbt._segment import SegmentObjective

__all__ = [
    "Population",
    "PopulationControl",
    "SegmentObjective",
    "check_pbt",
    "explore",
    "is_population",
    "member_rng",
    "pbt",
    "perturb",
    "quantile_size",
    "split",
]
