"""FLOPs counted from a built model's layers, checked against counts worked out by hand."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from pipeline.modeling.flops import forward_flops, training_flops
from pipeline.modeling.models import build_model
from tests.helpers.configs import conf

# cnn3_bn at 10 classes, layer by layer: 2 x output pixels x kernel x input channels x output channels per
# convolution, 2 x inputs x units per dense layer.
CNN3_BN_FLOPS = (
    2 * 28 * 28 * 9 * (1 * 32 + 32 * 32)
    + 2 * 14 * 14 * 9 * (32 * 64 + 64 * 64)
    + 2 * 7 * 7 * 9 * (64 * 128 + 128 * 128)
    + 2 * (3 * 3 * 128 * 256 + 256 * 128 + 128 * 10)
)


def test_the_default_networks_count_is_the_hand_count():
    assert CNN3_BN_FLOPS == 58_912_256  # the 58.9 MFLOP that #20 measured the old default by
    assert forward_flops(build_model(conf("model", "cnn3_bn"), conf("augment", "standard"), 10)) == CNN3_BN_FLOPS


def test_compact_is_counted_stage_by_stage():
    options = {"name": "compact", "stages": [[16], [32], [64, 64], [128]], "head": "flatten", "dropout": 0.3}
    model = build_model({**options, "dense_units": [100], "stage_dropout": 0.1}, conf("augment", "standard"), 10)
    convs = 2 * 9 * (28 * 28 * 1 * 16 + 14 * 14 * 16 * 32 + 7 * 7 * (32 * 64 + 64 * 64) + 3 * 3 * 64 * 128)
    assert forward_flops(model) == convs + 2 * (3 * 3 * 128 * 100 + 100 * 10)


def test_strides_groups_depthwise_separable_and_nested_models_are_counted():
    inputs = keras.Input((16, 16, 4))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)  # 8x8 outputs
    x = layers.Conv2D(8, 3, padding="same", groups=2)(x)  # each output sees 4 of the 8 channels
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 16 channels
    x = layers.SeparableConv2D(4, 1)(x)  # depthwise 1x1 x 16, then 16 -> 4
    inner = keras.Sequential([keras.Input((8, 8, 4)), layers.Dense(3)])
    model = keras.Model(inputs, inner(x))
    expected = (
        2 * 8 * 8 * 9 * 4 * 8
        + 2 * 8 * 8 * 9 * 4 * 8
        + 2 * 8 * 8 * 9 * 16
        + 2 * 8 * 8 * (1 * 16 + 16 * 4)
        + 2 * 8 * 8 * 4 * 3  # a dense layer on every pixel
    )
    assert forward_flops(model) == expected


def test_a_layer_it_cannot_count_is_an_error_not_a_zero():
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, layers.Conv2DTranspose(4, 3, name="up")(inputs))
    with pytest.raises(ValueError, match=r"cannot count layer 'up' \(Conv2DTranspose\)"):
        forward_flops(model)


def test_training_is_three_passes_of_every_image_in_every_epoch():
    assert training_flops(CNN3_BN_FLOPS, images=54_000, epochs=12) == 3 * CNN3_BN_FLOPS * 54_000 * 12
    assert round(training_flops(CNN3_BN_FLOPS, 54_000, 12) / 1e12, 1) == 114.5  # #20's "≈ 115 TFLOP a run"
