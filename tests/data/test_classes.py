"""parse_classes, sort_class_names, resolve_classes and Labeled.select."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunery import ConfigError, DataError
from tunery.data import parse_classes, sort_class_names
from tunery.data._classes import Labeled, resolve_classes

labels = st.integers(min_value=0, max_value=500)


def test_none_means_all_classes() -> None:
    assert parse_classes(None) is None


def test_classic_signs_setting() -> None:
    assert parse_classes("0-5") == ("0", "1", "2", "3", "4", "5")


@given(low=labels, width=st.integers(min_value=0, max_value=30))
def test_range_lists_every_label_inclusive(low: int, width: int) -> None:
    names = parse_classes(f"{low}-{low + width}")
    assert names is not None
    assert [int(name) for name in names] == list(range(low, low + width + 1))


@given(st.lists(labels, min_size=1, max_size=20))
def test_comma_list_and_sequence_agree(values: list[int]) -> None:
    expected = tuple(dict.fromkeys(str(value) for value in values))
    assert parse_classes(",".join(map(str, values))) == expected
    assert parse_classes(values) == expected
    assert parse_classes([str(value) for value in values]) == expected


def test_ranges_names_and_spaces_mix() -> None:
    assert parse_classes(" 0 - 2 , 7 ") == ("0", "1", "2", "7")
    assert parse_classes("cat, dog") == ("cat", "dog")
    assert parse_classes([np.int64(3), "x"]) == ("3", "x")


@pytest.mark.parametrize(
    "spec", ["", " ", "0,,1", "1,", "5-2", [], [True], [1.5], [""], 3, b"01", {"a": 1}]
)
def test_bad_specs_are_config_errors(spec: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_classes(spec)  # type: ignore[arg-type]
    assert caught.value.field == "classes"


@given(st.sets(labels, min_size=1, max_size=20))
def test_integer_names_sort_numerically(values: set[int]) -> None:
    assert sort_class_names(str(value) for value in values) == tuple(
        str(value) for value in sorted(values)
    )


def test_other_names_sort_as_strings() -> None:
    assert sort_class_names(["b", "10", "a", "2"]) == ("10", "2", "a", "b")
    assert sort_class_names(["10", "9", "9"]) == ("9", "10")


def test_resolve_keeps_source_order_and_matches_padded_names() -> None:
    available = ["00", "01", "02", "10"]
    assert resolve_classes(available, ("10", "0"), "here") == ("00", "10")
    assert resolve_classes(available, None, "here") == tuple(available)


def test_unknown_classes_name_the_source_and_the_class() -> None:
    with pytest.raises(DataError, match=r"my/folder.*'11'.*0, 1, 2"):
        resolve_classes(["0", "1", "2"], ("1", "11"), "my/folder")


def test_fewer_than_two_classes_is_an_error() -> None:
    with pytest.raises(DataError, match="at least two classes"):
        resolve_classes(["0", "1", "2"], ("1",), "src")
    with pytest.raises(DataError, match="at least two classes"):
        resolve_classes(["only"], None, "src")


@given(
    y=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=60),
    keep=st.sets(st.integers(min_value=0, max_value=5), min_size=1),
)
def test_select_reindexes_and_keeps_each_rows_class(y: list[int], keep: set[int]) -> None:
    names = tuple(f"c{k}" for k in range(6))
    labels_in = np.asarray(y, dtype=np.int64)
    labeled = Labeled(
        X=labels_in[:, None] * 10, y=labels_in, class_names=names, image_shape=(1,), scale=1.0
    )
    chosen = [name for name in names if int(name[1:]) in keep]
    selected = labeled.select(chosen)
    assert selected.class_names == tuple(chosen)
    assert len(selected.y) == sum(label in keep for label in y)
    assert set(selected.y.tolist()) <= set(range(len(chosen)))
    # The row's features (its old label * 10) still belong to the class its new label names.
    old_labels = selected.X[:, 0] // 10
    assert [chosen[new] for new in selected.y] == [names[old] for old in old_labels]
