"""Architectures, looked up by name: each is one short function that reads like its diagram.

Every model takes a batch of 28x28 images with pixel values 0-255 (float32), so that a served model needs no
preprocessing from its caller; scaling and (in training only) augmentation happen on the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.core.lazy import LazyModule
from pipeline.modeling.augment import augmentation

# Imported when a model is first built, not with the names (pipeline/core/lazy.py).
keras = LazyModule("keras")
layers = LazyModule("keras.layers")

Architecture = Callable[..., Any]


def conv_bn_relu(x, filters: int):
    """3x3 'same' convolution, batch normalisation (which makes the conv's bias redundant), ReLU."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def dense_bn_relu(x, units: int):
    """Dense layer, batch normalisation (which makes its bias redundant), ReLU."""
    x = layers.Dense(units, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def softmax_head(x, num_classes: int):
    """Class probabilities, kept in float32 under mixed precision."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32")(x)


def cnn3_bn(x, num_classes: int, filters, conv_dropout: float, dense_units, dense_dropout: float):
    """Origin projects 000/001: [conv-BN-ReLU x2, max-pool, dropout] per filter count, then dense-BN-ReLU-dropout
    layers."""
    for f in filters:
        x = conv_bn_relu(conv_bn_relu(x, f), f)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(conv_dropout)(x)
    x = layers.Flatten()(x)
    for units in dense_units:
        x = layers.Dropout(dense_dropout)(dense_bn_relu(x, units))
    return softmax_head(x, num_classes)


def cnn2_bn(x, num_classes: int, filters, conv_dropout: float, dense_units, dense_dropout: float):
    """Origin project 002: two blocks of conv -> batch norm -> ReLU -> max-pool -> dropout, then dense ReLU -> dropout
    and softmax."""
    for f in filters:
        x = layers.MaxPooling2D()(conv_bn_relu(x, f))
        x = layers.Dropout(conv_dropout)(x)
    x = layers.Flatten()(x)
    for units in dense_units:
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(dense_dropout)(x)
    return softmax_head(x, num_classes)


def plain3(x, num_classes: int, filters, dense_units):
    """Origin project 003: conv 32 -> max-pool -> conv 64 -> max-pool -> conv 128 -> flatten -> dense 128 -> softmax,
    3x3 kernels, no padding, no normalisation or dropout."""
    *pooled, last = filters
    for f in pooled:
        x = layers.Conv2D(f, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(last, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    for units in dense_units:
        x = layers.Dense(units, activation="relu")(x)
    return softmax_head(x, num_classes)


def plain1(x, num_classes: int, filters, dense_units):
    """Origin project 004: a single conv 32 -> max-pool -> flatten -> dense 128 -> softmax (a conv and max-pool per
    filter count)."""
    for f in filters:
        x = layers.Conv2D(f, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    for units in dense_units:
        x = layers.Dense(units, activation="relu")(x)
    return softmax_head(x, num_classes)


def compact(x, num_classes: int, stages, head: str, dense_units, dropout: float, stage_dropout: float):
    """The default since #20: stages of 3x3 conv-BN-ReLU (one per filter count in a stage), a 2x2 max-pool and
    `stage_dropout` after every stage but the last, then the head: `flatten` or global `average` pooling,
    dense-BN-ReLU layers, dropout and softmax. The first stage pools after a single narrow convolution, so that the wide ones run at 14x14 and
    below, where cnn3_bn spends half its FLOPs at 28x28 (docs/frontier.md)."""
    for i, stage in enumerate(stages):
        for f in stage:
            x = conv_bn_relu(x, f)
        if i < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
            x = layers.Dropout(stage_dropout)(x) if stage_dropout else x
    x = layers.Flatten()(x) if head == "flatten" else layers.GlobalAveragePooling2D()(x)
    for units in dense_units:
        x = dense_bn_relu(x, units)
    x = layers.Dropout(dropout)(x)
    return softmax_head(x, num_classes)


ARCHITECTURES: dict[str, Architecture] = {
    "compact": compact,
    "cnn3_bn": cnn3_bn,
    "cnn2_bn": cnn2_bn,
    "plain3": plain3,
    "plain1": plain1,
}


def build_model(model_cfg: Mapping[str, Any], augment_cfg: Mapping[str, Any], num_classes: int) -> keras.Model:
    """The named architecture behind the shared input: reshape, scale to [0, 1], augment (training only)."""
    options = dict(model_cfg)
    name = options.pop("name")  # one of ARCHITECTURES: the config schema checked it
    inputs = keras.Input(shape=(28, 28), name="image")
    x = layers.Reshape((28, 28, 1))(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    for layer in augmentation(augment_cfg):
        x = layer(x)
    outputs = ARCHITECTURES[name](x, num_classes=num_classes, **options)
    return keras.Model(inputs, outputs, name=name)
