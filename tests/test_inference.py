"""The RunInference model handler on its own, without a pipeline (as Beam tests its sklearn handler)."""

from __future__ import annotations

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult

from models.registry import ModelSpec
from pipeline.inference import ColorizerModelHandler, agreed_colors
from pipeline.scans import prepare_scan
from tests.conftest import color_photo
from transforms.codec import encode_pixels
from transforms.lab import AB_SCALE

SIZE = 16


class FakeModel:
    """Stands in for a Keras model: records the shapes it is called with, answers a/b from the L it is given."""

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return np.concatenate([batch, -batch], axis=-1) * 0.5


class LeftLeaningModel(FakeModel):
    """A model that is not mirror-symmetric: a/b = L + x / width, growing to the right of every scan."""

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        ramp = np.linspace(0.0, 1.0, batch.shape[2], dtype=np.float32)[None, None, :, None]
        return np.concatenate([batch + ramp, batch + ramp], axis=-1)


class FailingModel:
    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of memory")


def scans(count: int) -> list:
    return [
        prepare_scan(
            f"s{index}.png",
            f"s{index}.png",
            f"out/s{index}.png",
            encode_pixels(color_photo(12 + index, 20, seed=index), "png"),
            "0" * 64,
            SIZE,
            keep_truth=False,
        )
        for index in range(count)
    ]


def handler(batch_size: int = 4) -> ColorizerModelHandler:
    return ColorizerModelHandler(ModelSpec("fake", "unused.keras", "7", SIZE), max_batch_size=batch_size)


def test_one_predict_call_per_batch_and_one_result_per_scan_in_order():
    model, batch = FakeModel(), scans(3)
    results = list(handler().run_inference(batch, model))
    assert len(model.shapes) == 1
    assert [result.example.source_path for result in results] == ["s0.png", "s1.png", "s2.png"]
    for scan, result in zip(batch, results, strict=True):
        assert isinstance(result, PredictionResult) and result.model_id == "7"
        assert result.inference.shape == (SIZE, SIZE, 2)
        np.testing.assert_allclose(result.inference[:, :, 0], scan.model_input[:, :, 0] * 0.5)


def test_a_partial_batch_is_padded_so_the_model_sees_one_shape_and_the_padding_gives_no_results():
    model, model_handler = FakeModel(), handler(batch_size=4)
    for count in (4, 1, 3, 4):
        results = list(model_handler.run_inference(scans(count), model))
        assert [result.example.source_path for result in results] == [f"s{index}.png" for index in range(count)]
    assert model.shapes == [(4, SIZE, SIZE, 1)] * 4


def test_mirror_averaging_is_one_call_on_the_scans_and_their_mirror_images():
    """A model whose colors follow L alone colors a scan and its mirror image alike: the result is its own."""
    batch, model = scans(3), FakeModel()
    spec = ModelSpec("fake", "unused.keras", "7", SIZE)
    results = list(ColorizerModelHandler(spec, max_batch_size=4, mirror_average=True).run_inference(batch, model))
    assert model.shapes == [(8, SIZE, SIZE, 1)]  # 4 (3 scans, padded) and their 4 mirror images, in one call
    for scan, result in zip(batch, results, strict=True):
        np.testing.assert_allclose(result.inference[:, :, 0], scan.model_input[:, :, 0] * 0.5, atol=1e-6)


def test_mirror_averaging_fades_the_colors_where_a_scan_and_its_mirror_image_disagree():
    """The ramp the model adds runs the other way on the mirror image: at the middle column both agree and
    L's own part stays, toward the edges they disagree more and more, and the color fades to gray."""
    batch, model = scans(1), LeftLeaningModel()
    spec = ModelSpec("fake", "unused.keras", "7", SIZE)
    (result,) = ColorizerModelHandler(spec, max_batch_size=1, mirror_average=True).run_inference(batch, model)
    kept = result.inference[:, :, 0] / (batch[0].model_input[:, :, 0] + 0.5)  # the share of the plain mean
    middle = SIZE // 2
    assert kept[:, [middle - 1, middle]].min() > 0.75  # the two middle columns: 1/15 of the ramp apart
    assert np.all(np.diff(kept[:, middle:], axis=1) < 0) and np.all(np.diff(kept[:, :middle], axis=1) > 0)
    assert kept[:, [0, -1]].max() < 0.01
    (single,) = handler(batch_size=1).run_inference(batch, LeftLeaningModel())
    assert np.ptp(single.inference[:, :, 0] - batch[0].model_input[:, :, 0]) == pytest.approx(1.0)


def test_two_colorings_agreed_keep_a_sure_color_and_fade_a_guess():
    orange, green = np.array([20.0, 30.0]) / AB_SCALE, np.array([-20.0, 30.0]) / AB_SCALE
    near_orange = np.array([22.0, 29.0]) / AB_SCALE
    np.testing.assert_allclose(agreed_colors(orange, orange), orange)
    assert np.linalg.norm(agreed_colors(orange, near_orange)) > 0.98 * np.linalg.norm((orange + near_orange) / 2)
    # their plain mean would be a yellow of b* 30; they are 40 apart, so that fades to about a tenth
    assert np.linalg.norm(agreed_colors(orange, green)) * AB_SCALE < 3.0


def test_one_model_copy_per_machine_by_default_shared_by_its_worker_processes():
    spec = ModelSpec("fake", "unused.keras", "7", SIZE)
    shared = ColorizerModelHandler(spec, max_batch_size=4)
    assert shared.share_model_across_processes() and shared.model_copies() == 1
    two = ColorizerModelHandler(spec, max_batch_size=4, model_copies=2)
    assert two.share_model_across_processes() and two.model_copies() == 2
    assert not ColorizerModelHandler(spec, max_batch_size=4, model_copies=0).share_model_across_processes()


def test_each_scan_gets_its_share_of_the_time_in_a_new_element():
    batch = scans(2)
    before = [scan.seconds for scan in batch]
    results = list(handler().run_inference(batch, FakeModel()))
    assert [scan.seconds for scan in batch] == before  # Beam's elements are not changed once emitted
    for scan, result in zip(batch, results, strict=True):
        assert result.example is not scan
        assert result.example.seconds >= scan.seconds
        assert result.example.source_path == scan.source_path and result.example.pixels is scan.pixels


def test_batching_bounds_and_size_estimate():
    model_handler, batch = handler(batch_size=5), scans(2)
    assert model_handler.batch_elements_kwargs() == {"min_batch_size": 5, "max_batch_size": 5}
    assert model_handler.get_num_bytes(batch) == sum(scan.model_input.nbytes for scan in batch)
    assert model_handler.get_metrics_namespace() == "RevivaColor"


def test_a_failing_model_raises_for_the_whole_batch():
    with pytest.raises(RuntimeError, match="out of memory"):
        list(handler().run_inference(scans(2), FailingModel()))
