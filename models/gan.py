"""The conditional GAN of pix2pix (Isola et al. 2017), as in the TensorFlow pix2pix tutorial.

The generator colors L (and, for a model with a known-colors input, takes (L, hints));
the PatchGAN discriminator judges (L, ab) pairs patch by patch. Generator loss =
adversarial (BCE from logits) + l1_weight * reconstruction.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from models.losses import mae

_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def lightness_of(inputs):
    """L from a generator's inputs: L alone, or (L, hints); the discriminator sees L, never the hints."""
    return inputs[0] if isinstance(inputs, (tuple, list)) else inputs


class Pix2Pix(keras.Model):
    """Trains a generator against a discriminator with `fit`; `call` is the generator alone."""

    def __init__(
        self, generator: keras.Model, discriminator: keras.Model, l1_weight: float = 100.0, reconstruction=mae
    ):
        super().__init__(name="pix2pix")
        self.generator = generator
        self.discriminator = discriminator
        self.l1_weight = l1_weight
        self.reconstruction = reconstruction
        self.built = True  # both networks are built functional models (BackupAndRestore requires this)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "generator_loss", "adversarial", "discriminator_loss")
        }

    @property
    def metrics(self):
        """Epoch averages; "loss" is the reconstruction term, which validation and early stopping watch."""
        return list(self.trackers.values())

    def compile(self, generator_optimizer, discriminator_optimizer):
        super().compile()
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def train_step(self, data):
        inputs, ab, _ = keras.utils.unpack_x_y_sample_weight(data)
        lightness = lightness_of(inputs)
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            fake = self.generator(inputs, training=True)
            real_logits = self.discriminator([lightness, ab], training=True)
            fake_logits = self.discriminator([lightness, fake], training=True)
            adversarial = _bce(tf.ones_like(fake_logits), fake_logits)
            reconstruction = self.reconstruction(ab, fake)
            generator_loss = adversarial + self.l1_weight * reconstruction
            discriminator_loss = _bce(tf.ones_like(real_logits), real_logits) + _bce(
                tf.zeros_like(fake_logits), fake_logits
            )
        self.generator_optimizer.apply_gradients(
            zip(
                generator_tape.gradient(generator_loss, self.generator.trainable_variables),
                self.generator.trainable_variables,
                strict=True,
            )
        )
        self.discriminator_optimizer.apply_gradients(
            zip(
                discriminator_tape.gradient(discriminator_loss, self.discriminator.trainable_variables),
                self.discriminator.trainable_variables,
                strict=True,
            )
        )
        values = {
            "loss": reconstruction,
            "generator_loss": generator_loss,
            "adversarial": adversarial,
            "discriminator_loss": discriminator_loss,
        }
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        inputs, ab, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.trackers["loss"].update_state(self.reconstruction(ab, self.generator(inputs, training=False)))
        return {"loss": self.trackers["loss"].result()}
