"""The engine's MLP as a scikit-learn classifier, so sklearn's searches and pipelines can drive it.

    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV
    search = RandomizedSearchCV(MLPClassifier(epochs=20), {"learning_rate": loguniform(1e-4, 1)})
    search.fit(X, y)

``MLPClassifier`` follows scikit-learn's conventions: ``__init__`` only stores its arguments,
``fit`` validates them (a bad one raises ``tunery.ConfigError``) and the data, and the fitted state
ends in ``_`` (``classes_``, ``model_``, ``history_``, ``n_features_in_``). Labels may be of any
type sklearn accepts for classification; they are encoded as ``0..C-1`` in the order of
``classes_``. A training run whose cost becomes NaN or inf raises ``tunery.Diverged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from tunery._exceptions import ConfigError, Diverged
from tunery._validation import POSITIVE, Interval, check_scalar
from tunery.nn._base import check_positive_int
from tunery.nn.model import MLP, Activation
from tunery.nn.optimizers import OPTIMIZERS, make_optimizer
from tunery.nn.train import History, fit

__all__ = ["MLPClassifier"]

_DECAY = Interval(float, 0, 1, closed="left")

# What ``beta`` means for each optimizer: momentum's and RMSprop's β, Adam's β1; GD has none.
_BETA_NAME: dict[str, str | None] = {
    "gd": None,
    "momentum": "beta",
    "rmsprop": "beta",
    "adam": "beta1",
}
_ACTIVATIONS = ("relu", "tanh", "sigmoid")
_SEED_LIMIT = 2**31 - 1


class MLPClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fully connected classifier ``[Dense → BatchNorm → activation → Dropout] × L → softmax``.

    Args:
        hidden_layer_sizes: the hidden widths; the input and output widths come from the data.
        batchnorm: batch norm after every hidden Dense layer.
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        optimizer: ``"gd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``.
        learning_rate: the optimizer's rate (> 0).
        beta: momentum's and RMSprop's β, Adam's β1, in ``[0, 1)``; ignored by ``"gd"``.
        batch_size: examples per mini-batch.
        epochs: passes over the training set.
        l2: L2 strength λ (the cost adds ``λ/(2m)·Σ‖W‖²``), ``>= 0``.
        keep_prob: dropout's keep probability, in ``(0, 1]`` (1: no dropout).
        random_state: seeds the weights, dropout and the mini-batch order (an int, a
            ``numpy.random.RandomState`` or None, as in scikit-learn).

    ``fit(X: (N, D), y: (N,))``; ``predict(X) -> (N,)`` labels from ``classes_``;
    ``predict_proba(X) -> (N, C)``; ``score`` is the accuracy.
    """

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (25, 12),
        batchnorm: bool = True,
        activation: Activation = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        beta: float = 0.9,
        batch_size: int = 32,
        epochs: int = 50,
        l2: float = 0.0,
        keep_prob: float = 1.0,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batchnorm = batchnorm
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.beta = beta
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.keep_prob = keep_prob
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train a fresh network on ``X: (N, D)`` and labels ``y: (N,)``; returns ``self``."""
        hidden = self._checked_hidden()
        optimizer = self._checked_optimizer()
        features, labels = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(labels)
        batchnorm = _checked_bool("batchnorm", self.batchnorm)
        if batchnorm and len(features) < 2:
            # One example has no batch variance; say it in the words sklearn's checks look for.
            raise ConfigError("X", "1 sample", "at least 2 samples with batch norm")
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        seed = self._seed()
        self.model_ = MLP(
            [features.shape[1], *hidden, len(self.classes_)],
            batchnorm=batchnorm,
            activation=self.activation,
            keep_prob=self.keep_prob,
            seed=seed,
        )
        self.history_: History = fit(
            self.model_,
            features,
            encoded.astype(np.int64),
            optimizer=optimizer,
            epochs=check_positive_int("epochs", self.epochs),
            batch_size=check_positive_int("batch_size", self.batch_size),
            l2=self.l2,
            seed=seed,
        )
        if self.history_.outcome == "diverged":
            raise Diverged(len(self.history_), self.history_.cost[-1])
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """Class probabilities ``(N, C)``, columns in the order of ``classes_``."""
        check_is_fitted(self)
        features = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        probabilities: NDArray[np.floating[Any]] = self.model_.predict_proba(features)
        return probabilities

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable label of each row, ``(N,)``, taken from ``classes_``."""
        check_is_fitted(self)
        labels: NDArray[Any] = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    def _checked_hidden(self) -> tuple[int, ...]:
        sizes: object = self.hidden_layer_sizes
        if isinstance(sizes, int | np.integer) and not isinstance(sizes, bool):
            sizes = (int(sizes),)
        if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence):
            raise ConfigError("hidden_layer_sizes", sizes, "a sequence of widths >= 1")
        return tuple(
            check_positive_int(f"hidden_layer_sizes[{i}]", width) for i, width in enumerate(sizes)
        )

    def _checked_optimizer(self) -> Any:
        """The optimizer object; ``make_optimizer`` validates the rate and β."""
        name = self.optimizer
        if not isinstance(name, str) or name.strip().lower() not in OPTIMIZERS:
            raise ConfigError("optimizer", name, f"one of {', '.join(OPTIMIZERS)}")
        beta_name = _BETA_NAME[name.strip().lower()]
        # Checked here so that an error names this estimator's parameters, not the optimizer's.
        hyperparameters = {"lr": check_scalar("learning_rate", self.learning_rate, POSITIVE)}
        if beta_name is not None:
            hyperparameters[beta_name] = check_scalar("beta", self.beta, _DECAY)
        if self.activation not in _ACTIVATIONS:
            raise ConfigError("activation", self.activation, " or ".join(map(repr, _ACTIVATIONS)))
        check_scalar("l2", self.l2, Interval(float, 0))
        return make_optimizer(name, **hyperparameters)

    def _seed(self) -> int:
        """An int seed for the model and trainer: ``random_state`` itself when it is an int."""
        state: object = self.random_state
        if isinstance(state, int | np.integer) and not isinstance(state, bool):
            if not 0 <= int(state) <= _SEED_LIMIT:
                raise ConfigError("random_state", state, f"an int in [0, {_SEED_LIMIT}] or None")
            return int(state)
        try:
            generator = check_random_state(state)
        except ValueError:
            raise ConfigError("random_state", state, "an int, a RandomState or None") from None
        return int(generator.randint(_SEED_LIMIT))


def _checked_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(field, value, "True or False")
    return bool(value)
