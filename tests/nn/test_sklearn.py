"""MLPClassifier: scikit-learn's estimator contract, and sklearn's tools driving it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import loguniform
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from tunery import ConfigError, Diverged
from tunery.data import load_dataset
from tunery.nn import MLPClassifier
from tunery.nn import sklearn as nn_sklearn
from tunery.nn.train import History

Array = np.ndarray


def blobs(n: int, seed: int = 0, classes: int = 3, features: int = 4) -> tuple[Array, Array]:
    """Well separated Gaussian clusters: ``X: (n, features)``, ``y: (n,)`` in ``0..classes-1``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    return centers[y] + rng.normal(size=(n, features)), y


def small(**params: Any) -> MLPClassifier:
    """A classifier quick enough for a test: one small hidden layer, few epochs."""
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "epochs": 10, **params})


# --- scikit-learn's own checks ----------------------------------------------------------------
# Every check of sklearn.utils.estimator_checks passes (array-API input is skipped unless
# SCIPY_ARRAY_API is set); none needs to be listed as an expected failure.


@parametrize_with_checks([small(epochs=20)])
def test_sklearn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    check(estimator)


# --- the estimator contract -------------------------------------------------------------------


def test_init_only_stores_its_arguments_and_validation_waits_for_fit() -> None:
    estimator = MLPClassifier(learning_rate=-1.0, hidden_layer_sizes="wide")
    assert estimator.get_params()["learning_rate"] == -1.0
    assert estimator.get_params()["hidden_layer_sizes"] == "wide"
    X, y = blobs(20)
    with pytest.raises(ConfigError, match="hidden_layer_sizes"):
        estimator.fit(X, y)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden_layer_sizes", (8, 0)),
        ("hidden_layer_sizes", "wide"),
        ("batchnorm", "yes"),
        ("activation", "elu"),
        ("optimizer", "sgd"),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("beta", 1.0),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("epochs", 0),
        ("l2", -0.1),
        ("keep_prob", 0.0),
        ("random_state", -1),
        ("random_state", "seed"),
    ],
)
def test_fit_rejects_a_bad_parameter_with_a_config_error(field: str, value: object) -> None:
    X, y = blobs(20)
    with pytest.raises(ConfigError) as raised:
        small(**{field: value}).fit(X, y)
    assert raised.value.field.startswith(field)


def test_clone_keeps_the_parameters_and_drops_the_fit() -> None:
    X, y = blobs(60)
    fitted = small(learning_rate=0.02, l2=0.1, random_state=7).fit(X, y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "classes_")
    assert not hasattr(copy, "model_")


def test_set_params_changes_what_fit_does() -> None:
    X, y = blobs(60)
    estimator = small(epochs=2)
    assert len(estimator.fit(X, y).history_) == 2
    assert estimator.set_params(epochs=3) is estimator
    assert len(estimator.fit(X, y).history_) == 3


def test_learns_a_separable_problem_and_gives_probabilities() -> None:
    X, y = blobs(300, seed=3)
    estimator = small(learning_rate=0.01, epochs=15).fit(X[:240], y[:240])
    assert estimator.score(X[240:], y[240:]) >= 0.95
    proba = estimator.predict_proba(X[240:])
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = estimator.predict(X[240:])
    np.testing.assert_array_equal(estimator.classes_[proba.argmax(axis=1)], predicted)
    assert estimator.n_features_in_ == 4


def test_the_same_random_state_gives_the_same_model_and_another_one_does_not() -> None:
    X, y = blobs(80)
    first = small(random_state=3).fit(X, y).predict_proba(X)
    again = small(random_state=3).fit(X, y).predict_proba(X)
    other = small(random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_beta_is_adams_beta1_and_plain_gradient_descent_ignores_it() -> None:
    X, y = blobs(80)

    def proba(**params: Any) -> Array:
        return np.asarray(small(**params).fit(X, y).predict_proba(X))

    np.testing.assert_array_equal(
        proba(optimizer="gd", learning_rate=0.05, beta=0.5),
        proba(optimizer="gd", learning_rate=0.05, beta=0.99),
    )
    assert not np.allclose(proba(beta=0.5), proba(beta=0.99))
    assert not np.allclose(proba(optimizer="momentum", beta=0.5), proba(optimizer="momentum"))


def test_a_diverged_run_raises_diverged(monkeypatch: pytest.MonkeyPatch) -> None:
    def diverging_fit(*args: Any, **kwargs: Any) -> History:
        return History(cost=[1.0, float("nan")], outcome="diverged")

    monkeypatch.setattr(nn_sklearn, "fit", diverging_fit)
    X, y = blobs(20)
    with pytest.raises(Diverged, match="epoch 2"):
        small().fit(X, y)


labels = st.sampled_from(
    [
        np.array(["paper", "rock", "scissors"]),
        np.array([-5, 10, 1000]),
        np.array([1.0, 2.0, 4.0]),
        np.array([True, False]),
    ]
)


@settings(max_examples=8, deadline=None)
@given(names=labels, seed=st.integers(0, 2**16))
def test_labels_of_any_type_train_the_same_model_as_their_codes(names: Array, seed: int) -> None:
    X, codes = blobs(40, seed=seed, classes=len(names))
    y = names[codes]
    on_labels = small(epochs=3).fit(X, y)
    on_codes = small(epochs=3).fit(X, np.searchsorted(np.unique(y), y))
    np.testing.assert_array_equal(on_labels.classes_, np.unique(y))
    predicted = on_labels.predict(X)
    assert predicted.dtype == y.dtype
    # The labels are encoded in the order of classes_: the same network, the same answers.
    np.testing.assert_array_equal(predicted, on_labels.classes_[on_codes.predict(X)])
    np.testing.assert_array_equal(on_labels.predict_proba(X), on_codes.predict_proba(X))


# --- sklearn's tools driving it, on the bundled digits -----------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[Array, Array, Array, Array]:
    """The bundled digits in [0, 1] (the pipeline standardizes them): train and validation."""
    data = load_dataset("digits", normalize="scale", seed=0)
    return data.X_train, data.y_train, data.X_val, data.y_val


def test_a_pipeline_with_a_scaler(digits: tuple[Array, Array, Array, Array]) -> None:
    X, y, X_val, y_val = digits
    pipeline = make_pipeline(StandardScaler(), small(epochs=8, learning_rate=0.01))
    pipeline.fit(X, y)
    assert pipeline.score(X_val, y_val) >= 0.85


def test_randomized_search_over_a_log_uniform_learning_rate(
    digits: tuple[Array, Array, Array, Array],
) -> None:
    X, y, X_val, y_val = digits
    # One fixed validation split: -1 rows only train, 0 rows form the single test fold.
    fold = np.r_[np.full(len(y), -1), np.zeros(len(y_val))]
    search = RandomizedSearchCV(
        make_pipeline(StandardScaler(), small(epochs=4)),
        {"mlpclassifier__learning_rate": loguniform(1e-4, 1e-1)},
        n_iter=4,
        cv=PredefinedSplit(fold),
        random_state=0,
    )
    search.fit(np.vstack([X, X_val]), np.r_[y, y_val])
    rates = np.asarray(search.cv_results_["param_mlpclassifier__learning_rate"], dtype=float)
    assert len(rates) == 4
    assert np.all((rates >= 1e-4) & (rates <= 1e-1))
    assert len(set(rates.tolist())) == 4
    scores = search.cv_results_["mean_test_score"]
    assert search.best_score_ == pytest.approx(scores.max())
    assert search.best_params_["mlpclassifier__learning_rate"] == rates[scores.argmax()]
    assert search.best_score_ >= 0.8
