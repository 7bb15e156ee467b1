"""Input normalization, fitted on the training set and kept for new images.

Inputs reach the normalizer already scaled to [0, 1] (pixels ÷ 255, the digits' 0–16 ÷ 16).

- ``"standardize"`` (the default): subtract the training set's per-feature mean and divide by its
  per-feature standard deviation. A feature that is constant on the training set (a border pixel
  that is always 0) keeps a divisor of 1, so it maps to 0 instead of dividing by zero.
- ``"scale"``: nothing more than the ÷ 255 (the classic exercise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from tunery._exceptions import ConfigError, DataError

__all__ = ["NORMALIZE_KINDS", "NormalizeKind", "Normalizer", "check_normalize"]

NormalizeKind = Literal["standardize", "scale"]
NORMALIZE_KINDS: tuple[str, ...] = get_args(NormalizeKind)


def check_normalize(kind: object, field: str = "normalize") -> NormalizeKind:
    """Validate a normalization name."""
    if kind == "standardize":
        return "standardize"
    if kind == "scale":
        return "scale"
    raise ConfigError(field, kind, " or ".join(repr(name) for name in NORMALIZE_KINDS))


@dataclass(frozen=True, eq=False)
class Normalizer:
    """Maps ``X: (N, num_features)`` in [0, 1] to the model's inputs, float32.

    For ``"standardize"``, ``mean`` and ``std`` are ``(num_features,)`` float32 arrays from the
    training set; for ``"scale"`` both are ``None``.
    """

    kind: NormalizeKind
    num_features: int
    mean: NDArray[np.float32] | None = None
    std: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        check_normalize(self.kind, "normalizer.kind")
        if isinstance(self.num_features, bool) or not isinstance(self.num_features, int):
            raise ConfigError("normalizer.num_features", self.num_features, "an integer >= 1")
        if self.num_features < 1:
            raise ConfigError("normalizer.num_features", self.num_features, "an integer >= 1")
        if self.kind == "standardize":
            self._check_statistic("mean", self.mean)
            self._check_statistic("std", self.std)

    def _check_statistic(self, name: str, value: NDArray[np.float32] | None) -> None:
        expected = f"a finite array of shape ({self.num_features},)"
        if value is None or value.shape != (self.num_features,) or not np.all(np.isfinite(value)):
            raise ConfigError(f"normalizer.{name}", value, expected)

    @classmethod
    def fit(cls, X: NDArray[Any], kind: NormalizeKind = "standardize") -> Normalizer:
        """Fit on training rows ``X: (N, D)`` in [0, 1]."""
        kind = check_normalize(kind)
        if kind == "scale":
            return cls("scale", X.shape[1])
        from sklearn.preprocessing import StandardScaler  # scikit-learn is slow to import: on use

        scaler = StandardScaler().fit(X)
        return cls(
            "standardize",
            X.shape[1],
            mean=np.asarray(scaler.mean_, dtype=np.float32),
            std=np.asarray(scaler.scale_, dtype=np.float32),
        )

    def transform(self, X: NDArray[Any]) -> NDArray[np.float32]:
        """``X: (N, num_features)`` in [0, 1] → ``(N, num_features)`` float32 model inputs."""
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise DataError(
                f"inputs of shape {X.shape} do not fit this normalizer: it expects "
                f"(N, {self.num_features}) rows, as in the data it was fitted on"
            )
        rows = np.asarray(X, dtype=np.float32)
        if self.kind == "scale" or self.mean is None or self.std is None:
            return rows.copy()
        return (rows - self.mean) / self.std

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"kind", "num_features", "mean", "std"}`` (lists or ``None``)."""
        return {
            "kind": self.kind,
            "num_features": self.num_features,
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        """Rebuild from ``to_dict``'s output (also after a JSON round trip)."""
        try:
            kind, num_features = data["kind"], data["num_features"]
            mean, std = data.get("mean"), data.get("std")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError("normalizer", data, "a dict with kind and num_features") from exc
        return cls(
            check_normalize(kind, "normalizer.kind"),
            num_features,
            mean=None if mean is None else np.asarray(mean, dtype=np.float32),
            std=None if std is None else np.asarray(std, dtype=np.float32),
        )
