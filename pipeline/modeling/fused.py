"""A copy of a model whose batch normalisation runs as one fused kernel, to train and to evaluate with.

Keras 3's BatchNormalization computes its statistics and normalises with separate element-wise operations
(several passes over each activation, forward and backward); TensorFlow's FusedBatchNormV3 does it in one
oneDNN kernel and accepts bfloat16 activations directly. On the default network that makes training about
a fifth faster (bench/RESULTS.md). The fused layer is used to train and to evaluate, never saved: the model
that is saved, logged and served is rebuilt from plain Keras layers (`copy_weights`), so loading it needs
nothing from this project.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class FusedBatchNormalization(layers.BatchNormalization):
    """BatchNormalization over the last axis with TensorFlow's fused kernel; same variables, same config."""

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.axis not in (-1, len(inputs.shape) - 1) or len(inputs.shape) not in (2, 4):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels], "float32")
        offset = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels], "float32")
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, scale, offset, epsilon=self.epsilon, is_training=True
            )[:3]
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            y = tf.compat.v1.nn.fused_batch_norm(
                x,
                scale,
                offset,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )[0]
        if len(inputs.shape) == 2:
            y = tf.reshape(y, [-1, channels])
        return tf.cast(y, self.compute_dtype)


def _swap(layer: layers.Layer) -> layers.Layer:
    config = layer.get_config()
    if type(layer) is layers.BatchNormalization:
        return FusedBatchNormalization.from_config(config)
    return layer.__class__.from_config(config)


def with_fused_batch_norm(model: keras.Model) -> keras.Model:
    """A new, freshly initialised model of the same graph with every BatchNormalization fused."""
    return keras.models.clone_model(model, clone_function=_swap)


def fused_copy(model: keras.Model) -> keras.Model:
    """`model` with its own weights and every BatchNormalization fused: for inference, where TensorFlow's graph
    optimiser merges the fused kernel into the convolution before it (bench/RESULTS.md)."""
    return copy_weights(model, with_fused_batch_norm(model))


def copy_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Put `source`'s weights into `target`, a model of the same graph; fails loudly if the graphs differ."""
    weights = source.get_weights()
    if [w.shape for w in weights] != [w.shape for w in target.get_weights()]:
        raise ValueError(f"copy_weights: the models differ: {source.name}'s weights do not fit {target.name}")
    target.set_weights(weights)
    return target
