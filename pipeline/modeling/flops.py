"""What a network costs to run, counted from its layers: the measure the default was chosen by
(docs/frontier.md).

A FLOP here is one multiply or one add of a convolution's or a dense layer's multiply-accumulates (2 per MAC), the
usual convention: batch norm, activations, pooling, dropout and augmentation are element-wise passes, a few
hundred operations per pixel at most, and are not counted. Training is counted as 3 forward passes per image
(forward, and the two products of the backward pass), the usual estimate.
"""

from __future__ import annotations

import math

import keras
from keras import layers

# Layers with weights that do no multiply-accumulate over their inputs: counted as nothing, as are layers without
# weights (pooling, activations, augmentation...). Any other layer with weights is an error rather than a silent
# zero, so that a new kind of layer cannot make a network look cheaper than it is.
ELEMENT_WISE = (layers.BatchNormalization, layers.LayerNormalization, layers.GroupNormalization)

TRAINING_PASSES = 3  # forward + backward (gradients of the inputs and of the weights)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs per image of one built layer (2 x its multiply-accumulates)."""
    if isinstance(layer, layers.DepthwiseConv2D):
        _, h, w, c_out = layer.output.shape
        return 2 * h * w * math.prod(layer.kernel_size) * c_out
    if isinstance(layer, layers.SeparableConv2D):
        _, h, w, c_out = layer.output.shape
        c_in = layer.input.shape[-1]
        depthwise = math.prod(layer.kernel_size) * c_in * layer.depth_multiplier
        return 2 * h * w * (depthwise + c_in * layer.depth_multiplier * c_out)
    if isinstance(layer, layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        return 2 * h * w * math.prod(layer.kernel_size) * (layer.input.shape[-1] // layer.groups) * c_out
    if isinstance(layer, layers.Dense):
        return 2 * math.prod(layer.input.shape[1:]) * layer.units
    if isinstance(layer, keras.Model):
        return forward_flops(layer)
    if isinstance(layer, ELEMENT_WISE) or not layer.weights:
        return 0
    raise ValueError(f"forward_flops: cannot count layer {layer.name!r} ({type(layer).__name__}); add it here")


def forward_flops(model: keras.Model) -> int:
    """Forward FLOPs to classify one image with a built model (the default network: 58.9 million)."""
    return sum(layer_flops(layer) for layer in model.layers)


def training_flops(forward: int, images: int, epochs: int) -> int:
    """FLOPs of fitting `images` training images for `epochs` epochs (validation's forward passes not counted)."""
    return TRAINING_PASSES * forward * images * epochs
