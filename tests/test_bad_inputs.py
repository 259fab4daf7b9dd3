"""Archive-grade input: every kind of odd or broken file either colorizes correctly or gets a clear error row."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

import pipeline
from pipeline.records import read_metadata
from tests.conftest import color_photo, write_image

PHOTO = color_photo(60, 80)  # 80 wide, 60 high


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims an enormous size (its pixel data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def tiff(pages: list[tuple[Image.Image, dict]]) -> bytes:
    """A TIFF of these pages, each with its own tags (254, NewSubfileType 1: a reduced-resolution preview)."""
    buffer = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(buffer, new=True) as writer:
        for page, tags in pages:
            page.save(writer, format="TIFF", tiffinfo=tags)
            writer.newFrame()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad") / "in"
    jpeg = cv2.imencode(".jpg", PHOTO)[1].tobytes()
    png = cv2.imencode(".png", PHOTO)[1].tobytes()
    folder.mkdir()
    for name, data in {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "random.jpg": np.random.default_rng(0).bytes(3000),
        "text.png": b"this is not a picture\n",
        "huge_header.png": png_claiming(60000, 60000),
    }.items():
        (folder / name).write_bytes(data)
    rgb = Image.fromarray(PHOTO[:, :, ::-1])
    write_image(folder / "alpha.png", np.dstack([PHOTO, np.full(PHOTO.shape[:2], 128, np.uint8)]))
    rgb.convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
    write_image(folder / "gray16.tiff", cv2.cvtColor(PHOTO, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    write_image(folder / "rgb16.tiff", PHOTO.astype(np.uint16) * 257)
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    frames = [Image.fromarray(color_photo(60, 80, seed=seed)[:, :, ::-1]) for seed in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees clockwise to display
    rgb.save(folder / "exif_rotated.jpg", exif=exif)
    pages = [cv2.cvtColor(color_photo(60, 80, seed=seed), cv2.COLOR_BGR2GRAY) for seed in range(2)]
    (folder / "two_pages.tif").write_bytes(tiff([(Image.fromarray(page), {}) for page in pages]))
    preview = Image.fromarray(pages[0]).resize((20, 15))
    (folder / "with_preview.tif").write_bytes(tiff([(Image.fromarray(pages[0]), {}), (preview, {254: 1})]))
    write_image(folder / "one_pixel.png", PHOTO[:1, :1])
    write_image(folder / "strip.png", cv2.resize(PHOTO, (20000, 40)))
    for name in ("name with spaces.jpg", "ünïcødé 照片.jpg", "-leading-dash.jpg", "a/b/c/nested.png"):
        write_image(folder / name, PHOTO)
    os.symlink("..", folder / "a" / "loop")  # a symlink loop must not hang the listing
    return folder


ERRORS = {
    "empty.jpg": "file is empty",
    "truncated.jpg": "not a readable image",
    "truncated.png": "not a readable image",
    "random.jpg": "not a readable image",
    "text.png": "not a readable image",
    "huge_header.png": "image too large: its header says 60000 x 60000 pixels",
}
SIZES = {  # expected (width, height) of each output
    "alpha.png": (80, 60),
    "palette.png": (80, 60),
    "gray16.tiff": (80, 60),
    "rgb16.tiff": (80, 60),
    "cmyk.jpg": (80, 60),
    "animated.png": (80, 60),  # the first frame; GIF is written as PNG
    "exif_rotated.jpg": (60, 80),  # upright, as a viewer shows it
    "two_pages.tif": (80, 60),  # the first page, with a warning
    "with_preview.tif": (80, 60),
    "one_pixel.png": (1, 1),
    "strip.png": (20000, 40),
    "name with spaces.jpg": (80, 60),
    "ünïcødé 照片.jpg": (80, 60),
    "-leading-dash.jpg": (80, 60),
    "a/b/c/nested.png": (80, 60),
}


def test_every_bad_file_is_an_error_row_and_every_good_file_is_written(bad_archive, tmp_path, tiny_model):
    output = tmp_path / "out"
    pipeline.run(["--input", str(bad_archive), "--output", str(output), "--model", str(tiny_model)])
    rows = {row["source_path"][len(str(bad_archive)) + 1 :]: row for row in read_metadata(str(output)).to_pylist()}
    assert len(rows) == len(ERRORS) + len(SIZES)
    for name, message in ERRORS.items():
        assert rows[name]["status"] == "error" and message in rows[name]["error"], rows[name]
    for name, (width, height) in SIZES.items():
        written = cv2.imread(str(output / name), cv2.IMREAD_UNCHANGED)
        assert written is not None, name
        assert (written.shape[1], written.shape[0]) == (width, height), name
    assert cv2.imread(str(output / "rgb16.tiff"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert "a TIFF of 2 pages: only the first was colorized" in rows["two_pages.tif"]["warnings"]
    assert rows["with_preview.tif"]["warnings"] is None  # a scanner's preview is no page of its own
    assert "an animation: only its first frame was colorized" in rows["animated.gif"]["warnings"]
    assert rows["palette.png"]["warnings"] is None and rows["gray16.tiff"]["warnings"] is None
    assert not list(output.rglob("*.tmp"))  # nothing half-written
    assert all(
        path.stat().st_size > 0 for path in bad_archive.rglob("*") if path.is_file() and path.name != "empty.jpg"
    )


def test_max_pixels_is_checked_from_the_header_before_decoding():
    from transforms.codec import ScanDecodeError, decode_scan

    with pytest.raises(ScanDecodeError, match="60000 x 60000"):
        decode_scan(png_claiming(60000, 60000))  # 3.6 gigapixels: decoding would need 10 GB
    photo = cv2.imencode(".png", PHOTO)[1].tobytes()
    with pytest.raises(ScanDecodeError, match="more than --max_pixels"):
        decode_scan(photo, max_pixels=80 * 60 - 1)
    assert decode_scan(photo, max_pixels=80 * 60).width == 80


def test_only_image_files_are_scanned_the_rest_is_skipped_and_counted(tmp_path, tiny_model, capsys):
    from pipeline.colorize import EXIT_SOME_FILES_FAILED, main

    scans = tmp_path / "scans"
    write_image(scans / "a.png", PHOTO)
    write_image(scans / "box" / "b.JPG", PHOTO)
    (scans / "broken.tif").write_bytes(b"an image extension, no image inside")
    others = [".DS_Store", "notes.txt", "Thumbs.db", "box/desktop.ini", "._a.png", ".thumbnails/a.png", "README"]
    for name in others:
        (scans / name).parent.mkdir(parents=True, exist_ok=True)
        (scans / name).write_bytes(b"\0\0\0\1Bud1" if name.endswith(".png") else b"not a scan")
    output = tmp_path / "out"

    assert main(["--input", str(scans), "--output", str(output), "--model", str(tiny_model)]) == EXIT_SOME_FILES_FAILED
    rows = {row["source_path"][len(str(scans)) + 1 :]: row for row in read_metadata(str(output)).to_pylist()}
    assert sorted(rows) == ["a.png", "box/b.JPG", "broken.tif"]
    assert rows["broken.tif"]["status"] == "error" and "not a readable image" in rows["broken.tif"]["error"]
    assert f"{len(others)} skipped" in capsys.readouterr().out

    main(["--input", str(scans), "--output", str(tmp_path / "all"), "--model", str(tiny_model), "--include_all_files"])
    everything = {row["source_path"][len(str(scans)) + 1 :] for row in read_metadata(str(tmp_path / "all")).to_pylist()}
    assert everything == {"a.png", "box/b.JPG", "broken.tif", *others}
