"""Known colors carried to where the network's features say they belong.

A known color is local evidence with a global meaning: a point on a dress colors the whole
dress and stops at the face beside it, however far the dress reaches. Convolutions move a
hint a few cells per layer; here every cell of the stride-8 grid looks at every cell that
holds a known color at once and takes the colors of those whose features match its own
(dot-product attention, Vaswani et al. 2017, as non-local blocks do in images: Wang et al.,
CVPR 2018), or none: a learned "no match" slot keeps a face from borrowing a dress's color.
Features alone can match a sunlit leaf to a cheek across the picture; with `nearness`, a
learned penalty on the squared distance between two cells makes a far match need more
likeness than a near one (a dress's color still reaches its whole dress).
The result, in the layout of the hints themselves (a/b times the share matched, and that
share), joins the finer decoder levels through convolutions that start at zero, so a model
grown this layer starts out as the model without it.
"""

from __future__ import annotations

import keras
from keras import layers, ops

MATCH_WIDTH = 32  # features per cell that decide which known colors a cell takes
SHARPNESS_START = 10.0  # the cosine similarity is scaled by this (learned) before the softmax
NO_MATCH_LOGIT_START = 5.0  # a cell takes a known color only where its similarity beats this (learned)
MASKED = -1e4  # the logit of a cell without a known color: no weight after the softmax


@keras.saving.register_keras_serializable(package="revivacolor")
class HintAttention(layers.Layer):
    """[features (B, h, w, d), hints averaged over each cell (B, h, w, 3)] -> (B, h, w, 3).

    Each cell's weights over the known cells and the no-match slot come from the cosine
    similarity of their features times a learned sharpness, less (with `nearness`) a learned
    multiple of their squared distance; its output is the weighted sum of the known cells'
    colors and the total weight on them.
    """

    def __init__(self, nearness: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.nearness_start = nearness  # the logits lose this (learned) times the squared distance, grid side = 1

    def build(self, input_shape):
        self.sharpness = self.add_weight(name="sharpness", shape=(), initializer="zeros")
        self.sharpness.assign(SHARPNESS_START)
        self.no_match = self.add_weight(name="no_match", shape=(), initializer="zeros")
        self.no_match.assign(NO_MATCH_LOGIT_START)
        if self.nearness_start is not None:
            self.nearness = self.add_weight(name="nearness", shape=(), initializer="zeros")
            self.nearness.assign(self.nearness_start)

    def call(self, inputs):
        features, hints = inputs
        batch, height, width = ops.shape(features)[0], ops.shape(features)[1], ops.shape(features)[2]
        cells = height * width
        features = ops.reshape(ops.cast(features, "float32"), (batch, cells, -1))
        features = features / ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True) + 1e-6)
        hints = ops.reshape(ops.cast(hints, "float32"), (batch, cells, 3))
        known = hints[..., 2:] > 0  # (B, N, 1)
        colors = hints[..., :2] / ops.maximum(hints[..., 2:], 1e-6)  # the mean known color of each cell
        logits = self.sharpness * ops.matmul(features, ops.transpose(features, (0, 2, 1)))
        if self.nearness_start is not None:
            logits = logits - ops.maximum(self.nearness, 0.0) * squared_distances(height, width)
        logits = ops.where(ops.transpose(known, (0, 2, 1)), logits, MASKED)  # only cells with a known color
        no_match = ops.ones_like(logits[..., :1]) * self.no_match
        weights = ops.softmax(ops.concatenate([no_match, logits], axis=-1), axis=-1)[..., 1:]
        carried = ops.matmul(weights, colors)  # (B, N, 2): a/b times the share matched
        matched = ops.sum(weights, axis=-1, keepdims=True)
        return ops.reshape(ops.concatenate([carried, matched], axis=-1), (batch, height, width, 3))

    def compute_output_shape(self, input_shape):
        return (*input_shape[1][:3], 3)

    def get_config(self):
        return {**super().get_config(), "nearness": self.nearness_start}


def squared_distances(height, width):
    """(N, N): the squared distance between every two cells of a height x width grid, its longer side = 1."""
    rows, columns = ops.meshgrid(ops.arange(height), ops.arange(width), indexing="ij")
    cells = ops.stack([ops.reshape(rows, (-1,)), ops.reshape(columns, (-1,))], axis=-1)
    cells = ops.cast(cells, "float32") / ops.cast(ops.maximum(height, width), "float32")
    return ops.sum(ops.square(cells[:, None, :] - cells[None, :, :]), axis=-1)


CUSTOM_OBJECTS = {"revivacolor>HintAttention": HintAttention}


def carried_hints(features, hints, stride: int, nearness: float | None = None, name: str = "hint_attention"):
    """The known colors carried over the stride-`stride` grid of `features` (the hints' layout)."""
    matching = layers.Conv2D(MATCH_WIDTH, 1, name=f"{name}_features")(features)
    pooled = layers.AveragePooling2D(stride, name=f"{name}_pool")(hints)
    return HintAttention(nearness=nearness, name=name)([matching, pooled])
