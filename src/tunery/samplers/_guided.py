"""Model-guided draws inside a zoom box: a Gaussian process with expected improvement, or TPE.

The model sees every parameter as its coordinate on the base space's unit cube (so a log or
``one_minus_log`` scale is the axis it models), rescaled so that the round's box is ``[0, 1]`` on
each Float and Int axis; a Choice keeps its bin centre on the base cube. Candidates are drawn only
inside the box (a Choice only among the options the box kept) and the best-scoring one is the
draw. Trials outside the box still inform the model.

What the model is fitted on, and why: a draw must be a pure function of ``(seed, round,
sample_id)`` and the trials it was fitted on, yet with several workers what has finished when a
draw is asked depends on timing. So the draws of a round come in batches of ``batch`` sample ids,
and sample ``s`` is fitted on the COMPLETE trials of the earlier rounds and the COMPLETE trials of
its own round whose sample id is below its batch's first, ``s - s % batch``. ``Study.caviar``
runs a guided round batch by batch (each batch's trials finish before the next is asked), so
that set is complete whenever a draw is asked, whatever the number of workers, and a resumed
study refits the same model and draws the same points. Within a batch the GP conditions on the
batch's earlier proposals at its own predicted mean (the "kriging believer"), so one batch does
not ask the same point ``batch`` times; TPE's draws differ by their seeded candidates.

- ``gp``: scikit-learn's ``GaussianProcessRegressor`` (Matérn 5/2 with one length scale per axis,
  plus white noise; ``normalize_y``), expected improvement over the best value seen (scipy's
  normal distribution), maximised over ``CANDIDATES`` seeded points: half uniform in the box,
  half around the best trials inside it. Fitted on at most ``MAX_FIT`` trials (the best ones),
  since exact GP fitting grows as the cube of the history.
- ``tpe``: the tree-structured Parzen estimator (Bergstra et al., 2011): the best ``gamma`` of the
  trials (Optuna's default, ``min(ceil(0.1 n), 25)``) and the rest each get a Gaussian kernel
  density (scikit-learn's ``KernelDensity``) mixed with a uniform prior over the box of weight
  ``1 / (n + 1)``, with the bandwidth of Optuna's multivariate TPE, ``0.2 n^(-1/(d + 4))`` box
  widths; ``TPE_CANDIDATES`` seeded draws from the good mixture, inside the box, and the one with
  the largest ratio good / rest is the draw.

Too little history to trust a model, and a draw is uniform in the box, as an unguided zoomed round's
(:func:`min_history`): TPE needs ``MIN_HISTORY`` COMPLETE trials to fit on; the GP two per kernel
hyperparameter, ``2 (d + 2)`` for ``d`` modelled axes (a length scale each, the amplitude and the
noise). With fewer, the marginal likelihood cannot pin the length scales: fitted on 4 to 8 points
in a box of 3 to 6 axes, the optimizer leaves many at their bounds, and EI, its variance large
wherever there are no points, sends much of the batch to the box's faces (in a one-off check on a
bowl, 14 to 22 % of a draw's axes on a face, against 4 % for uniform draws and 0 to 4 % with 16 to
32 points). ``bench/search_efficiency.py`` measured such rounds worse than uniform ones at 8 and
16 trials. Below the bound a draw is what an unguided round draws, and the round switches to the
model once enough trials are in.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError
from tunery._validation import check_int
from tunery.samplers._unit import RandomSampler, Sampler
from tunery.space import Box, Choice, Distribution

if TYPE_CHECKING:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.neighbors import KernelDensity

__all__ = ["MODELS", "Guide", "GuidedSampler", "min_history"]

MODELS = ("gp", "tpe")
MIN_HISTORY = 3
MAX_FIT = 300
CANDIDATES = 1024
TPE_CANDIDATES = 24
_LOCAL_SD = 0.05  # spread of the GP's local candidates, in box widths
_BANDWIDTH = 0.2  # Optuna's multivariate TPE: sigma = 0.2 n^(-1/(d+4)) (high - low)
_CONSTANT = 1e-12  # a box narrower than this on an axis leaves nothing to model there

Array = NDArray[np.float64]
History = Sequence[tuple[Mapping[str, Any], float]]


@dataclass(frozen=True)
class GuidedSampler(Sampler):
    """Draws inside a round's box from a model of the trials so far (``model``: gp or tpe).

    ``batch``: how many draws share one fitted model (see the module docstring). Without a
    history, as :meth:`sample_unit` is called, it draws like the random sampler.
    """

    name: ClassVar[str] = "guided"
    model: str = "gp"
    batch: int = 8

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError("sampler.model", self.model, "one of " + ", ".join(map(repr, MODELS)))
        if check_int("sampler.batch", self.batch) < 1:
            raise ConfigError("sampler.batch", self.batch, "an integer >= 1")

    def sample_unit(
        self, space: Mapping[str, Distribution], seed: int, number: int
    ) -> dict[str, float]:
        return RandomSampler().sample_unit(space, seed, number)

    def describe(self) -> str:
        return f"guided by {self.model}, batches of {self.batch}"

    def batch_start(self, sample_id: int) -> int:
        """The first sample id of ``sample_id``'s batch: the model sees samples below it."""
        sample_id = check_int("sample_id", sample_id, 0)
        return sample_id - sample_id % self.batch

    def fit(
        self,
        base: Mapping[str, Distribution],
        box: Box,
        history: History,
        *,
        maximize: bool,
        seed: int,
        start: int,
    ) -> Guide:
        """The model of ``history`` (``(params, value)`` in a fixed order) for one batch.

        ``base`` is the space whose unit cube ``box`` is in; ``start`` the batch's first sample id.
        """
        cube = _BoxCube(base, box)
        pairs = [(params, float(value)) for params, value in history if math.isfinite(value)]
        if cube.width == 0 or len(pairs) < min_history(self.model, cube.width):
            return Guide(cube, None, seed, start)
        Z = np.array([cube.to_z(params) for params, _ in pairs], dtype=np.float64)
        y = np.array([value if maximize else -value for _, value in pairs], dtype=np.float64)
        model: _Model
        if self.model == "gp":
            model = _GaussianProcess(cube, Z, y, _int_seed(seed, start))
        else:
            model = _Parzen(cube, Z, y)
        return Guide(cube, model, seed, start)


def min_history(model: str, width: int) -> int:
    """How many finite trials ``model`` needs to be fitted on ``width`` modelled axes; below it,
    draws are uniform in the box (see the module docstring)."""
    if model == "gp":
        return max(MIN_HISTORY, 2 * (width + 2))
    return MIN_HISTORY


class Guide:
    """One batch's fitted model: proposes the batch's points, each a function of its sample id."""

    def __init__(self, cube: _BoxCube, model: _Model | None, seed: int, start: int) -> None:
        self._cube = cube
        self._model = model
        self._seed = seed
        self._start = start
        self._proposed: list[Array] = []

    @property
    def guided(self) -> bool:
        """Whether a model was fitted (else every draw is uniform in the box)."""
        return self._model is not None

    def propose(self, sample_id: int) -> dict[str, float]:
        """The draw of ``sample_id`` (of this batch), as ``u`` on the base space's unit cube."""
        offset = sample_id - self._start
        if offset < 0:
            raise ConfigError("sample_id", sample_id, f"a sample id >= {self._start}")
        if self._model is None:
            return self._cube.to_unit(self._cube.uniform(self._rng(sample_id), 1)[0])
        if not self._model.sequential:
            return self._cube.to_unit(self._next(sample_id))
        # A GP's proposal depends on the batch's earlier ones: make them first, in order.
        while len(self._proposed) <= offset:
            z = self._next(self._start + len(self._proposed))
            self._model.believe(z)
            self._proposed.append(z)
        return self._cube.to_unit(self._proposed[offset])

    def _next(self, sample_id: int) -> Array:
        assert self._model is not None
        candidates = self._model.candidates(self._rng(sample_id))
        scores = self._model.score(candidates)
        best: Array = candidates[int(np.argmax(scores))]
        return best

    def _rng(self, sample_id: int) -> np.random.Generator:
        return np.random.default_rng([self._seed, sample_id])


def _int_seed(seed: int, start: int) -> int:
    return int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


class _BoxCube:
    """The axes a model sees: each Float/Int rescaled so the box is ``[0, 1]``, each Choice at its
    bin centre on the base cube; axes the box pins to one value are left out."""

    def __init__(self, base: Mapping[str, Distribution], box: Box) -> None:
        self.base = base
        self.names = sorted(base)
        self.modelled: list[str] = []
        self.fixed: dict[str, float] = {}
        self.centres: dict[str, Array] = {}
        for name in self.names:
            dist = base[name]
            if isinstance(dist, Choice):
                kept = box.choices.get(name, dist.options)
                centres = np.array([dist.to_unit(option) for option in kept])
                if len(centres) > 1:
                    self.modelled.append(name)
                    self.centres[name] = centres
                else:
                    self.fixed[name] = float(centres[0])
                continue
            lo, hi = box.bounds.get(name, (0.0, 1.0))
            if hi - lo > _CONSTANT:
                self.modelled.append(name)
            else:
                self.fixed[name] = 0.5 * (lo + hi)
        self.bounds = {name: box.bounds.get(name, (0.0, 1.0)) for name in self.names}
        self.width = len(self.modelled)
        self.numeric = np.array([name not in self.centres for name in self.modelled], dtype=bool)

    def to_z(self, params: Mapping[str, Any]) -> list[float]:
        z = []
        for name in self.modelled:
            u = self.base[name].to_unit(params[name])
            if name in self.centres:
                z.append(u)
            else:
                lo, hi = self.bounds[name]
                z.append((u - lo) / (hi - lo))
        return z

    def uniform(self, rng: np.random.Generator, n: int) -> Array:
        """``n`` points uniform in the box: ``(n, width)``."""
        Z = rng.random((n, self.width))
        for j, name in enumerate(self.modelled):
            if name in self.centres:
                centres = self.centres[name]
                Z[:, j] = centres[
                    np.minimum((Z[:, j] * len(centres)).astype(int), len(centres) - 1)
                ]
        return Z

    def snap(self, Z: Array) -> Array:
        """Into the box: Float/Int axes clipped to ``[0, 1]``, Choice axes to the nearest option."""
        Z = Z.copy()
        for j, name in enumerate(self.modelled):
            if name in self.centres:
                centres = self.centres[name]
                Z[:, j] = centres[np.argmin(np.abs(Z[:, j, None] - centres[None, :]), axis=1)]
            else:
                Z[:, j] = np.clip(Z[:, j], 0.0, 1.0)
        return Z

    def inside(self, Z: Array) -> NDArray[np.bool_]:
        """Rows whose Float/Int axes lie in the box (Choice axes are snapped, never outside)."""
        numeric = Z[:, self.numeric]
        rows: NDArray[np.bool_] = np.all((numeric >= 0.0) & (numeric <= 1.0), axis=1)
        return rows

    def to_unit(self, z: Array) -> dict[str, float]:
        u = dict(self.fixed)
        for j, name in enumerate(self.modelled):
            if name in self.centres:
                u[name] = float(z[j])
            else:
                lo, hi = self.bounds[name]
                u[name] = min(hi, max(lo, lo + float(z[j]) * (hi - lo)))
        return {name: u[name] for name in self.names}


class _Model(Protocol):
    sequential: bool  # whether a batch's proposals depend on the earlier ones

    def candidates(self, rng: np.random.Generator) -> Array: ...

    def score(self, Z: Array) -> Array: ...

    def believe(self, z: Array) -> None: ...


class _GaussianProcess:
    """Expected improvement of a GP fitted on the best ``MAX_FIT`` trials."""

    sequential = True

    def __init__(self, cube: _BoxCube, Z: Array, y: Array, seed: int) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        if len(y) > MAX_FIT:
            keep = np.argsort(-y, kind="stable")[:MAX_FIT]
            Z, y = Z[np.sort(keep)], y[np.sort(keep)]
        self.cube = cube
        self.Z, self.y = Z, y
        self.best = float(np.max(y))
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(cube.width, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        self.gp = _fit_quietly(
            GaussianProcessRegressor(
                kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed
            ),
            Z,
            y,
        )
        # The believer refits keep these hyperparameters: only the data grows.
        self.fitted_kernel = self.gp.kernel_
        inside = cube.inside(Z)
        order = np.argsort(-y, kind="stable")
        self.anchors = Z[[i for i in order if inside[i]][:5]]

    def candidates(self, rng: np.random.Generator) -> Array:
        uniform = self.cube.uniform(rng, CANDIDATES // 2)
        if len(self.anchors) == 0:
            return uniform
        picks = self.anchors[rng.integers(len(self.anchors), size=CANDIDATES - len(uniform))]
        noise = rng.normal(0.0, _LOCAL_SD, size=picks.shape) * self.cube.numeric
        return np.vstack([uniform, self.cube.snap(picks + noise)])

    def score(self, Z: Array) -> Array:
        from scipy.stats import norm

        mean, sd = self.gp.predict(Z, return_std=True)
        sd = np.maximum(sd, 1e-12)
        gap = mean - self.best
        z = gap / sd
        return np.asarray(gap * norm.cdf(z) + sd * norm.pdf(z), dtype=np.float64)

    def believe(self, z: Array) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor

        mean = float(self.gp.predict(z[None, :])[0])
        self.Z, self.y = np.vstack([self.Z, z]), np.append(self.y, mean)
        self.gp = _fit_quietly(
            GaussianProcessRegressor(self.fitted_kernel, normalize_y=True, optimizer=None),
            self.Z,
            self.y,
        )


def _fit_quietly(gp: GaussianProcessRegressor, Z: Array, y: Array) -> GaussianProcessRegressor:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # A hyperparameter at its bound (e.g. the noise at its floor on a smooth function) is an
        # answer, not a failure; the fitted model is used all the same.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gp.fit(Z, y)


class _Parzen:
    """TPE: a kernel density of the best trials against one of the rest."""

    sequential = False

    def __init__(self, cube: _BoxCube, Z: Array, y: Array) -> None:
        self.cube = cube
        n_good = min(math.ceil(0.1 * len(y)), 25)
        order = np.argsort(-y, kind="stable")
        self.good = _density(Z[order[:n_good]])
        self.rest = _density(Z[order[n_good:]])
        self.prior_good = 1.0 / (n_good + 1)

    def candidates(self, rng: np.random.Generator) -> Array:
        state = np.random.RandomState(int(rng.integers(2**32)))
        from_prior = rng.random(TPE_CANDIDATES) < self.prior_good
        drawn = self.good.sample(4 * TPE_CANDIDATES, random_state=state)
        kept = drawn[self.cube.inside(drawn)][: int(np.sum(~from_prior))]
        uniform = self.cube.uniform(rng, TPE_CANDIDATES - len(kept))
        return self.cube.snap(np.vstack([kept, uniform]))

    def score(self, Z: Array) -> Array:
        return _log_mixture(self.good, Z) - _log_mixture(self.rest, Z)

    def believe(self, z: Array) -> None:
        """TPE's draws in a batch differ by their candidates; nothing to condition on."""


def _density(Z: Array) -> KernelDensity:
    """A Gaussian KDE of ``Z`` with Optuna's multivariate bandwidth, in box widths."""
    from sklearn.neighbors import KernelDensity

    n, d = Z.shape
    return KernelDensity(bandwidth=_BANDWIDTH * n ** (-1.0 / (d + 4))).fit(Z)


def _log_mixture(density: KernelDensity, Z: Array) -> Array:
    """``log((n p_kde + 1) / (n + 1))``: the KDE mixed with the uniform density (1) on the box."""
    n = int(density.tree_.data.shape[0])  # the points it was fitted on
    return np.asarray(np.logaddexp(np.log(n) + density.score_samples(Z), 0.0) - np.log(n + 1))
