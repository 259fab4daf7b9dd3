"""CIELAB work on scans: round trips, luminance kept at full resolution, odd shapes, 16 bits."""

import cv2
import numpy as np
import pytest

from pipeline.scans import colorize_scan, prepare_scan
from tests.conftest import color_photo
from transforms import lab
from transforms.codec import ScanDecodeError, decode_scan, encode_image, quantize, to_float_bgr
from transforms.lab import _outside_srgb, bgr_to_lab, lab_to_bgr, luminance, recombine_luminance
from transforms.letterbox import letterbox, model_input, restore_ab
from transforms.metrics import colorfulness


def test_lab_round_trip_is_exact_to_16_bits():
    image = color_photo(64, 48).astype(np.uint16) * 257
    back = quantize(lab_to_bgr(bgr_to_lab(to_float_bgr(image))), 16)
    assert np.abs(back.astype(int) - image.astype(int)).max() <= 2


def test_lab_matches_published_values_and_opencv():
    primaries = np.array([[[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1]]], np.float32)  # BGR red, green, blue, white
    expected = [[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [100, 0, 0]]
    np.testing.assert_allclose(bgr_to_lab(primaries)[0], expected, atol=0.02)
    image = to_float_bgr(color_photo(32, 32))
    np.testing.assert_allclose(bgr_to_lab(image), cv2.cvtColor(image, cv2.COLOR_BGR2Lab), atol=0.5)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_recombination_keeps_the_input_luminance_even_for_impossible_colors(bit_depth):
    rng = np.random.default_rng(1)
    lightness = luminance(color_photo(45, 70))
    wild_ab = rng.uniform(-128, 127, (45, 70, 2)).astype(np.float32)  # mostly outside sRGB
    written = quantize(recombine_luminance(lightness, wild_ab), bit_depth)
    assert np.abs(luminance(written) - lightness).max() <= 0.5


def test_impossible_colors_keep_nearly_all_the_chroma_srgb_can_show():
    rng = np.random.default_rng(2)
    lightness = rng.uniform(0, 100, (60, 80)).astype(np.float32)
    wild_ab = rng.uniform(-128, 127, (60, 80, 2)).astype(np.float32)
    fitted_lab = bgr_to_lab(recombine_luminance(lightness, wild_ab))
    outside = _outside_srgb(np.dstack([lightness, wild_ab]).reshape(-1, 3))
    assert outside.mean() > 0.5  # the test is about them
    chroma_kept = (
        np.hypot(*np.moveaxis(fitted_lab[..., 1:], -1, 0)).ravel() / np.hypot(*np.moveaxis(wild_ab, -1, 0)).ravel()
    )
    pushed = np.dstack([lightness, wild_ab * np.minimum(1.0, chroma_kept * 1.01).reshape(60, 80, 1)])
    visible = lightness.ravel() > 1  # near black every chroma is a fraction of a unit
    assert _outside_srgb(pushed.reshape(-1, 3))[outside & visible].mean() > 0.99  # 1 % more would not fit


def test_recombination_keeps_in_gamut_colors():
    image = color_photo(30, 40)
    lab = bgr_to_lab(to_float_bgr(image))
    result = quantize(recombine_luminance(lab[:, :, 0], lab[:, :, 1:]), 8)
    assert np.abs(result.astype(int) - image.astype(int)).max() <= 2


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 500), (1000, 9), (255, 257)])
def test_prediction_returns_to_the_full_odd_sized_image(shape):
    height, width = shape
    lightness = np.full(shape, 50.0, np.float32)
    grid, box = model_input(lightness, 32)
    assert grid.shape == (32, 32, 1) and grid.dtype == np.float32
    assert 1 <= box.height <= 32 and 1 <= box.width <= 32
    prediction = np.zeros((32, 32, 2), np.float32)
    prediction[box.top : box.top + box.height, box.left : box.left + box.width] = 0.25
    ab = restore_ab(prediction, box, height, width)
    assert ab.shape == (height, width, 2)
    np.testing.assert_allclose(ab, 32.0, atol=1e-3)  # 0.25 * 128, the padding never leaks in


def test_letterbox_keeps_aspect_ratio():
    grid, box = letterbox(np.zeros((100, 400), np.float32), 64)
    assert grid.shape == (64, 64)
    assert (box.height, box.width) == (16, 64) and box.top == 24 and box.left == 0


def test_decode_keeps_16_bits_and_encode_writes_them_back():
    image = color_photo(20, 30).astype(np.uint16) * 257 + 3
    ok, png = cv2.imencode(".png", image)
    scan = decode_scan(png.tobytes())
    assert scan.bit_depth == 16 and scan.input_channels == 3
    np.testing.assert_array_equal(scan.pixels, image)
    encoded = encode_image(to_float_bgr(scan.pixels), "png", 16)
    assert cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    jpeg = encode_image(to_float_bgr(scan.pixels), "jpg", 16)
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_sixteen_bit_luminance_is_finer_than_8_bit():
    ramp = np.linspace(0, 65535, 4096).astype(np.uint16)[None, :]
    assert len(np.unique(luminance(ramp))) > 1000


def test_alpha_is_composited_on_white():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[:, :2] = (0, 0, 255, 255)  # opaque red
    ok, png = cv2.imencode(".png", bgra)  # the right half is fully transparent
    scan = decode_scan(png.tobytes())
    assert scan.input_channels == 4 and scan.pixels.shape == (4, 4, 3)
    assert (scan.pixels[:, 2:] == 255).all() and (scan.pixels[:, :2] == (0, 0, 255)).all()


def test_toned_scan_is_used_for_its_luminance():
    gray = cv2.cvtColor(color_photo(20, 20), cv2.COLOR_BGR2GRAY)
    sepia = np.clip(gray[:, :, None] * np.array([0.75, 0.9, 1.1]), 0, 255).astype(np.uint8)
    lightness = luminance(sepia)
    assert lightness.shape == (20, 20)
    np.testing.assert_allclose(lightness, bgr_to_lab(to_float_bgr(sepia))[:, :, 0], atol=1e-3)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "file is empty"),
        (b"just some text", "not a readable image"),
        (b"\xff\xd8\xff" + b"\0" * 20, "not a readable image"),
    ],
)
def test_undecodable_files_raise_a_clear_error(data, message):
    with pytest.raises(ScanDecodeError, match=message):
        decode_scan(data)


@pytest.mark.parametrize(
    "pixels, bit_depth",
    [
        (cv2.cvtColor(color_photo(37, 23, seed=3), cv2.COLOR_BGR2GRAY), 8),
        (color_photo(37, 23, seed=4), 8),
        (color_photo(37, 23, seed=5).astype(np.uint16) * 257, 16),
    ],
)
def test_strips_give_exactly_the_whole_image_result(pixels, bit_depth, monkeypatch):
    """Large scans are colorized in strips of rows (for memory); the result must not depend on the strips."""
    data = cv2.imencode(".png", pixels)[1].tobytes()
    scan = prepare_scan("scan.png", "scan.png", "out/scan.png", data, "0" * 64, 16, keep_truth=False)
    prediction = np.random.default_rng(0).uniform(-0.6, 0.6, (16, 16, 2)).astype(np.float32)

    whole, whole_colorfulness, whole_float = colorize_scan(scan, prediction, bit_depth, keep_float=True)
    assert len(list(lab.row_strips(37, 23))) == 1
    whole_lightness = luminance(pixels)
    monkeypatch.setattr(lab, "STRIP_PIXELS", 23 * 5)  # strips of 5 rows, the last one of 2
    assert len(list(lab.row_strips(37, 23))) == 8
    strips, strips_colorfulness, strips_float = colorize_scan(scan, prediction, bit_depth, keep_float=True)

    np.testing.assert_array_equal(strips, whole)
    np.testing.assert_array_equal(strips_float, whole_float)
    np.testing.assert_array_equal(luminance(pixels), whole_lightness)
    assert strips_colorfulness == pytest.approx(whole_colorfulness, rel=1e-9)
    assert colorfulness(quantize(whole_float, 8)) == pytest.approx(whole_colorfulness, rel=1e-9)


def test_strip_upsampling_is_opencvs_bilinear_resize():
    """The a/b upsampling, done row by row for the strips, is the bilinear resize it replaced."""
    prediction = np.random.default_rng(1).uniform(-0.6, 0.6, (32, 32, 2)).astype(np.float32)
    grid, box = model_input(np.zeros((50, 70), np.float32), 32)
    crop = np.clip(prediction[box.top : box.top + box.height, box.left : box.left + box.width] * 128, -128, 127)
    expected = cv2.resize(crop, (70, 50), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(restore_ab(prediction, box, 50, 70), expected, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_rounds_half_to_even_as_numpy_does(dtype):
    """8-bit float32 quantization goes through OpenCV: the same bytes as NumPy's rounding, ties included."""
    values = np.concatenate([np.random.default_rng(2).random(30000), (np.arange(255) + 0.5) / 255, [0.0, 1.0, 0.5]])
    bgr = values.astype(dtype).reshape(-1, 1, 3)
    for bit_depth, integer in ((8, np.uint8), (16, np.uint16)):
        expected = np.round(bgr * float(np.iinfo(integer).max)).astype(integer)
        np.testing.assert_array_equal(quantize(bgr, bit_depth), expected)
