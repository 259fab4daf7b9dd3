"""The near-neutral cast: measured on the near-neutral surfaces only, and taken out as a white-point shift."""

import numpy as np

from models.train import balance_neutrals
from transforms.balance import near_neutral_cast, without_cast


def warm_room() -> tuple[np.ndarray, np.ndarray]:
    """A cream wall (a tint of (1, 4) on white) beside a vivid blue door, both under the same light."""
    lightness = np.full((8, 8), 70.0)
    ab = np.zeros((8, 8, 2))
    ab[:, :5] = (1.0, 4.0)
    ab[:, 5:] = (10.0, -40.0)
    return lightness, ab


def test_the_cast_is_the_walls_tint_not_pulled_by_vivid_colors():
    lightness, ab = warm_room()
    np.testing.assert_allclose(near_neutral_cast(lightness, ab), (1.0, 4.0), atol=1e-5)


def test_taking_the_cast_out_whitens_the_wall_and_shifts_every_color_alike():
    lightness, ab = warm_room()
    balanced = without_cast(lightness, ab)
    np.testing.assert_allclose(balanced[:, :5], 0.0, atol=1e-5)
    np.testing.assert_allclose(balanced[:, 5:], np.broadcast_to((9.0, -44.0), (8, 3, 2)), atol=1e-5)
    np.testing.assert_allclose(without_cast(lightness, ab, 0.5)[:, :5], np.broadcast_to((0.5, 2.0), (8, 5, 2)))


def test_without_near_neutral_surfaces_or_light_nothing_changes():
    lightness, ab = warm_room()
    vivid = ab.copy()
    vivid[:, :5] = (30.0, 30.0)  # a sunset: nothing near neutral
    np.testing.assert_array_equal(without_cast(lightness, vivid), vivid)
    black = np.full_like(lightness, 5.0)  # near-neutral, but too dark to show a tint
    np.testing.assert_array_equal(without_cast(black, ab), ab)


def test_training_grids_lose_their_own_cast_each():
    lightness, ab = warm_room()
    cool = ab.copy()
    cool[:, :5] = (-2.0, -4.0)
    grids = np.stack([np.dstack([lightness / 100, tint / 128]) for tint in (ab, cool)]).astype(np.float32)
    balanced = balance_neutrals(grids.copy(), 1.0)
    np.testing.assert_allclose(balanced[:, :, :5, 1:], 0.0, atol=1e-6)
    np.testing.assert_array_equal(balanced[..., 0], grids[..., 0])
