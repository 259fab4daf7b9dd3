"""The throughput benchmark runs end to end on a few tiny scans (it measures, it asserts no speed)."""

from __future__ import annotations

import json

from benchmarks import throughput
from tests.conftest import color_photo, write_image


def test_benchmark_writes_positive_numbers_for_every_mode(tmp_path, tiny_model):
    data = tmp_path / "photos"
    for index in range(2):
        write_image(data / f"p{index}.jpg", color_photo(24, 40, seed=index))
    report = tmp_path / "throughput.json"

    argv = ["--n", "4", "--large", "0", "--data", str(data), "--model", str(tiny_model), "--json", str(report)]
    assert throughput.main(argv) == 0

    summary = json.loads(report.read_text())
    assert summary["n"] == 4
    for key in ("model_only_ips", *(f"{mode}_ips" for mode in throughput.PIPELINE_MODES), "naive_ips", "peak_rss_mb"):
        assert summary[key] > 0, key
    assert summary["pipeline_best_over_model_only"] > 0 and summary["pipeline_best_over_naive"] > 0
    assert set(summary["peak_rss_mb_by_mode"]) == set(throughput.MODES)
    assert all("steady_ips" in summary["modes"][mode] for mode in (*throughput.PIPELINE_MODES, "naive"))
    assert summary["cpu_count"] >= 1 and isinstance(summary["gpu_visible"], bool)


def test_prepared_scans_are_gray_and_cycled_to_n(tmp_path):
    import cv2

    data = tmp_path / "photos"
    write_image(data / "p.jpg", color_photo(30, 20))
    scans = throughput.prepare_scans(data, 3, 1, tmp_path / "scans")
    assert len(scans) == 3
    large = cv2.imread(str(scans[0]), cv2.IMREAD_UNCHANGED)
    assert large.shape == (3000, 4000)
    assert cv2.imread(str(scans[1]), cv2.IMREAD_UNCHANGED).shape == (30, 20)


def test_step_costs_cover_every_step_of_a_scan(tmp_path, tiny_model):
    from benchmarks import steps

    photo = tmp_path / "p.jpg"
    write_image(photo, color_photo(24, 40))
    model, spec, _ = throughput.load_keras_model(str(tiny_model))
    costs = steps.step_costs(photo, (40, 30), model, spec.input_size)
    assert set(costs) >= {"decode", "luminance", "restore_ab", "recombine_luminance", "encode_jpg"}
    assert all(ms >= 0 for ms in costs.values())
    assert set(steps.model_costs(model, spec.input_size)) == {"batch 1", "batch 8"}


def test_benchmark_steps_feed_a_model_that_takes_hints(tmp_path, hint_echo_model):
    """The default model takes known colors: the benchmarks give it its second input (zeros), and time spreading."""
    from benchmarks import steps

    photo = tmp_path / "p.jpg"
    write_image(photo, color_photo(24, 40))
    model, spec, _ = throughput.load_keras_model(str(hint_echo_model))
    assert spec.takes_hints
    costs = steps.step_costs(photo, (40, 30), model, spec.input_size)
    assert costs["spread_known_colors"] >= 0
    assert set(steps.model_costs(model, spec.input_size)) == {"batch 1", "batch 8"}
    assert throughput.measure_model_only([photo], str(hint_echo_model), 2)["seconds"] > 0
