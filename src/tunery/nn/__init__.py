"""The NumPy deep-learning engine (rows are examples: ``x: (N, D)``)."""

from typing import TYPE_CHECKING, Any

from tunery.nn._base import Array, Layer
from tunery.nn.batchnorm import BatchNorm, BatchNorm2d, InstanceNorm2d
from tunery.nn.cnn import CNN, model_from_config
from tunery.nn.gradcheck import (
    check_layer_gradients,
    check_model_gradients,
    numerical_gradient,
    relative_error,
)
from tunery.nn.layers import NO_INPUT_GRAD, Dense, Dropout, ReLU, Sigmoid, Softmax, Tanh
from tunery.nn.losses import one_hot, softmax, softmax_cross_entropy
from tunery.nn.model import MLP
from tunery.nn.optimizers import GD, Adam, Momentum, Optimizer, RMSprop, make_optimizer
from tunery.nn.schedules import Schedule, make_schedule
from tunery.nn.train import EpochMetrics, History, StopTraining, Trainer, fit

if TYPE_CHECKING:
    from tunery.nn.sklearn import MLPClassifier

__all__ = [
    "CNN",
    "GD",
    "MLP",
    "NO_INPUT_GRAD",
    "Adam",
    "Array",
    "BatchNorm",
    "BatchNorm2d",
    "Dense",
    "Dropout",
    "EpochMetrics",
    "History",
    "InstanceNorm2d",
    "Layer",
    "MLPClassifier",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "ReLU",
    "Schedule",
    "Sigmoid",
    "Softmax",
    "StopTraining",
    "Tanh",
    "Trainer",
    "check_layer_gradients",
    "check_model_gradients",
    "fit",
    "make_optimizer",
    "make_schedule",
    "model_from_config",
    "numerical_gradient",
    "one_hot",
    "relative_error",
    "softmax",
    "softmax_cross_entropy",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: scikit-learn takes seconds to import, and the engine does not need it.
    if name == "MLPClassifier":
        from tunery.nn.sklearn import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
