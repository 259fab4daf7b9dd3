"""Keras builders for the colorization networks.

Every generator maps L / 100, shape (size, size, 1), to a/b / 128, shape
(size, size, 2), through a tanh, so any of them plugs into the same pipeline.
`size=None` builds a network that takes any size its down-sampling divides (used
to train on crops and validate on whole images). Besides built-in Keras layers only our own
registered ones are used (`ConfidentChroma`, `HintAttention`, `TrustedColors`, `SureColors`): the
saved files load with safe_mode on through `models.registry.load_keras_file`.
"""

from __future__ import annotations

import keras
from keras import layers

from models.certainty import ConfidentChroma, certainty_head
from models.color_classes import in_gamut_bins
from models.efficientnet import (
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,
    efficientnet_lite2_encoder,
    efficientnet_lite2_encoder_untrained,
)
from models.hint_attention import carried_hints
from models.mobilenet import IMAGENET_MEAN, IMAGENET_STD, mobilenet_v2_encoder, mobilenet_v2_encoder_untrained
from models.sure_colors import SURE_PREFIX, SureColors
from models.trust import ENCODER_LEVELS, trust_head, trusted_colors
from transforms.hints import HINT_CHANNELS
from transforms.lab import AB_SCALE


def conv_bn_act(x, filters: int, name: str, activation: str = "relu", kernel_size: int = 3):
    """Convolution, BatchNorm, then ReLU or LeakyReLU(0.2)."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return (
        layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
        if activation == "leaky_relu"
        else layers.ReLU(name=f"{name}_relu")(x)
    )


def ab_output(x, name: str = "ab"):
    """The shared head: two channels, tanh, kept in float32 under mixed precision."""
    return layers.Conv2D(2, 1, activation="tanh", dtype="float32", name=name)(x)


# The research's autoencoder: (filters, max-pool after the block) down to a 16x16x128 latent at 256.
AUTOENCODER_ENCODER = ((8, False), (8, True), (16, False), (16, True), (32, True), (64, True), (128, False))


def build_autoencoder(size: int | None = 256, decoder_activation: str = "relu") -> keras.Model:
    """The original research's convolutional autoencoder, no skip connections.

    Encoder: conv-BN-ReLU blocks of 8, 8, 16, 16, 32, 64, 128 filters with four
    max-poolings (256 -> 16); the decoder mirrors it with upsampling.
    """
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    x = inputs
    for index, (filters, pool) in enumerate(AUTOENCODER_ENCODER):
        x = conv_bn_act(x, filters, f"encode{index}")
        if pool:
            x = layers.MaxPooling2D(name=f"pool{index}")(x)
    for index, (filters, pool) in reversed(list(enumerate(AUTOENCODER_ENCODER[:-1]))):
        if pool:
            x = layers.UpSampling2D(name=f"up{index}")(x)
        x = conv_bn_act(x, filters, f"decode{index}", activation=decoder_activation)
    return keras.Model(inputs, ab_output(x), name="autoencoder")


def downsample(x, filters: int, name: str, batchnorm: bool = True):
    """pix2pix encoder step: 4x4 stride-2 convolution, BatchNorm, LeakyReLU(0.2)."""
    initializer = keras.initializers.RandomNormal(0.0, 0.02)
    x = layers.Conv2D(
        filters, 4, strides=2, padding="same", kernel_initializer=initializer, use_bias=False, name=f"{name}_conv"
    )(x)
    if batchnorm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def upsample(x, filters: int, name: str, dropout: bool = False):
    """pix2pix decoder step: 4x4 stride-2 transposed convolution, BatchNorm, optional dropout, ReLU."""
    initializer = keras.initializers.RandomNormal(0.0, 0.02)
    x = layers.Conv2DTranspose(
        filters, 4, strides=2, padding="same", kernel_initializer=initializer, use_bias=False, name=f"{name}_deconv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if dropout:
        x = layers.Dropout(0.5, name=f"{name}_dropout")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


PIX2PIX_DOWN = (32, 64, 128, 128, 128, 128)  # 6 levels, narrower than the tutorial's 8: CPU- and size-friendly


def build_pix2pix_generator(size: int | None = 256) -> keras.Model:
    """The research's cGAN generator: the pix2pix U-Net (TensorFlow tutorial), bounded by tanh."""
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    x = inputs
    skips = []
    for index, filters in enumerate(PIX2PIX_DOWN):
        x = downsample(x, filters, f"down{index}", batchnorm=index > 0)
        skips.append(x)
    for index, (filters, skip) in enumerate(zip(reversed(PIX2PIX_DOWN[:-1]), reversed(skips[:-1]), strict=True)):
        x = upsample(x, filters, f"up{index}", dropout=index < 2)
        x = layers.Concatenate(name=f"skip{index}")([x, skip])
    x = layers.Conv2DTranspose(32, 4, strides=2, padding="same", name="last_deconv")(x)
    x = layers.LeakyReLU(0.2, name="last_lrelu")(x)
    return keras.Model(inputs, ab_output(x), name="pix2pix_generator")


def build_patchgan_discriminator(size: int | None = 256) -> keras.Model:
    """PatchGAN: one real/fake logit per 70x70 patch of the (L, ab) pair."""
    initializer = keras.initializers.RandomNormal(0.0, 0.02)
    lightness = keras.Input(shape=(size, size, 1), name="lightness")
    ab = keras.Input(shape=(size, size, 2), name="ab")
    x = layers.Concatenate(name="pair")([lightness, ab])
    x = downsample(x, 32, "d_down0", batchnorm=False)
    x = downsample(x, 64, "d_down1")
    x = downsample(x, 128, "d_down2")
    x = layers.ZeroPadding2D(name="d_pad0")(x)
    x = layers.Conv2D(256, 4, kernel_initializer=initializer, use_bias=False, name="d_conv")(x)
    x = layers.BatchNormalization(name="d_bn")(x)
    x = layers.LeakyReLU(0.2, name="d_lrelu")(x)
    x = layers.ZeroPadding2D(name="d_pad1")(x)
    logits = layers.Conv2D(1, 4, kernel_initializer=initializer, dtype="float32", name="patch_logits")(x)
    return keras.Model([lightness, ab], logits, name="patchgan")


def build_gray_baseline(size: int | None = 256) -> keras.Model:
    """a/b = 0 everywhere: the gray baseline every model must beat, as a real model file."""
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    outputs = layers.Conv2D(2, 1, kernel_initializer="zeros", bias_initializer="zeros", trainable=False, name="ab")(
        inputs
    )
    return keras.Model(inputs, outputs, name="gray")


UNET_DECODER = (128, 64, 48, 32)  # widths at strides 16, 8, 4, 2


# name -> (pretrained builder, untrained builder, mean, std of its [0, 1] RGB input)
ENCODERS = {
    "mobilenet_v2": (mobilenet_v2_encoder, mobilenet_v2_encoder_untrained, IMAGENET_MEAN, IMAGENET_STD),
    "efficientnet_lite2": (
        efficientnet_lite2_encoder,
        efficientnet_lite2_encoder_untrained,
        EFFICIENTNET_LITE_MEAN,
        EFFICIENTNET_LITE_STD,
    ),
}


HINT_LAYERS = ("hints", "carried", "hint_attention")  # name prefixes of the known-colors paths' layers
HINT_GAIN = 10.0  # under Adam, a path whose input is k times larger learns about k times faster


def hint_term(hints, stride: int, width: int, name: str):
    """The known colors summed over each stride x stride cell, mapped to `width` features.

    Summing (not averaging) keeps one known pixel at the same strength at every level, so
    the coarse levels spread a hint over its whole region and the fine levels place it.
    The convolution starts at zero: a model with hints starts out as the same model without;
    its input is scaled by HINT_GAIN so that it learns faster than the pretrained body it joins.
    """
    if stride > 1:
        hints = layers.AveragePooling2D(stride, name=f"{name}_pool")(hints)
    hints = layers.Rescaling(float(stride * stride) * HINT_GAIN, name=f"{name}_scale")(hints)
    return layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv")(hints)


def add_hints(x, hints, stride: int, name: str):
    """x plus the hints' features at x's stride (x unchanged when the model takes no hints)."""
    if hints is None:
        return x
    return layers.Add(name=name)([x, hint_term(hints, stride, x.shape[-1], name)])


def add_carried(x, carried, stride: int, name: str):
    """x plus the known colors that `HintAttention` carried over its grid, `stride` times coarser than x.

    Like `hint_term`, the convolution starts at zero and its input is scaled by HINT_GAIN.
    """
    carried = layers.UpSampling2D(stride, interpolation="bilinear", name=f"{name}_up")(carried)
    carried = layers.Rescaling(HINT_GAIN, name=f"{name}_scale")(carried)
    term = layers.Conv2D(x.shape[-1], 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv")(carried)
    return layers.Add(name=name)([x, term])


CARRIED_FROM_LEVEL = 1  # HintAttention matches on the decoder's features at stride 8, after this level
CARRIED_STRIDE = 16 >> CARRIED_FROM_LEVEL  # the stride of its grid: what it carries is that much coarser than L


def add_scene_context(x, encoded, name: str = "scene"):
    """x plus what the whole picture shows: the encoder's deepest features averaged over the image.

    A convolution sees a neighborhood; whether a shirt is a jersey on a pitch or a uniform on
    parade is a fact of the whole scene (Iizuka et al. 2016 fuse such a global feature). The
    convolution starts at zero, so a model starts out as the same model without it.
    """
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(encoded)
    context = layers.Conv2D(x.shape[-1], 1, kernel_initializer="zeros", name=f"{name}_conv")(pooled)
    return layers.Add(name=name)([x, context])


def unet_encoder(inputs, size: int | None, pretrained: bool, encoder: str) -> list:
    """The encoder's outputs (strides 2 to 32) for L fed as a gray RGB image with its own normalization.

    The encoder is ImageNet-pretrained, so it starts out recognizing faces, clothes, skies and
    plants instead of learning them from a few thousand photos.
    """
    pretrained_encoder, untrained_encoder, mean, std = ENCODERS[encoder]
    gray_rgb = layers.Concatenate(name="gray_rgb")([inputs, inputs, inputs])
    normalized = layers.Normalization(mean=mean, variance=std**2, name="imagenet_norm")(gray_rgb)
    return (pretrained_encoder if pretrained else untrained_encoder)((size, size, 3))(normalized)


def unet_decoder(
    encoder_outputs,
    hints=None,
    scene_context: bool = False,
    hint_attention: bool = False,
    hint_nearness: float | None = None,
    prefix: str = "",
):
    """A light decoder with skip connections: the encoder's features back up to stride 2.

    Known colors (`hints`, optional) join it at every level (Zhang et al. 2017 feed them beside L;
    here the encoder stays ImageNet's); with `hint_attention`, also as `HintAttention` carries them
    over the stride-8 grid, at the finer levels. `prefix` names a second decoder's layers.
    Returns the features at stride 2 and what the attention carried (None without it).
    """
    *skips, encoded = encoder_outputs
    x = conv_bn_act(encoded, 160, f"{prefix}reduce", kernel_size=1)
    if scene_context:
        x = add_scene_context(x, encoded, f"{prefix}scene")
    x = add_hints(x, hints, 32, f"{prefix}hints_reduce")
    carried = None
    for level, (skip, width) in enumerate(zip(reversed(skips), UNET_DECODER, strict=True)):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"{prefix}up{level}")(x)
        x = layers.Concatenate(name=f"{prefix}skip{level}")([x, skip])
        x = add_hints(conv_bn_act(x, width, f"{prefix}decode{level}a"), hints, 16 >> level, f"{prefix}hints{level}")
        if carried is not None:
            x = add_carried(x, carried, 1 << (level - CARRIED_FROM_LEVEL), f"{prefix}carried{level}")
        x = conv_bn_act(x, width, f"{prefix}decode{level}b")
        if hint_attention and level == CARRIED_FROM_LEVEL:
            carried = carried_hints(x, hints, CARRIED_STRIDE, hint_nearness, f"{prefix}hint_attention")
    return x, carried


def unet_features(inputs, size: int | None, pretrained: bool, encoder: str):
    """The U-Net body of `build_unet_classes`: the decoder's features at stride 2 and the encoder's outputs."""
    encoder_outputs = unet_encoder(inputs, size, pretrained, encoder)
    return unet_decoder(encoder_outputs)[0], encoder_outputs


def full_resolution_ab(inputs, encoder_outputs, hints, decoder_options: dict, prefix: str = ""):
    """One decoder's a/b at the input's resolution, the last skip being L itself; also its last
    features at stride 2 and at full resolution (what the certainty head reads), and what its
    attention carried (None without it)."""
    features, carried = unet_decoder(encoder_outputs, hints, prefix=prefix, **decoder_options)
    upsampled = layers.UpSampling2D(interpolation="bilinear", name=f"{prefix}up_full")(features)
    x = layers.Concatenate(name=f"{prefix}skip_lightness")([upsampled, inputs])
    x = add_hints(conv_bn_act(x, 16, f"{prefix}decode_full"), hints, 1, f"{prefix}hints_full")
    return ab_output(x, f"{prefix}ab"), upsampled, x, carried


def build_unet(
    size: int | None = 256,
    pretrained: bool = True,
    encoder: str = "mobilenet_v2",
    hints: bool = False,
    scene_context: bool = False,
    certainty: bool = False,
    hint_attention: bool = False,
    hint_nearness: float | None = None,
    trust: bool = False,
    sure_blend: tuple[float, ...] | None = None,
) -> keras.Model:
    """Our U-Net regressing a/b: an ImageNet encoder, a light decoder (`unet_decoder`).

    `hints=True` adds a second input, `hints` (size, size, 3): known a/b / 128 and their
    mask; all zeros means "no known colors" and gives the automatic result. `hint_attention=True`
    (with hints) also carries each known color to the cells whose features match its own
    (models.hint_attention); with `hint_nearness` (its start) a far cell needs more likeness than a near one.
    `certainty=True` adds a head that predicts how sure each pixel's color is, and the
    output's chroma follows it (models.certainty); the median a/b stay the layer `ab`.
    `trust=True` adds a head that keeps the share of each color's chroma that colors of its kind
    earned on photos their model never saw (models.trust); the untrusted a/b stay the layer `ab`.
    `sure_blend` (lower, upper, gain[, faint]) adds a second decoder on the same encoder for the colors the
    model is sure of (`sure_ab`) and blends it with the median `ab` (models.sure_colors).
    `pretrained=False` skips loading the weights (for tests and for rebuilding a trained model).
    """
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    hint_input = keras.Input(shape=(size, size, HINT_CHANNELS), name="hints") if hints else None
    encoder_outputs = unet_encoder(inputs, size, pretrained, encoder)
    decoder_options = {"scene_context": scene_context, "hint_attention": hint_attention, "hint_nearness": hint_nearness}
    ab, upsampled, x, carried = full_resolution_ab(inputs, encoder_outputs, hint_input, decoder_options)
    if certainty:
        ab = ConfidentChroma(name="confident_ab")([ab, certainty_head(upsampled, x, ab)])
    if trust:
        trust_features = [encoder_outputs[level] for level in ENCODER_LEVELS]
        ab = trusted_colors(ab, trust_head(*trust_features, inputs, ab), hint_input)
    if sure_blend:
        sure_ab, *_ = full_resolution_ab(inputs, encoder_outputs, hint_input, decoder_options, SURE_PREFIX)
        blended = [ab, sure_ab]
        if carried is not None:  # the known colors' reach (the share matched) at full resolution
            reach = layers.UpSampling2D(CARRIED_STRIDE, interpolation="bilinear", name="hint_reach")(carried)
            blended.append(reach)
        ab = SureColors(*sure_blend, name="sure_colors")(blended)
    model_inputs = [inputs, hint_input] if hints else inputs
    return keras.Model(model_inputs, ab, name="unet")


ANNEALED_MEAN_TEMPERATURE = 0.38  # the paper's choice; models.train --temperature sets a model's own


def build_unet_classes(
    size: int | None = 256,
    pretrained: bool = True,
    temperature: float = ANNEALED_MEAN_TEMPERATURE,
    encoder: str = "mobilenet_v2",
) -> keras.Model:
    """The U-Net predicting a distribution over quantized a/b bins, decoded by the annealed mean.

    Output a/b / 128 like every generator, so the pipeline needs nothing new. Inside:
    `ab_logits` (one logit per in-gamut bin, at half resolution; training reads it),
    softmax at `temperature`, expectation over the bin centers (`ab_bins`, fixed weights),
    bilinear upsampling to the input size.
    """
    bins = in_gamut_bins()
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    features, _ = unet_features(inputs, size, pretrained, encoder)
    logits = layers.Conv2D(len(bins), 1, dtype="float32", name="ab_logits")(features)
    annealed = layers.Softmax(name="annealed_softmax")(layers.Rescaling(1.0 / temperature, name="annealing")(logits))
    expectation = layers.Conv2D(2, 1, use_bias=False, trainable=False, dtype="float32", name="ab_bins")
    ab = layers.UpSampling2D(interpolation="bilinear", dtype="float32", name="ab")(expectation(annealed))
    expectation.set_weights([(bins / AB_SCALE)[None, None].astype("float32")])
    return keras.Model(inputs, ab, name="unet_classes")


# Generators by --arch name; each takes the square input size (or None).
ARCHITECTURES = {
    "autoencoder": build_autoencoder,
    "pix2pix": build_pix2pix_generator,
    "unet": build_unet,
    "unet_classes": build_unet_classes,
    "gray": build_gray_baseline,
}
