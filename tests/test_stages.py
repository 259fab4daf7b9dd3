"""One PTransform at a time, in Beam's style: TestPipeline and assert_that, no model and no command line."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from models.registry import ModelSpec
from pipeline.records import STATUS_ERROR
from pipeline.scans import input_base, input_pattern
from pipeline.stages import ReadScans, ScanReading
from tests.conftest import color_photo, write_image

SPEC = ModelSpec("fake", "unused.keras", "1", 16)
OPTIONS = {"output_format": None}


def test_read_scans_decodes_images_skips_other_files_and_turns_broken_ones_into_error_rows(tmp_path):
    scans = tmp_path / "scans"
    write_image(scans / "box1" / "001.png", color_photo(10, 14))
    write_image(scans / "box2" / "001.jpg", color_photo(12, 8, seed=1)[:, :, 0])
    (scans / "box2" / "broken.png").write_bytes(b"not a png")
    (scans / "notes.txt").write_text("not a scan")
    output = str(tmp_path / "out")
    source = str(scans)

    # Beam parses every registered options class, ours too: --input and --output are required there.
    with test_pipeline.TestPipeline(additional_pipeline_args=["--input", source, "--output", output]) as pipeline:
        reading = ScanReading(input_base(source), output, SPEC, False, 10**8, OPTIONS, overwrite=False)
        decoded, errors, done_before = pipeline | ReadScans(input_pattern(source), reading)
        assert_that(
            decoded
            | "Sizes" >> beam.Map(lambda scan: (scan.relative_path, scan.width, scan.height, scan.input_channels)),
            equal_to([("box1/001.png", 14, 10, 3), ("box2/001.jpg", 8, 12, 1)]),
            label="Scans",
        )
        assert_that(
            decoded | "Inputs" >> beam.Map(lambda scan: scan.model_input.shape),
            equal_to([(16, 16, 1), (16, 16, 1)]),
            label="ModelInputs",
        )
        assert_that(
            errors | "Errors" >> beam.Map(lambda row: (row["source_path"].rsplit("/", 2)[-2:], row["status"])),
            equal_to([(["box2", "broken.png"], STATUS_ERROR)]),
            label="ErrorRows",
        )
        assert_that(done_before, equal_to([]), label="NothingDoneBefore")
