"""tunery: tune deep networks the way the course teaches (random, right scale, coarse to fine)."""

from tunery._exceptions import ConfigError, DataError, Diverged, Pruned, StorageError, TuneryError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "Diverged",
    "Pruned",
    "StorageError",
    "TuneryError",
    "__version__",
]
