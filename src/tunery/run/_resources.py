"""What one trial holds while it runs on a cluster: CPU cores and GPUs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunery._exceptions import ConfigError
from tunery._validation import Interval, check_scalar

__all__ = ["Resources"]

_CPUS = Interval(float, 0, closed="neither")
_GPUS = Interval(float, 0)


@dataclass(frozen=True, slots=True)
class Resources:
    """What one trial holds while it runs: CPU cores and GPUs (fractions allowed, e.g. 0.25)."""

    cpu: float = 1.0
    gpu: float = 0.0

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any] | None, field: str = "resources") -> Resources:
        """``{"cpu": 1, "gpu": 0.25}`` checked; unknown keys and bad numbers name ``field``."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, "a table such as { cpu = 1, gpu = 0.25 }")
        unknown = sorted(set(value) - {"cpu", "gpu"})
        if unknown:
            raise ConfigError(f"{field}.{unknown[0]}", value[unknown[0]], "only cpu and gpu keys")
        cpu = check_scalar(f"{field}.cpu", value.get("cpu", 1.0), _CPUS)
        gpu = check_scalar(f"{field}.gpu", value.get("gpu", 0.0), _GPUS)
        return cls(float(cpu), float(gpu))

    def to_dict(self) -> dict[str, float]:
        return {"cpu": self.cpu, "gpu": self.gpu}
