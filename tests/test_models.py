"""Every architecture builds, trains, saves, loads and predicts in range; training resumes after a crash."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from models import train
from models.architectures import ARCHITECTURES, build_patchgan_discriminator, build_unet
from models.degrade import degrade_lightness
from models.gan import Pix2Pix
from models.hint_attention import HintAttention
from models.hints import (
    CLICKS_PER_OBJECT,
    MAX_POINTS,
    OBJECT_COLOR_TOLERANCE,
    OBJECT_REACH,
    object_clicks,
    sample_hints,
)
from models.losses import LOSSES, no_worse_than_automatic, with_overshoot
from tests.conftest import color_photo, write_image
from transforms.lab import AB_SCALE
from transforms.metrics import delta_e2000

SIZE = 64  # divisible by every architecture's total down-sampling


def tiny_batch(n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, SIZE, SIZE, 1), np.float32), rng.uniform(-1, 1, (n, SIZE, SIZE, 2)).astype(np.float32)


@pytest.mark.parametrize("arch", sorted(set(ARCHITECTURES) - {"gray"}))
def test_architecture_trains_saves_and_loads(arch, tmp_path):
    keras.utils.set_random_seed(0)
    lightness, ab = tiny_batch()
    model = ARCHITECTURES[arch](SIZE)
    model.compile(optimizer="adam", loss=LOSSES["mae"])
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(lightness, ab)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    prediction = np.asarray(loaded.predict_on_batch(lightness))
    assert prediction.shape == (2, SIZE, SIZE, 2)
    assert np.all(np.abs(prediction) <= 1.0)
    np.testing.assert_allclose(prediction, model.predict_on_batch(lightness), atol=1e-5)


def test_gray_baseline_predicts_no_color():
    assert not np.any(ARCHITECTURES["gray"](SIZE).predict_on_batch(tiny_batch()[0]))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_losses_are_zero_or_best_for_a_perfect_prediction(loss):
    _, ab = tiny_batch()
    perfect = float(LOSSES[loss](ab, ab))
    worse = float(LOSSES[loss](ab, np.zeros_like(ab)))
    assert worse > perfect


def test_no_worse_adds_only_what_the_known_colors_make_worse_than_the_automatic_colors():
    truth = np.zeros((1, 1, 4, 2), np.float32)
    automatic = np.full((1, 1, 4, 2), 0.2, np.float32)
    hinted = np.array([0.0, 0.5, 0.2, -0.2], np.float32)[None, None, :, None].repeat(2, axis=-1)  # better, worse, same
    loss = no_worse_than_automatic(LOSSES["mae"], 2.0)
    value = float(loss(truth, np.concatenate([hinted, automatic], axis=-1)))
    assert value == pytest.approx((0.0 + 0.5 + 0.2 + 0.2) / 4 + 2.0 * 0.3 / 4)
    assert float(loss(truth, np.concatenate([automatic, automatic], axis=-1))) == pytest.approx(0.2)


def test_overshoot_adds_only_the_chroma_painted_beyond_the_truths():
    truth = np.array([[0.0, 0.0], [0.3, 0.4], [0.3, 0.4]], np.float32)[None, None]  # chroma 0, 0.5, 0.5
    predicted = np.array([[0.6, 0.8], [0.0, 0.1], [0.6, 0.8]], np.float32)[None, None]  # chroma 1, 0.1, 1
    plain = float(LOSSES["mae"](truth, predicted))
    assert float(with_overshoot(LOSSES["mae"], 2.0)(truth, predicted)) == pytest.approx(
        plain + 2.0 * (1.0 + 0.0 + 0.5) / 3, abs=1e-3
    )  # the gray truth's chroma is sqrt(EPSILON), not 0


def test_overshoot_makes_the_gray_of_a_surface_often_gray_the_best_guess():
    """Four in ten such walls are gray, six are one tint: L1 is best with the tint, the overshoot
    term (the quantile it asks for is under 0.4) with gray."""
    truth = np.zeros((1, 1, 10, 2), np.float32)
    truth[..., 4:, :] = [0.15, 0.2]
    guesses = np.linspace(0.0, 1.0, 11)

    def best(loss) -> float:
        values = [float(loss(truth, np.broadcast_to(np.float32([0.15, 0.2]) * g, truth.shape))) for g in guesses]
        return guesses[int(np.argmin(values))]

    assert best(LOSSES["mae"]) == 1.0
    assert best(with_overshoot(LOSSES["mae"], 1.0)) == 0.0


def test_psnr_and_ssim_losses_match_tensorflows_image_metrics():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    truth = rng.uniform(-1, 1, (3, 24, 20, 2)).astype(np.float32)
    prediction = np.clip(truth + rng.normal(0, 0.3, truth.shape), -1, 1).astype(np.float32)
    psnr = -float(tf.reduce_mean(tf.image.psnr(truth, prediction, max_val=2.0))) / 50
    ssim = 1 - float(tf.reduce_mean(tf.image.ssim(truth, prediction, max_val=2.0)))
    assert float(LOSSES["psnr"](truth, prediction)) == pytest.approx(psnr, abs=1e-4)
    assert float(LOSSES["ssim"](truth, prediction)) == pytest.approx(ssim, abs=1e-4)


def test_ciede2000_loss_is_the_pipelines_color_difference_and_trains_from_gray():
    rng = np.random.default_rng(2)
    truth = rng.uniform(-0.6, 0.6, (4, 16, 16, 2)).astype(np.float32)
    prediction = rng.uniform(-0.6, 0.6, truth.shape).astype(np.float32)
    prediction[0] = truth[0] + rng.normal(0, 0.02, truth[0].shape)  # near colors
    prediction[1, :8] = 0.0  # gray against color
    truth[2, 8:] = 0.0  # color against gray
    lightness = np.full((*truth.shape[:3], 1), 60.0)
    reference = delta_e2000(
        np.concatenate([lightness, truth * AB_SCALE], -1), np.concatenate([lightness, prediction * AB_SCALE], -1)
    )
    assert float(LOSSES["ciede2000"](truth, prediction)) * AB_SCALE == pytest.approx(reference.mean(), rel=1e-3)
    # Gray against a color: the loss is finite and a step down its gradient makes it smaller.
    tf = pytest.importorskip("tensorflow")
    gray = tf.Variable(np.full(truth.shape, 1e-3, np.float32))
    with tf.GradientTape() as tape:
        loss = LOSSES["ciede2000"](truth, gray)
    gradient = tape.gradient(loss, gray).numpy()
    assert np.isfinite(gradient).all()
    stepped = gray.numpy() - 0.05 * gradient / np.abs(gradient).max()
    assert float(LOSSES["ciede2000"](truth, stepped)) < float(loss)


@pytest.mark.parametrize("hints", [False, True], ids=["pix2pix generator", "unet with known colors"])
def test_pix2pix_train_step_updates_generator_and_discriminator(hints):
    keras.utils.set_random_seed(0)
    lightness, ab = tiny_batch()
    if hints:
        generator = build_unet(SIZE, pretrained=False, hints=True)
        known = np.zeros((*lightness.shape[:3], 3), np.float32)
        known[:, 10, 20] = (*ab[0, 10, 20], 1.0)  # one known color: a/b and the mask
        inputs = (lightness, known)
    else:
        generator, inputs = ARCHITECTURES["pix2pix"](SIZE), lightness
    discriminator = build_patchgan_discriminator(SIZE)
    gan = Pix2Pix(generator, discriminator)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    g_before = [w.copy() for w in generator.get_weights()]
    d_before = discriminator.get_weights()[0].copy()
    logs = gan.train_on_batch(inputs, ab, return_dict=True)
    assert {"generator_loss", "discriminator_loss", "adversarial"} <= set(logs)
    assert any(not np.array_equal(a, b) for a, b in zip(g_before, generator.get_weights(), strict=True))
    assert not np.array_equal(d_before, discriminator.get_weights()[0])


@pytest.fixture
def photos(tmp_path):
    for index in range(6):
        write_image(tmp_path / "photos" / f"p{index}.jpg", color_photo(50 + 7 * index, 80, seed=index))
    return tmp_path / "photos"


class CrashAtSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")


@pytest.mark.parametrize("arch, size", [("autoencoder", 32), ("pix2pix", 64)])
def test_training_resumes_after_a_crash_and_exports_a_loadable_model(arch, size, photos, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = ["--data", str(photos), "--arch", arch, "--size", str(size), "--crop", str(size), "--batch_size", "2",
            "--epochs", "2", "--average_from", "1", "--cosine_decay", "--out", str(out), "--name", "tiny"]  # fmt: skip
    with monkeypatch.context() as patch:
        original = train.training_callbacks
        patch.setattr(train, "training_callbacks", lambda *a: original(*a) + [CrashAtSecondEpoch()])
        with pytest.raises(KeyboardInterrupt):
            train.main(argv)
    assert (out / "backup").exists()
    assert train.main(argv) == 0
    log = list(csv.DictReader(open(out / "log.csv")))
    assert [row["epoch"] for row in log] == ["0", "1"]  # the second run did epoch 1 only
    assert all(float(row["val_loss"]) > 0 for row in log)  # validation really measured

    card = json.loads((out / "tiny.json").read_text())
    assert card["input_size"] == size and card["architecture"] == arch and len(card["sha256"]) == 64
    assert card["averaged_epochs"] == [1, 2] and card["val_loss_of_average"] > 0  # the mean went on after the kill
    assert card["epochs_run"] == 2 and card["best_val_loss"] == min(float(row["val_loss"]) for row in log)
    model = keras.saving.load_model(out / "tiny.keras", compile=False, safe_mode=True)
    assert model.input_shape == (None, size, size, 1) and model.output_shape == (None, size, size, 2)


def test_cosine_decay_runs_from_the_learning_rate_to_zero_over_the_epochs():
    argv = ["--data", "photos", "--out", "run", "--epochs", "3", "--batch_size", "4", "--learning_rate", "1e-3"]
    schedule = train.learning_rate(train.parse_args(argv + ["--cosine_decay"]), 40)  # 10 steps an epoch
    assert [float(schedule(step)) for step in (0, 15, 30)] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-9)
    assert train.learning_rate(train.parse_args(argv), 40) == 1e-3


class WeightsHolder:
    def __init__(self):
        self.weights = []

    def get_weights(self):
        return self.weights


def test_weight_average_is_the_mean_of_the_epochs_from_the_first_and_survives_a_restart(tmp_path):
    path = tmp_path / train.AVERAGE_FILE
    average, holder = train.WeightAverage(2, path), WeightsHolder()
    average.set_model(holder)
    for epoch, value in enumerate([10.0, 1.0, 2.0]):  # epochs 1, 2, 3: the first is left out
        holder.weights = [np.full((2, 2), value), np.full(3, -value)]
        average.on_epoch_end(epoch)
    resumed = train.WeightAverage(2, path)
    resumed.set_model(holder)
    resumed.on_train_begin()
    resumed.on_epoch_end(2)  # epoch 3 again, as after a kill between two saves: not counted twice
    holder.weights = [np.full((2, 2), 6.0), np.full(3, -6.0)]
    resumed.on_epoch_end(3)
    assert resumed.epochs == [2, 3, 4]
    np.testing.assert_allclose(resumed.mean[0], 3.0)
    np.testing.assert_allclose(resumed.mean[1], -3.0)


def test_deterministic_split_by_file_name():
    files = [f"/data/{i}.jpg" for i in range(200)]
    train_files, val_files = train.split_by_name(files, 10)
    assert sorted(train_files + val_files) == sorted(files) and 5 < len(val_files) < 40
    assert train.split_by_name(list(reversed(files)), 10)[1] == list(reversed(val_files))


def test_contact_sheet_puts_each_scan_beside_its_result(tmp_path):
    from tools.contact_sheet import contact_sheet, thumbnail

    pairs = []
    for index, shape in enumerate([(40, 60), (50, 30), (20, 20)]):
        before = write_image(tmp_path / f"b{index}.png", color_photo(*shape, seed=index)[:, :, 0])
        after = write_image(tmp_path / f"a{index}.png", color_photo(*shape, seed=index))
        pairs.append([thumbnail(str(before), 32), thumbnail(str(after), 32)])
    sheet = contact_sheet(pairs, columns=2)
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet.shape[0] == 2 * (32 + 16)  # two rows of thumbnails with their margins


def test_comparison_table_lists_every_model():
    from tools.evaluate import COLUMNS, markdown_table

    summaries = [
        dict(model=name, version="1", images=3, images_per_s=9.0, **dict.fromkeys(COLUMNS, 0.5))
        for name in ("gray", "unet")
    ]
    table = markdown_table(summaries).splitlines()
    assert len(table) == 4 and table[2].startswith("| gray | 1 | 3 | 0.5 |")


def test_training_batches_are_whole_damaged_crops_that_follow_the_seed():
    grids = np.random.default_rng(0).random((5, 64, 64, 3), np.float32)
    batches = train.CropBatches(grids, crop=32, batch_size=2, training=True, damage_share=1.0, hints=True, seed=4)
    assert len(batches) == 2  # the odd photo left out: every step has one shape
    (lightness, hints), ab = batches[1]
    assert lightness.shape == (2, 32, 32, 1) and hints.shape == (2, 32, 32, 3) and ab.shape == (2, 32, 32, 2)
    assert lightness.dtype == np.float32 and 0 <= lightness.min() and lightness.max() <= 1
    again = train.CropBatches(grids, crop=32, batch_size=2, training=True, damage_share=1.0, hints=True, seed=4)
    assert np.array_equal(again[1][1], ab)  # the same seed, epoch and index: the same batch, in any thread
    batches.on_epoch_end()
    assert not np.array_equal(batches[1][1], ab)  # a new epoch: other crops

    validation = train.CropBatches(grids, crop=32, batch_size=2, training=False, damage_share=0.0, hints=True)
    (lightness, hints), ab = validation[2]
    assert len(validation) == 3 and lightness.shape == (1, 64, 64, 1) and not hints.any()
    assert np.array_equal(ab[0], grids[4, :, :, 1:])  # whole, undamaged grids


def test_a_damage_share_leaves_the_other_training_crops_clean():
    grids = np.random.default_rng(0).random((16, 32, 32, 3), np.float32)

    def lightness(share: float) -> np.ndarray:
        return train.CropBatches(grids, crop=32, batch_size=16, training=True, damage_share=share, seed=1)[0][0]

    def damaged(share: float) -> int:  # crops that differ from the clean ones (the same crops: one seed)
        return sum(not np.array_equal(a, b) for a, b in zip(lightness(share), lightness(0.0), strict=True))

    assert 3 <= damaged(0.5) <= 13 < damaged(1.0)  # a few damages each draw nothing: 1/32 of crops stay clean


def test_a_damage_share_outside_0_to_1_is_refused_with_a_clear_message(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "photos", "--out", "runs/x", "--damage_share", "1.5"])
    assert "--damage_share: must be between 0 and 1, not 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--hints", "--scene_context"])
def test_a_unet_only_option_on_another_architecture_is_refused(flag, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "photos", "--out", "runs/x", "--arch", "unet_classes", flag])
    assert f"{flag} is for --arch unet" in capsys.readouterr().err


def test_a_resumed_run_draws_the_batches_of_its_own_epochs(monkeypatch):
    grids = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    batches = train.CropBatches(grids, crop=32, batch_size=2, training=True, damage_share=0.0)
    epochs_drawn = []
    draw = train.CropBatches.__getitem__

    def spied(self, index):
        epochs_drawn.append(self.epoch)
        return draw(self, index)

    monkeypatch.setattr(train.CropBatches, "__getitem__", spied)
    model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(2, 3, padding="same")])
    model.compile("adam", "mae")
    model.fit(batches, epochs=4, initial_epoch=2, callbacks=[train.EpochOfBatches(batches)], verbose=0)
    assert epochs_drawn[-4:] == [2, 2, 3, 3]  # as BackupAndRestore resumes: epochs 3 and 4, not 1 and 2 again


def test_degraded_lightness_stays_in_range_and_follows_its_seed():
    lightness = np.random.default_rng(0).random((48, 40, 1), np.float32)
    kept = lightness.copy()
    degraded = [degrade_lightness(lightness, np.random.default_rng(seed)) for seed in range(8)]
    for image in degraded:
        assert image.shape == (48, 40, 1) and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 1
    np.testing.assert_array_equal(lightness, kept)  # the input is left as it was
    np.testing.assert_array_equal(degrade_lightness(lightness, np.random.default_rng(5)), degraded[5])
    assert any(not np.allclose(image, lightness) for image in degraded)


def test_sampled_hints_hold_the_true_colors_under_their_mask_and_none_elsewhere():
    rng = np.random.default_rng(3)
    ab = np.random.default_rng(0).uniform(-0.5, 0.5, (48, 40, 2)).astype(np.float32)
    hinted = []
    for _ in range(40):
        hints = sample_hints(ab, rng)
        mask = hints[..., 2]
        assert hints.shape == (48, 40, 3) and hints.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
        assert np.all(hints[..., :2][mask == 0] == 0)
        assert mask.sum() <= MAX_POINTS * 25
        inside = hints[..., :2][mask == 1]
        assert np.all(np.abs(inside) <= 0.5 + 1e-6)  # means of true colors, within their range
        hinted.append(mask.any())
    assert 0.2 < np.mean(hinted) < 0.8  # about half the crops get none


def test_clicks_on_an_object_fall_on_its_own_color():
    """Training hints clicked as an archivist does: the points of one object share its color, near each other."""
    ab = np.zeros((96, 96, 2), np.float32)
    ab[:, 48:] = (0.4, -0.2)  # a blue-green object on the right half, gray on the left
    for seed in range(20):
        rows, columns = object_clicks(ab, np.random.default_rng(seed))
        assert len(rows) == len(columns) >= 1
        colors = ab[rows, columns]
        # every click lies on the color of some first click: gray or the object's, never a blend
        assert np.all((np.linalg.norm(colors, axis=-1) <= OBJECT_COLOR_TOLERANCE) | (colors[:, 0] > 0.3))


def test_a_hint_model_starts_as_the_model_it_grows_from_and_trains(photos, tmp_path):
    """--hints, --hint_attention (with its nearness) and --scene_context add
    zero-initialized paths: with no hints it predicts what its --init_from did."""
    base = tmp_path / "base.keras"
    keras.utils.set_random_seed(0)
    build_unet(64, pretrained=False).save(base)
    out = tmp_path / "run"
    argv = ["--data", str(photos), "--arch", "unet", "--hints", "--hint_attention", "--scene_context",
            "--hint_nearness", "3",
            "--rebalance_mix", "0.8",
            "--init_from", str(base),
            "--size", "64", "--crop", "64", "--batch_size", "2", "--epochs", "0", "--out", str(out),
            "--name", "h"]  # fmt: skip
    assert train.main(argv) == 0
    grown = keras.saving.load_model(out / "h.keras", compile=False, safe_mode=True)
    lightness = np.random.default_rng(0).random((2, 64, 64, 1), np.float32)
    hints = np.zeros((2, 64, 64, 3), np.float32)
    before = keras.saving.load_model(base, compile=False).predict_on_batch(lightness)
    np.testing.assert_allclose(grown.predict_on_batch([lightness, hints]), before, atol=1e-5)
    first_card = json.loads((out / "h.json").read_text())
    assert first_card["hints"] is True and first_card["scene_context"] is True and first_card["hint_attention"] is True
    assert first_card["hint_nearness"] == 3

    argv[argv.index("0")] = "1"
    assert train.main(argv + ["--version", "2", "--freeze_encoder"]) == 0
    card = json.loads((out / "h.json").read_text())
    assert card["loss"] == "color-rarity-weighted mae" and card["epochs_run"] == 1 and card["frozen_encoder"]
    trained = keras.saving.load_model(out / "h.keras", compile=False, safe_mode=True)
    encoder = "mobilenet_v2_encoder"
    for kept, started in zip(
        trained.get_layer(encoder).get_weights(), grown.get_layer(encoder).get_weights(), strict=True
    ):
        np.testing.assert_array_equal(kept, started)  # BatchNorm statistics included
    assert not np.array_equal(trained.get_layer("hints0_conv").get_weights()[0], 0)


def test_evaluation_rows_for_pipeline_variants(tmp_path, tiny_model):
    """tools.evaluate runs the pipeline per model and per variant: --vividness 0 is the gray picture's row."""
    from tools.evaluate import evaluate_models

    for index in range(2):
        write_image(tmp_path / "photos" / f"p{index}.png", color_photo(30, 40, seed=index))
    rows = evaluate_models(
        str(tmp_path / "photos"), ["gray", str(tiny_model)], tmp_path / "out", variants=[("--vividness", "0")]
    )
    names = [row["model"] for row in rows]
    assert names == ["gray", tiny_model.stem, f"{tiny_model.stem} --vividness 0"]
    gray, _, paled = rows
    assert paled["colorfulness"] == pytest.approx(gray["colorfulness"], abs=0.5)
    assert paled["delta_e2000"] == pytest.approx(gray["delta_e2000"], abs=0.05)
    assert gray["blank_chroma"] == 0 and rows[1]["blank_chroma"] > 0  # the untrained model tints blank scans


def test_evaluation_gives_a_row_per_number_of_known_colors(tmp_path, hint_echo_model):
    """tools.evaluate --hints 3 --hint_seeds 2: the model that echoes its hints is gray without them and nearer
    the truth with; the row is the mean of two runs, each with its own drawing of the points."""
    from pipeline.records import read_metadata
    from tools.evaluate import evaluate_models

    for index in range(2):
        write_image(tmp_path / "photos" / f"p{index}.png", color_photo(30, 40, seed=index))
    rows = evaluate_models(str(tmp_path / "photos"), [str(hint_echo_model)], tmp_path / "out", [3], hint_seeds=2)
    assert [row["model"] for row in rows] == ["echo", "echo + 3 hints (2 drawings)"]
    automatic, three = rows
    assert automatic["cast"] == pytest.approx(0.0, abs=0.5)  # gray: no cast on the neutral pixels
    assert automatic["better_than_gray"] == 0 and three["better_than_gray"] > 0  # gray was run for the comparison
    assert three["vs_no_hints"] < 1 and three["psnr_gain"] > 0 and three["hint_delta_e2000"] is not None
    assert 0 <= three["worse_with_hints"] <= 1 and three["skin_bleed"] is None  # no face in these photos
    drawings = [
        (tmp_path / "out" / "hints" / "random" / "3" / f"seed{seed}" / "photos" / "p0.json").read_text()
        for seed in (0, 1)
    ]
    assert drawings[0] != drawings[1]
    runs = [read_metadata(str(path)) for path in sorted((tmp_path / "out" / "photos").glob("*_3_hints_seed_[01]"))]
    per_run = [np.mean(run.column("delta_e2000").to_pylist()) for run in runs]
    assert per_run[0] != per_run[1] and three["delta_e2000"] == pytest.approx(np.mean(per_run))


def test_scene_context_lets_a_pixel_see_the_far_side_of_the_picture():
    """--scene_context adds the whole picture's mean features: zero at first, then a far change reaches every pixel."""
    keras.utils.set_random_seed(0)
    model = build_unet(None, pretrained=False, scene_context=True)
    wide = np.random.default_rng(0).random((1, 64, 1024, 1), np.float32)
    changed = wide.copy()
    changed[:, :, -256:] = 1.0 - changed[:, :, -256:]
    left = slice(0, 64)  # far outside the convolutions' reach of the changed quarter
    np.testing.assert_array_equal(model.predict_on_batch(wide)[:, :, left], model.predict_on_batch(changed)[:, :, left])
    kernel, bias = model.get_layer("scene_conv").get_weights()
    model.get_layer("scene_conv").set_weights([np.random.default_rng(1).normal(0, 0.1, kernel.shape), bias])
    # An untrained encoder's deepest features are tiny (about 1e-11 with Keras 3.15 and TensorFlow 2.21), so
    # the far change arrives small; what matters is that it arrives at all, where before it could not.
    assert not np.array_equal(model.predict_on_batch(wide)[:, :, left], model.predict_on_batch(changed)[:, :, left])


def test_hint_attention_carries_a_known_color_to_far_cells_that_match_it_and_not_to_others():
    """A cell takes the known color of a cell whose features match its own, however far; a cell unlike
    every known one takes none (the no-match slot); a known cell keeps its own color."""
    features = np.zeros((1, 8, 8, 4), np.float32)
    features[..., 0] = 1.0  # the "dress": most of the grid
    features[0, 6:, 6:] = (0.0, 1.0, 0.0, 0.0)  # the "face": unlike the dress
    hints = np.zeros((1, 8, 8, 3), np.float32)
    hints[0, 0, 0] = (0.25 * 0.5, -0.5 * 0.5, 0.5)  # half the cell known, mean color (0.25, -0.5)
    carried = keras.ops.convert_to_numpy(HintAttention()([features, hints]))[0]
    np.testing.assert_allclose(carried[0, 0], (0.25, -0.5, 1.0), atol=0.01)
    np.testing.assert_allclose(carried[5, 5], (0.25, -0.5, 1.0), atol=0.01)  # far, the same dress
    np.testing.assert_allclose(carried[7, 7], (0.0, 0.0, 0.0), atol=0.01)  # the face takes nothing
    nothing = keras.ops.convert_to_numpy(HintAttention()([features, np.zeros_like(hints)]))
    np.testing.assert_array_equal(nothing, 0.0)


def test_evaluation_can_click_points_on_objects_as_an_archivist_does():
    """--hint_layout objects: each object gets CLICKS_PER_OBJECT points near each other, all on its own color."""
    from tools.evaluate import point_positions

    photo = np.full((300, 400, 3), 128, np.uint8)
    photo[:, 200:] = (40, 40, 200)  # a red object (BGR) filling the right half
    for seed in range(5):
        rows, columns = point_positions(photo, 10, np.random.default_rng(seed), "objects")
        assert len(rows) == len(columns) == 10
        assert rows.max() < 300 and columns.max() < 400
        for first in range(0, 10, CLICKS_PER_OBJECT):  # the points of one object share its color
            same = slice(first, first + CLICKS_PER_OBJECT)
            assert len({tuple(photo[r, c]) for r, c in zip(rows[same], columns[same], strict=True)}) == 1
            spread = np.hypot(rows[same] - rows[first], columns[same] - columns[first])
            assert spread.max() <= OBJECT_REACH * 400 / 256 * 1.5
    rows, columns = point_positions(photo, 10, np.random.default_rng(0), "random")
    assert len(rows) == 10


def test_hint_nearness_makes_a_far_match_weaker_and_grows_on_a_trained_attention():
    """With nearness, of two cells alike the known one, the far one takes less of its color; a model without it
    hands its trained sharpness and no-match logit to the grown one (models.train.copy_matching_weights)."""
    features = np.ones((1, 8, 8, 4), np.float32)
    hints = np.zeros((1, 8, 8, 3), np.float32)
    hints[0, 0, 0] = (0.5, 0.0, 1.0)
    plain = keras.ops.convert_to_numpy(HintAttention()([features, hints]))[0, ..., 2]
    near = keras.ops.convert_to_numpy(HintAttention(nearness=10.0)([features, hints]))[0, ..., 2]
    assert plain[0, 1] == pytest.approx(plain[7, 7])
    assert near[0, 1] > 0.9 > 0.5 > near[7, 7]

    def attention_model(**options) -> keras.Model:
        inputs = [keras.Input((8, 8, 4)), keras.Input((8, 8, 3))]
        return keras.Model(inputs, HintAttention(name="hint_attention", **options)(inputs))

    trained, grown = attention_model(), attention_model(nearness=2.0)
    trained.get_layer("hint_attention").sharpness.assign(7.0)
    train.copy_matching_weights(trained, grown)
    weights = {weight.name: float(weight.numpy()) for weight in grown.get_layer("hint_attention").weights}
    assert weights == {"sharpness": 7.0, "no_match": pytest.approx(5.0), "nearness": 2.0}


@pytest.mark.parametrize(
    ("extra", "message"),
    [([], "give --hints"), (["--hints", "--adversarial"], "not with --certainty, --adversarial or --rebalance_mix")],
)
def test_no_worse_is_refused_where_it_would_be_ignored(extra, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", "--no_worse", "1", *extra])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--arch", "unet_classes"], ["--rebalance_mix", "0.9"], ["--certainty"]])
def test_overshoot_is_refused_where_there_is_no_plain_reconstruction_loss(extra, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", "--init_from", "m", "--overshoot", "1", *extra])
    assert "--overshoot adds to an a/b reconstruction loss" in capsys.readouterr().err


def test_logged_validation_losses_count_each_epoch_once_and_skip_epochs_without_one(tmp_path):
    """A resumed run redoes its killed epoch; a log Keras wrote without validation holds NA."""
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n0,0.9,NA\n0,0.5,0.4\n1,0.4,0.35\n1,0.3,0.3\n2,0.2,\n")
    assert train.logged_val_losses(log) == [0.4, 0.3]
    assert train.logged_val_losses(tmp_path / "none.csv") == []


def test_hint_attention_is_refused_without_hints(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", "--hint_attention"])
    assert "--hint_attention carries known colors: give --hints" in capsys.readouterr().err


def test_training_the_hint_paths_only_keeps_the_automatic_model_exactly(photos, tmp_path):
    """--hints_only: the known-colors paths learn (their kernels and the attention's matching), nothing else
    does, not even their biases, so that without hints the trained model predicts exactly what it grew from;
    --no_worse trains beside the automatic colors and exports the model alone (--overshoot adds to its loss)."""
    base = tmp_path / "base.keras"
    keras.utils.set_random_seed(0)
    build_unet(64, pretrained=False, hints=True).save(base)
    out = tmp_path / "run"
    argv = ["--data", str(photos), "--arch", "unet", "--hints", "--hint_attention", "--hints_only",
            "--hint_share", "1", "--init_from", str(base), "--size", "64", "--crop", "64", "--batch_size", "2",
            "--epochs", "1", "--no_worse", "1", "--overshoot", "0.5", "--out", str(out), "--name", "h"]  # fmt: skip
    assert train.main(argv) == 0
    trained = keras.saving.load_model(out / "h.keras", compile=False, safe_mode=True)
    started = keras.saving.load_model(base, compile=False, safe_mode=True)
    lightness = np.random.default_rng(0).random((2, 64, 64, 1), np.float32)
    hints = np.zeros((2, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(
        trained.predict_on_batch([lightness, hints]), started.predict_on_batch([lightness, hints])
    )
    for name in ("decode1a_conv", "ab", "hints0_conv"):
        for kept, before in zip(
            trained.get_layer(name).get_weights()[1 if name == "hints0_conv" else 0 :],
            started.get_layer(name).get_weights()[1 if name == "hints0_conv" else 0 :],
            strict=True,
        ):
            np.testing.assert_array_equal(kept, before)  # hints0's bias, every weight of the others
    assert not np.array_equal(
        trained.get_layer("hints0_conv").get_weights()[0], started.get_layer("hints0_conv").get_weights()[0]
    )
    assert not np.array_equal(trained.get_layer("carried2_conv").get_weights()[0], 0)
    card = json.loads((out / "h.json").read_text())
    assert card["hints_only"] is True and card["no_worse"] == 1 and card["overshoot"] == 0.5
    assert card["loss"].startswith("mae + 0.5 * chroma beyond the truth's + 1.0 * how much worse")
