"""Scans read through their own ICC profile (littleCMS): real profiles from Debian's icc-profiles-free,
checked against the CIE formulas of what each profile describes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.colorize import EXIT_FAILED_TO_RUN, main
from pipeline.content_credentials import load_credentials
from tests.conftest import color_photo, write_image
from tests.test_archival import PROFILES, needs_profiles, throwaway_chain
from transforms.codec import quantize
from transforms.icc import UnusableProfile, lightness_profile, output_profile, profile_lightness, srgb_profile
from transforms.lab import bgr_to_lab, lightness_from_y, luminance, recombine_luminance

EVERY_8_BIT = np.arange(256, dtype=np.uint8).reshape(16, 16)
EVERY_16_BIT = np.arange(65536, dtype=np.uint16).reshape(256, 256)


def profile(name: str) -> bytes:
    return (PROFILES / name).read_bytes()


@needs_profiles
@pytest.mark.parametrize("gray", [EVERY_8_BIT, EVERY_16_BIT])
def test_gray_cie_l_gives_the_lightness_it_stores(gray):
    stored = gray.astype(np.float64) / np.iinfo(gray.dtype).max * 100
    assert np.abs(profile_lightness(gray, profile("Gray-CIE_L.icc")) - stored).max() < 0.1


@needs_profiles
def test_linear_gray_gives_the_cie_lightness_of_its_values():
    y = EVERY_8_BIT / 255.0
    expected = np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)
    assert np.abs(profile_lightness(EVERY_8_BIT, profile("Gray.icc")) - expected).max() < 0.01


@needs_profiles
def test_a_16_bit_adobe_rgb_scan_is_read_by_its_own_curve():
    neutral = np.repeat(EVERY_16_BIT[..., None], 3, axis=-1)
    expected = lightness_from_y((EVERY_16_BIT / 65535.0) ** (563 / 256))
    lightness = profile_lightness(neutral, profile("compatibleWithAdobeRGB1998.icc"))
    assert np.abs(lightness - expected).max() < 0.2
    assert np.abs(luminance(neutral) - expected).mean() > 0.5  # read as sRGB: 0.8 off on average, 3.3 at worst


@needs_profiles
def test_a_gray_scan_with_an_rgb_profile_is_that_spaces_gray():
    adobe = profile("compatibleWithAdobeRGB1998.icc")
    neutral = np.repeat(EVERY_8_BIT[..., None], 3, axis=-1)
    np.testing.assert_allclose(profile_lightness(EVERY_8_BIT, adobe), profile_lightness(neutral, adobe), atol=1e-4)
    assert lightness_profile(profile("sRGB.icc"), 1) is None  # sRGB's gray: read as an untagged scan


@needs_profiles
def test_srgb_profiles_are_read_exactly_as_untagged_scans():
    assert lightness_profile(profile("sRGB.icc"), 3) is None
    assert lightness_profile(srgb_profile(), 3) is None
    assert lightness_profile(profile("Gray-CIE_L.icc"), 1) == profile("Gray-CIE_L.icc")


@needs_profiles
@pytest.mark.parametrize(
    "data, channels, message",
    [
        (b"\x00" * 200, 1, "ICC profile not readable"),
        ("ITULab.icc", 3, "ICC profile is for Lab, not for this color scan"),
        ("Gray.icc", 3, "ICC profile is for GRAY, not for this color scan"),
    ],
)
def test_an_unusable_profile_says_why(data, channels, message):
    with pytest.raises(UnusableProfile, match=message):
        lightness_profile(profile(data) if isinstance(data, str) else data, channels)


def test_signing_options_go_together_and_are_checked_before_any_file(tmp_path, tiny_model, capsys):
    write_image(tmp_path / "scans" / "a.png", color_photo(12, 12))
    chain, key, _ = throwaway_chain(tmp_path)
    argv = ["--input", str(tmp_path / "scans"), "--model", str(tiny_model)]
    assert main([*argv, "--output", str(tmp_path / "o1"), "--c2pa_cert", str(chain)]) == EXIT_FAILED_TO_RUN
    assert "--c2pa_cert and --c2pa_key go together" in capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "o2"), "--c2pa_cert", str(key), "--c2pa_key", str(key)]) == 1
    assert "is not a PEM certificate chain" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    other, _, _ = throwaway_chain(tmp_path / "other")
    with pytest.raises(ValueError, match="is not the key of the first certificate"):
        load_credentials(str(other), str(key))
    assert not (tmp_path / "o1" / "a.png").exists() and not (tmp_path / "o2" / "a.png").exists()


@pytest.mark.parametrize("name", ["adobe-rgb", "prophoto"])
def test_an_output_profile_keeps_the_lightness_and_fits_colors_into_its_own_gamut(name):
    """Read back through the embedded profile by littleCMS, the output has the L it was given."""
    rng = np.random.default_rng(0)
    lightness = rng.uniform(5, 95, (32, 32)).astype(np.float32)
    ab = rng.uniform(-30, 30, (32, 32, 2)).astype(np.float32)
    icc, space = output_profile(name)
    written = quantize(recombine_luminance(lightness, ab, space), 16)
    assert np.abs(profile_lightness(written, icc) - lightness).mean() < 0.3  # D50 Y (ICC) against D65 L: < 0.6
    gray = recombine_luminance(lightness, np.zeros_like(ab), space)
    assert np.ptp(gray, axis=-1).max() < 1e-4  # neutral stays neutral
    green = np.array([[[60.0, -80.0, 60.0]]], np.float32)  # a green sRGB cannot show; both spaces can
    in_srgb = bgr_to_lab(recombine_luminance(green[..., 0], green[..., 1:]))[0, 0]
    assert np.hypot(*in_srgb[1:]) < 0.9 * 100 and abs(in_srgb[0] - 60) < 0.01  # chroma cut, L kept
    assert not space.outside(green.reshape(1, 3))[0]  # kept whole
    inside = recombine_luminance(green[..., 0], green[..., 1:], space)
    assert np.allclose(inside, np.clip(inside, 0, 1)) and np.ptp(inside) > 0.3  # in range, and green
