"""Data for tunery: the bundled digits, image folders, the classic .h5 files, splits, normalization,
and the random augmentation of training images (``Augmenter``).

``load_dataset(source)`` is the entry point: it loads, selects classes, splits (stratified, seeded)
and normalizes with statistics of the training set, which it keeps in ``Dataset.normalizer`` so that
new images (``load_images`` then ``normalizer.transform``) get the same transform.
"""

from tunery.data._augment import AUGMENT_AMOUNTS, Augmenter, AugmentSettings
from tunery.data._cache import CACHE_ENV, cache_root
from tunery.data._classes import parse_classes, sort_class_names
from tunery.data._dataset import Dataset, load_dataset, resizes_images
from tunery.data._digits import DIGITS
from tunery.data._images import load_images
from tunery.data._normalize import NORMALIZE_KINDS, NormalizeKind, Normalizer
from tunery.data._splits import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION

__all__ = [
    "AUGMENT_AMOUNTS",
    "CACHE_ENV",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_VAL_FRACTION",
    "DIGITS",
    "NORMALIZE_KINDS",
    "AugmentSettings",
    "Augmenter",
    "Dataset",
    "NormalizeKind",
    "Normalizer",
    "cache_root",
    "load_dataset",
    "load_images",
    "parse_classes",
    "resizes_images",
    "sort_class_names",
]
