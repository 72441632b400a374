"""Architectures and augmentation from the registries, with the class count from the data."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.modeling.augment import augmentation, augmented_examples
from pipeline.modeling.models import build_model
from tests.helpers.configs import conf
from tests.helpers.repos import REPO

CNN3 = conf("model", "cnn3_bn")
STANDARD = conf("augment", "standard")


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


def test_compact_pools_after_every_stage_but_the_last_and_ends_in_the_configured_head():
    options = {"name": "compact", "stages": [[8], [16, 16], [32]], "head": "average", "dense_units": [24]}
    model = build_model({**options, "dropout": 0.1, "stage_dropout": 0.0}, conf("augment", "none"), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.output.shape[1], c.filters) for c in convs] == [(28, 8), (14, 16), (14, 16), (7, 32)]
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) == 2
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)
    assert [d.units for d in model.layers if isinstance(d, keras.layers.Dense)] == [24, 10]
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 1  # the head's only
    flat = build_model(
        {**options, "head": "flatten", "dense_units": [], "dropout": 0.1, "stage_dropout": 0.2},
        conf("augment", "none"),
        10,
    )
    assert [d.input.shape[-1] for d in flat.layers if isinstance(d, keras.layers.Dense)] == [7 * 7 * 32]
    dropouts = [layer for layer in flat.layers if isinstance(layer, keras.layers.Dropout)]
    assert [(d.rate, d.output.shape[1]) for d in dropouts] == [(0.2, 14), (0.2, 7), (0.1, 7 * 7 * 32)]


def test_seed_003_network_has_exactly_246319_parameters_for_47_classes():
    assert build_model(conf("model", "plain3"), conf("augment", "none"), 47).count_params() == 246_319


# 47 classes in the fast subset; 10 (the in-process stage tests train at 10 already) only in the full run.
@pytest.mark.parametrize("classes", [pytest.param(10, marks=pytest.mark.slow), 47])
@pytest.mark.parametrize("model_name", ["compact", "cnn3_bn", "cnn2_bn", "plain3", "plain1"])
def test_every_architecture_trains_a_step_on_each_dataset_shape(model_name, classes):
    """Eagerly: what can break here are shapes and layers, not tracing, and tracing each network's training and
    prediction graphs is most of a second each (the stage tests train a traced one)."""
    model = build_model(conf("model", model_name), conf("augment", "strong"), classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 28, 28)).astype(np.float32)
    y = rng.integers(0, classes, 8)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model(x, training=False).shape == (8, classes)


@pytest.mark.parametrize("policy", sorted(p.stem for p in (REPO / "conf" / "augment").glob("*.yaml")))
def test_every_augmentation_policy_survives_save_and_load(policy, tmp_path):
    """Training keeps the best epoch by saving and reloading the model: every policy's layers must reload."""
    model = build_model(conf("model", "plain1"), conf("augment", policy), 10)
    model.save(tmp_path / "m.keras")
    x = np.full((2, 28, 28), 100, np.float32)
    np.testing.assert_allclose(
        keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
    )


def test_strong_policy_erases_only_when_asked():
    names = [type(layer).__name__ for layer in augmentation(conf("augment", "strong"))]
    assert names == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    erasing = augmentation({**conf("augment", "strong"), "erase": 0.5})
    assert type(erasing[-1]).__name__ == "RandomErasing" and len(erasing) == 4


def intensities_after(policy: str) -> set[float]:
    """The pixel values the policy's layers produce from black-and-white images with rotated, scaled strokes."""
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 6:22, 12:16] = 1.0
    images[:, 12:15, 6:22] = 1.0
    for layer in augmentation(conf("augment", policy)):
        images = layer(images, training=True)
    return set(np.unique(np.asarray(images)).tolist())


def test_strong_policy_keeps_strokes_sharp_where_seed_000s_blurs_them():
    """Origin 000's bilinear passes invent grey pixels that no test image has; `strong` must not (docs/results.md)."""
    assert intensities_after("strong") == {0.0, 1.0}
    assert len(intensities_after("standard")) > 100


def test_augmented_examples_show_the_training_view_of_each_image():
    images = np.random.default_rng(0).integers(1, 256, (4, 28, 28)).astype(np.uint8)
    unchanged = augmented_examples(images, conf("augment", "none"), copies=2)
    assert unchanged.shape == (2, 4, 28, 28) and unchanged.dtype == np.uint8
    np.testing.assert_array_equal(unchanged[1], images)
    moved = augmented_examples(images, conf("augment", "strong"), copies=2)
    assert not np.array_equal(moved[0], images) and not np.array_equal(moved[0], moved[1])
    assert set(np.unique(moved)) <= set(np.unique(images)) | {0}  # nearest: pixels moved or background, none invented
