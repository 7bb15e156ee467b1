"""The NumPy deep-learning engine (rows are examples: ``x: (N, D)``)."""

from tunery.nn._base import Array, Layer
from tunery.nn.batchnorm import BatchNorm
from tunery.nn.gradcheck import (
    check_layer_gradients,
    check_model_gradients,
    numerical_gradient,
    relative_error,
)
from tunery.nn.layers import NO_INPUT_GRAD, Dense, Dropout, ReLU, Sigmoid, Softmax, Tanh
from tunery.nn.losses import one_hot, softmax, softmax_cross_entropy
from tunery.nn.model import MLP

__all__ = [
    "MLP",
    "NO_INPUT_GRAD",
    "Array",
    "BatchNorm",
    "Dense",
    "Dropout",
    "Layer",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "check_layer_gradients",
    "check_model_gradients",
    "numerical_gradient",
    "one_hot",
    "relative_error",
    "softmax",
    "softmax_cross_entropy",
]
