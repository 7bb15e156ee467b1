"""The bundled data set: scikit-learn's 8 × 8 handwritten digits (1,797 images, classes 0–9).

It ships with scikit-learn, so it needs no download and no path: it is the source ``"digits"``.
Pixels are 0–16; ``scale`` 16 maps them to [0, 1]. Rows are the 8 × 8 image flattened row by row.
"""

from __future__ import annotations

import numpy as np

from tunery.data._classes import Labeled

__all__ = ["DIGITS", "load_bundled_digits"]

DIGITS = "digits"


def load_bundled_digits() -> Labeled:
    """All digits: ``X (1797, 64)`` float32 in 0–16, ``y (1797,)`` int64, names ``"0"``–``"9"``."""
    from sklearn.datasets import load_digits  # scikit-learn is slow to import: on use

    bunch = load_digits()
    return Labeled(
        X=np.asarray(bunch.data, dtype=np.float32),
        y=np.asarray(bunch.target, dtype=np.int64),
        class_names=tuple(str(name) for name in bunch.target_names),
        image_shape=tuple(int(side) for side in bunch.images.shape[1:]),
        scale=16.0,
    )
