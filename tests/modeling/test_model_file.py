"""The model file: a .keras file that Keras loads as usual and that carries its class names."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.modeling.model_file import (
    ModelFileError,
    load_with_class_names,
    read_class_names,
    save_with_class_names,
)
from pipeline.modeling.models import build_model
from tests.helpers.configs import conf
from tests.helpers.synthetic import BALANCED


def test_saved_class_names_travel_in_a_file_keras_loads(tmp_path):
    model = build_model(conf("model", "plain1"), conf("augment", "none"), 47)
    path = tmp_path / "copied.keras"
    save_with_class_names(model, path, BALANCED)
    loaded = keras.models.load_model(path)  # the extra member does not disturb Keras
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True))
    assert read_class_names(path) == list(BALANCED)
    reloaded, names = load_with_class_names(path)
    assert names == list(BALANCED) and reloaded.output_shape == (None, 47)
    with pytest.raises(ValueError, match="10 class names for a model of 47 outputs"):
        save_with_class_names(model, tmp_path / "wrong.keras", BALANCED[:10])
    model.save(tmp_path / "old.keras")
    assert read_class_names(tmp_path / "old.keras") is None
    with pytest.raises(ModelFileError, match="old.keras: a model of 47 classes saved without their names"):
        load_with_class_names(tmp_path / "old.keras")
