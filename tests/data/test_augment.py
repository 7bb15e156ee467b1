"""The augmentation of training images: settings checks, each transform against its definition or
scipy.ndimage, seeded reproducibility, rows and N×C×H×W alike, normalization undone and redone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from tunery import ConfigError
from tunery.data import AUGMENT_AMOUNTS, Augmenter, AugmentSettings
from tunery.data._augment import _Draws, _hue_matrices

EVERYTHING = AugmentSettings(
    rotation=15, scale=0.1, flip=True, brightness=0.2, contrast=0.2, hue=0.05, temperature=0.1
)
LIMITS = {
    "rotation": 180, "scale": 1, "brightness": 1, "contrast": 1, "hue": 0.5, "temperature": 1,
    "mix": 1,
}  # fmt: skip


def _images(n: int = 8, size: int = 9, seed: int = 0) -> np.ndarray:
    """``(n, size, size, 3)`` pixels in [0.1, 0.5]: a brightness or colour change never clips."""
    return np.random.default_rng(seed).uniform(0.1, 0.5, (n, size, size, 3)).astype(np.float32)


def _rows(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1)


# ---------------------------------------------------------------------------------------- settings


def test_the_defaults_augment_nothing_and_every_amount_counts() -> None:
    assert not AugmentSettings().active
    assert AugmentSettings(flip=True).active
    for name in AUGMENT_AMOUNTS:
        assert AugmentSettings(**{name: 0.1}).active


@given(name=st.sampled_from(AUGMENT_AMOUNTS), excess=st.floats(1e-6, 1e6))
def test_an_amount_out_of_range_names_the_field_value_and_rule(name: str, excess: float) -> None:
    for value in (-excess, LIMITS[name] + excess):
        with pytest.raises(ConfigError) as caught:
            AugmentSettings.from_mapping({name: value}, "data.augment")
        assert caught.value.field == f"data.augment.{name}"
        assert caught.value.value == value
        assert "in [0" in caught.value.expected


@pytest.mark.parametrize("value", [float("nan"), "15", None, True])
def test_a_non_number_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"augment\.rotation"):
        AugmentSettings.from_mapping({"rotation": value})


def test_flip_must_be_a_bool_and_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"data\.augment\.flip: expected true or false"):
        AugmentSettings.from_mapping({"flip": 1}, "data.augment")
    with pytest.raises(ConfigError) as caught:
        AugmentSettings.from_mapping({"rotate": 15}, "data.augment")
    assert caught.value.field == "data.augment.rotate"
    assert "rotation" in caught.value.expected
    with pytest.raises(ConfigError, match="a table"):
        AugmentSettings.from_mapping([15], "data.augment")


def test_colour_changes_need_three_channels() -> None:
    Augmenter(AugmentSettings(rotation=10, brightness=0.2, contrast=0.2), (8, 8))  # grey: fine
    for name in ("hue", "temperature", "mix"):
        with pytest.raises(ConfigError, match=f"augment.{name}: expected 0 for images without 3"):
            Augmenter(AugmentSettings(**{name: 0.1}), (8, 8))


def test_a_batch_of_another_shape_is_refused() -> None:
    augmenter = Augmenter(EVERYTHING, (9, 9, 3))
    with pytest.raises(ConfigError, match=r"rows \(N, 243\) or images \(N, 3, 9, 9\)"):
        augmenter(np.zeros((2, 100), np.float32), np.random.default_rng(0))


# ------------------------------------------------------------------------------- reproducibility


def test_a_seed_repeats_bit_for_bit_and_another_seed_differs() -> None:
    augmenter = Augmenter(EVERYTHING, (9, 9, 3))
    rows = _rows(_images())
    first = augmenter(rows, np.random.default_rng(7))
    again = augmenter(rows, np.random.default_rng(7))
    other = augmenter(rows, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, rows)


def test_the_batch_is_never_changed_in_place() -> None:
    rows = _rows(_images())
    before = rows.copy()
    Augmenter(EVERYTHING, (9, 9, 3))(rows, np.random.default_rng(0))
    assert np.array_equal(rows, before)


@given(chunk=st.integers(1, 20))
@settings(max_examples=10, deadline=None)
def test_the_result_does_not_depend_on_the_chunk_size(chunk: int) -> None:
    augmenter = Augmenter(EVERYTHING, (9, 9, 3))
    pixels = _rows(_images(n=13))
    whole = augmenter.augment_pixels(pixels, np.random.default_rng(3), chunk=13)
    chunked = augmenter.augment_pixels(pixels, np.random.default_rng(3), chunk=chunk)
    assert np.array_equal(whole, chunked)


def test_switching_one_transform_on_leaves_the_others_draws_alone() -> None:
    """The draws come in a fixed order whatever is on: flip on top of a rotation mirrors the
    rotated image of the same angle (a mirrored rotation by a is the rotation by -a, mirrored)."""
    draws_off = _Draws.of(AugmentSettings(rotation=30), 16, np.random.default_rng(5))
    draws_on = _Draws.of(AugmentSettings(rotation=30, flip=True), 16, np.random.default_rng(5))
    assert np.array_equal(draws_off.angle, draws_on.angle)
    assert not draws_off.mirror.any()
    assert draws_on.mirror.any()


def test_rows_and_nchw_images_get_the_same_transforms() -> None:
    augmenter = Augmenter(EVERYTHING, (9, 9, 3))
    images = _images()
    from_rows = augmenter(_rows(images), np.random.default_rng(2))
    nchw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    from_nchw = augmenter(nchw, np.random.default_rng(2))
    assert from_nchw.shape == nchw.shape
    back = from_nchw.transpose(0, 2, 3, 1).reshape(len(images), -1)
    assert np.array_equal(back, from_rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_dtype_is_kept(dtype: type) -> None:
    rows = _rows(_images()).astype(dtype)
    assert Augmenter(EVERYTHING, (9, 9, 3))(rows, np.random.default_rng(0)).dtype == dtype


# ------------------------------------------------------------------------------- normalization


def test_nothing_switched_on_gives_the_rows_back_through_the_normalization() -> None:
    images = _images()
    mean = np.random.default_rng(1).uniform(0.2, 0.4, 243).astype(np.float32)
    std = np.random.default_rng(2).uniform(0.1, 0.3, 243).astype(np.float32)
    normalized = (_rows(images) - mean) / std
    augmenter = Augmenter(AugmentSettings(), (9, 9, 3), mean=mean, std=std)
    out = augmenter(normalized, np.random.default_rng(0))
    np.testing.assert_allclose(out, normalized, atol=1e-5)


def test_the_transforms_act_on_pixels_not_on_normalized_values() -> None:
    """Brightness ×f on normalized rows must be ×f on the pixels, renormalized."""
    images = _images()
    mean = np.full(243, 0.3, np.float32)
    std = np.full(243, 0.2, np.float32)
    augmenter = Augmenter(AugmentSettings(brightness=0.3), (9, 9, 3), mean=mean, std=std)
    out = augmenter((_rows(images) - mean) / std, np.random.default_rng(4))
    pixels = out * std + mean
    factor = pixels / _rows(images)
    np.testing.assert_allclose(factor, np.broadcast_to(factor[:, :1], factor.shape), rtol=1e-4)
    assert np.all(np.abs(factor - 1) <= 0.3 + 1e-5)
    assert np.ptp(factor[:, 0]) > 0.1


# ---------------------------------------------------------------------------------- geometry


def test_flip_mirrors_about_half_of_the_images_exactly() -> None:
    images = _images(n=64)
    out = Augmenter(AugmentSettings(flip=True), (9, 9, 3))(_rows(images), np.random.default_rng(0))
    out = out.reshape(images.shape)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 16 <= sum(mirrored) <= 48


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_the_geometry_moves_pixels_and_keeps_the_centre(seed: int) -> None:
    """Nearest-neighbour resampling only copies pixels; the centre of an odd-sized image maps
    onto itself under any rotation, zoom and mirror."""
    images = _images(n=4, size=9, seed=seed % 1000)
    geometry = AugmentSettings(rotation=180, scale=0.5, flip=True)
    out = Augmenter(geometry, (9, 9, 3))(_rows(images), np.random.default_rng(seed))
    out = out.reshape(images.shape)
    for before, after in zip(images, out, strict=True):
        seen = {tuple(p) for p in before.reshape(-1, 3)}
        assert all(tuple(p) in seen for p in after.reshape(-1, 3))
        assert np.array_equal(after[4, 4], before[4, 4])


@pytest.mark.parametrize(("angle", "zoom"), [(30.0, 1.0), (-12.0, 1.15), (0.0, 0.85), (90.0, 1.0)])
def test_rotation_and_zoom_match_scipy_ndimage(angle: float, zoom: float) -> None:
    """The same inverse map through ``ndimage.affine_transform`` (order 0, edge repeated): equal
    but for pixels that sit on a rounding tie."""
    images = _images(n=1, size=15)
    augmenter = Augmenter(AugmentSettings(rotation=90, scale=0.5), (15, 15, 3))
    one = np.ones(1)
    draws = _Draws(
        angle=np.array([angle]), zoom=np.array([zoom]), mirror=np.zeros(1, bool),
        bright=one, contrast=one, hue=0 * one, temperature=0 * one, mix=np.eye(3)[None],
    )  # fmt: skip
    out = augmenter._augment_chunk(_rows(images), draws).reshape(15, 15, 3)
    theta = np.deg2rad(angle)
    matrix = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) / zoom
    centre = np.array([7.0, 7.0])
    expected = np.stack(
        [
            ndimage.affine_transform(
                images[0, :, :, c], matrix, offset=centre - matrix @ centre, order=0, mode="nearest"
            )
            for c in range(3)
        ],
        axis=-1,
    )
    grid = np.stack(np.meshgrid(np.arange(15.0), np.arange(15.0), indexing="ij"), axis=-1)
    source = (grid - centre) @ matrix.T + centre  # where each output pixel reads
    tie = np.any(np.abs(source - np.floor(source) - 0.5) < 1e-6, axis=-1)
    assert tie.mean() < 0.2
    assert np.array_equal(out[~tie], expected[~tie])


# ------------------------------------------------------------------------------------ colour


def test_a_third_of_a_turn_of_hue_sends_red_to_green_to_blue() -> None:
    turn = _hue_matrices(np.array([1 / 3]))[0]
    np.testing.assert_allclose(turn @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(turn @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)


@given(shift=st.floats(-0.5, 0.5))
def test_a_hue_turn_keeps_greys_and_brightness_sums(shift: float) -> None:
    turn = _hue_matrices(np.array([shift]))[0]
    np.testing.assert_allclose(turn @ [0.4, 0.4, 0.4], [0.4, 0.4, 0.4], atol=1e-12)
    np.testing.assert_allclose(turn.sum(axis=1), 1.0, atol=1e-12)  # R+G+B of any colour kept


def test_temperature_scales_red_up_and_blue_down_by_one_amount() -> None:
    images = _images(n=32)
    out = Augmenter(AugmentSettings(temperature=0.1), (9, 9, 3))(
        _rows(images), np.random.default_rng(0)
    ).reshape(images.shape)
    gains = out / images
    red, green, blue = (gains[..., c].reshape(32, -1) for c in range(3))
    np.testing.assert_allclose(green, 1.0, rtol=1e-6)
    np.testing.assert_allclose(red - 1, 1 - blue, atol=1e-5)
    np.testing.assert_allclose(red, np.broadcast_to(red[:, :1], red.shape), rtol=1e-5)
    assert np.all(np.abs(red - 1) <= 0.1 + 1e-6)
    assert (red > 1).any()
    assert (red < 1).any()


def test_contrast_keeps_the_mean_grey_and_clipping_keeps_pixels_in_range() -> None:
    images = _images(n=16)
    out = Augmenter(AugmentSettings(contrast=0.5), (9, 9, 3))(
        _rows(images), np.random.default_rng(1)
    ).reshape(16, -1, 3)
    luma = np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(
        (out @ luma).mean(axis=1), (images.reshape(16, -1, 3) @ luma).mean(axis=1), rtol=1e-4
    )
    strong = Augmenter(AugmentSettings(brightness=1.0, contrast=1.0), (9, 9, 3))
    bright = strong(_rows(images) * 2, np.random.default_rng(2))
    assert bright.min() >= 0.0
    assert bright.max() <= 1.0


@given(amount=st.floats(0.01, 0.5), seed=st.integers(0, 2**16))
def test_the_channel_mix_is_one_matrix_per_photo_with_rows_of_absolute_sum_one(
    amount: float, seed: int
) -> None:
    """Each photo's colours go through one 3 × 3 matrix (recovered by least squares from its
    unclipped pixels); its rows sum to 1 in absolute value; photos get different matrices."""
    images = _images(n=6, size=9, seed=seed) * 0.5 + 0.25  # away from the clip at 0 and 1
    out = Augmenter(AugmentSettings(mix=amount), (9, 9, 3))(
        _rows(images), np.random.default_rng(seed)
    ).reshape(6, -1, 3)
    fitted = []
    for source, mixed in zip(images.reshape(6, -1, 3), out, strict=True):
        inside = np.all((mixed > 1e-4) & (mixed < 1 - 1e-4), axis=1)
        if inside.sum() < 12:  # a mix that clips most of the photo: nothing to fit
            continue
        matrix, *_ = np.linalg.lstsq(source[inside], mixed[inside], rcond=None)
        np.testing.assert_allclose(source[inside] @ matrix, mixed[inside], atol=1e-4)
        np.testing.assert_allclose(np.abs(matrix).sum(axis=0), 1.0, atol=1e-3)
        fitted.append(matrix)
    assert len(fitted) >= 2
    assert not np.allclose(fitted[0], fitted[1], atol=1e-3)


def test_a_small_mix_keeps_each_channel_mostly_itself() -> None:
    draws = _Draws.of(AugmentSettings(mix=0.3), 64, np.random.default_rng(0))
    diagonal = np.diagonal(draws.mix, axis1=1, axis2=2)
    off = np.abs(draws.mix).sum(axis=2) - np.abs(diagonal)
    assert np.all(diagonal > off)  # 1 - 0.3 against at most 2 × 0.3
    assert np.all(diagonal >= 0.7 / 1.6 - 1e-12)
    np.testing.assert_array_equal(
        _Draws.of(EVERYTHING, 4, np.random.default_rng(0)).mix.shape, (4, 3, 3)
    )


def test_no_mix_is_the_identity_and_leaves_the_other_draws_alone() -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    plain = _Draws.of(AugmentSettings(hue=0.05, temperature=0.1), 8, rng_a)
    mixed = _Draws.of(AugmentSettings(hue=0.05, temperature=0.1, mix=0.5), 8, rng_b)
    np.testing.assert_array_equal(plain.mix, np.broadcast_to(np.eye(3), (8, 3, 3)))
    for name in ("angle", "zoom", "mirror", "bright", "contrast", "hue", "temperature"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(mixed, name))
    assert rng_a.random() == rng_b.random()  # the same count drawn either way
