"""Augmentation policies, looked up by name, as Keras preprocessing layers: active in training only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pipeline.core.lazy import LazyModule

layers = LazyModule("keras.layers")  # imported when a policy is first built (pipeline/core/lazy.py)

SEED = 1234  # layer-level seeds make augmentation reproducible given the global seed


def none() -> list[layers.Layer]:
    return []


def standard(rotation_degrees: float, zoom: float, shift: float, interpolation: str) -> list[layers.Layer]:
    """Origin project 000's: small rotations, zooms and shifts; the empty background is filled with black, like the
    ink-free page. Each layer resamples the image: with "bilinear" (Keras's default, origin 000's) the three passes
    blur it."""
    return [
        layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", interpolation=interpolation, seed=SEED),
        layers.RandomZoom(zoom, fill_mode="constant", interpolation=interpolation, seed=SEED + 1),
        layers.RandomTranslation(shift, shift, fill_mode="constant", interpolation=interpolation, seed=SEED + 2),
    ]


def strong(
    rotation_degrees: float, zoom: float, shift: float, interpolation: str, erase: float = 0.0
) -> list[layers.Layer]:
    """Larger rotations and zooms, resampled with "nearest" so that strokes stay sharp: origin 000's three bilinear
    passes leave training images blurrier than any test image; without that mismatch `strong` beats `standard` by
    0.7-1.3 points on the 47 EMNIST classes (docs/results.md). `standard` keeps the blur: it helps MNIST-trained models
    read EMNIST's softer digits.
    `erase` > 0 adds random erasing to that share of the images. Off by default: erasing a stroke can turn one
    class into another (E into F, O into C), and it did not help on the 47 classes (docs/results.md).
    (Keras 3.15's RandomShear cannot be reloaded from a saved model: its config stores a negative factor that
    its own constructor rejects; so no shear.)"""
    policy = standard(rotation_degrees, zoom, shift, interpolation)
    if erase > 0:
        policy.append(
            layers.RandomErasing(factor=erase, scale=(0.02, 0.1), fill_value=0.0, value_range=(0, 1), seed=SEED + 4)
        )
    return policy


POLICIES: dict[str, Callable[..., list[layers.Layer]]] = {"none": none, "standard": standard, "strong": strong}


def augmentation(augment_cfg: Mapping[str, Any]) -> list[layers.Layer]:
    """The named policy's layers, built with the options from its config file."""
    options = dict(augment_cfg)
    name = options.pop("name")  # one of POLICIES: the config schema checked it
    return POLICIES[name](**options)


def augmented_examples(images: np.ndarray, augment_cfg: Mapping[str, Any], copies: int) -> np.ndarray:
    """`copies` rows of the images as the policy's layers present them in training (uint8, like the data),
    so that the report can show what augmentation did, blur included."""
    policy = augmentation(augment_cfg)
    scaled = images.astype(np.float32)[..., None] / 255.0  # the model rescales before augmenting
    rows = []
    for _ in range(copies):
        x = scaled
        for layer in policy:
            x = layer(x, training=True)
        rows.append(np.rint(np.clip(np.asarray(x)[..., 0], 0.0, 1.0) * 255).astype(np.uint8))
    return np.stack(rows)
