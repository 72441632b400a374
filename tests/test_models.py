"""Architectures and augmentation from the registries, with the class count from the data."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import build_model

CNN3 = {"name": "cnn3_bn", "filters": [32, 64, 128], "conv_dropout": 0.25, "dense_units": [256, 128],
        "dense_dropout": 0.4}
STANDARD = {"name": "standard", "rotation_degrees": 10, "zoom": 0.1, "shift": 0.1}


@pytest.mark.parametrize("classes", [10, 47])
def test_default_network_outputs_a_distribution_over_the_datasets_classes(classes):
    model = build_model(CNN3, STANDARD, classes)
    probs = model.predict(np.full((2, 28, 28), 128, np.float32), verbose=0)
    assert probs.shape == (2, classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_augmentation_only_in_training():
    model = build_model(CNN3, STANDARD, 10)
    x = np.zeros((4, 28, 28), np.float32)
    x[:, 10:18, 12:16] = 255
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    aug = [layer for layer in model.layers if layer.name.startswith("random_")]
    assert [type(a).__name__ for a in aug] == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    scaled = x[..., None] / 255
    moved = scaled
    for layer in aug:
        moved = layer(moved, training=True)
    assert not np.allclose(moved, scaled)
    np.testing.assert_allclose(aug[0](scaled, training=False), scaled)


def test_unknown_names_are_errors_that_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown architecture 'nope'; known: \['cnn3_bn'\]"):
        build_model({"name": "nope"}, STANDARD, 10)
    with pytest.raises(ValueError, match="unknown policy 'wild'"):
        build_model(CNN3, {"name": "wild"}, 10)
