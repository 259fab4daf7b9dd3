"""A model that keeps only the colors it has earned: the split by source, the trusted colors, the cross-fitted head."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from models import train, train_trust
from models.registry import file_sha256, load_keras_file
from models.trust import TrustedColors
from tests.conftest import photos_and_tiny_hint_unet


def test_frames_of_a_clip_and_crops_of_a_picture_stay_in_one_fold():
    names = [f"clip_a_f{n:05d}.jpg" for n in range(6)] + [f"wall_{n:02d}.jpg" for n in range(3)]
    names += ["franck-02888.jpg", "franck-03909.jpg", "solar5.jpg", "moon.jpg"]
    folds = train_trust.split_by_source([f"/photos/{name}" for name in names], 2)
    assert sorted(sum(folds, [])) == sorted(f"/photos/{name}" for name in names)
    for source in ("clip_a", "wall", "franck"):
        assert sum(any(train_trust.source_of(p) == source for p in fold) for fold in folds) == 1
    assert train_trust.source_of("/photos/solar5.jpg") == "solar5"  # a number that is part of the name stays
    assert sorted(len(fold) for fold in folds) == [6, 7]


def test_trusted_colors_keep_the_share_and_hue_and_leave_scans_with_known_colors_alone():
    ab = np.full((2, 4, 4, 2), [0.3, -0.4], np.float32)
    share = np.full((2, 4, 4, 1), 0.25, np.float32)
    hints = np.zeros((2, 4, 4, 3), np.float32)
    hints[1, 2, 3] = [0.1, 0.1, 1.0]  # the second scan has one known color
    out = keras.ops.convert_to_numpy(TrustedColors()([ab, share, hints]))
    np.testing.assert_allclose(out[0], ab[0] * 0.25, atol=1e-7)
    np.testing.assert_allclose(out[1], ab[1], atol=1e-7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(TrustedColors()([ab, share])), ab * 0.25, atol=1e-7)


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory):
    """A tiny hint-taking unet and the trust run on it: (base, run folder, argv)."""
    folder = tmp_path_factory.mktemp("trust")
    photos, base = photos_and_tiny_hint_unet(folder, [f"clip{index % 3}_f{index:05d}.jpg" for index in range(6)])
    base_card = {"name": "base", "input_size": 64, "hints": True, "command": "python -m models.train ...",
                 "validation_metrics": {"val/scenes": {"delta_e2000": 9.0}}}  # fmt: skip
    base.with_suffix(".json").write_text(json.dumps(base_card))
    argv = ["--init_from", str(base), "--data", str(photos), "--unseen", str(photos / "clip0_*"),
            "--val", str(photos), "--fold_epochs", "1", "--epochs", "2", "--crop", "64",
            "--batch_size", "2", "--out", str(folder / "run"), "--version", "2"]  # fmt: skip
    assert train_trust.main(argv) == 0
    return base, folder / "run", argv


def test_fold_models_keep_the_encoder_and_learn_a_new_decoder(trust_run):
    base_path, run, _ = trust_run
    base = load_keras_file(str(base_path))
    fold = load_keras_file(str(run / "fold0" / "fold0.keras"))
    for kept, started in zip(
        fold.get_layer("mobilenet_v2_encoder").get_weights(),
        base.get_layer("mobilenet_v2_encoder").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(kept, started)
    assert not np.array_equal(
        fold.get_layer("decode_full_conv").get_weights()[0], base.get_layer("decode_full_conv").get_weights()[0]
    )
    fold_card = json.loads((run / "fold0" / "fold0.json").read_text())
    assert fold_card["fresh_decoder"] and fold_card["frozen_encoder"] and fold_card["training_images"] in (2, 4)


def test_the_trusted_model_fades_its_own_colors_keeps_their_hue_and_keeps_known_colors(trust_run):
    base_path, run, _ = trust_run
    base = load_keras_file(str(base_path))
    trusted = load_keras_file(str(run / "unet.keras"))  # safe mode, our own layers known
    rng = np.random.default_rng(1)
    lightness = rng.random((2, 64, 64, 1), np.float32)
    no_hints = np.zeros((2, 64, 64, 3), np.float32)
    before = base.predict_on_batch([lightness, no_hints])
    after = trusted.predict_on_batch([lightness, no_hints])
    share = np.hypot(*np.moveaxis(after, -1, 0)) / np.maximum(np.hypot(*np.moveaxis(before, -1, 0)), 1e-6)
    assert share.min() >= 0.0 and share.max() <= 1.0 + 1e-5 and share.std() > 0  # a share per place, learned
    np.testing.assert_allclose(after[..., 0] * before[..., 1], after[..., 1] * before[..., 0], atol=1e-6)
    hints = no_hints.copy()
    hints[:, 10, 10] = [0.2, -0.1, 1.0]
    np.testing.assert_allclose(
        trusted.predict_on_batch([lightness, hints]), base.predict_on_batch([lightness, hints]), atol=1e-6
    )

    card = json.loads((run / "unet.json").read_text())
    assert card["trust"] is True and card["hints"] is True and card["version"] == "2"
    assert "validation_metrics" not in card and card["base_command"] == "python -m models.train ..."
    assert card["sha256"] == file_sha256(str(run / "unet.keras")) and card["command"].startswith(
        "python -m models.train_trust"
    )
    assert "16 colorings" in card["trust_from"]  # 6 photos and the 2 unseen again, each mirrored too
    assert len((run / "log.csv").read_text().strip().splitlines()) == 1 + 2  # a row per epoch of the head


def test_a_resumed_run_keeps_its_fold_models(trust_run):
    _, run, argv = trust_run
    fold_model = run / "fold1" / "fold1.keras"
    stamp = fold_model.stat().st_mtime_ns
    assert train_trust.main(argv) == 0
    assert fold_model.stat().st_mtime_ns == stamp


def test_fresh_decoder_needs_a_model_to_take_the_encoder_from(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", "--fresh_decoder"])
    assert "--fresh_decoder takes the encoder of --init_from" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--unseen", "nowhere/*"], "--unseen nowhere/*: no photos there"), (["--folds", "5"], "fewer sources")],
)
def test_photos_that_are_not_there_are_a_clear_error_before_any_training(trust_run, extra, message):
    base, run, argv = trust_run
    photos = argv[argv.index("--data") + 1]
    with pytest.raises(SystemExit, match=message.replace("*", r"\*")):
        train_trust.main(["--init_from", str(base), "--data", photos, "--val", photos, "--out", str(run.parent / "x"),
                          *extra])  # fmt: skip
    assert not (run.parent / "x").exists()


def test_a_fold_folder_holding_files_it_did_not_write_is_left_alone(trust_run, tmp_path):
    base, _, argv = trust_run
    photos = argv[argv.index("--data") + 1]
    mine = tmp_path / "out" / "fold0" / "photos" / "keep.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"not ours")
    with pytest.raises(SystemExit, match="which this tool did not write"):
        train_trust.main(["--init_from", str(base), "--data", photos, "--val", photos, "--out", str(tmp_path / "out")])
    assert mine.read_bytes() == b"not ours"
