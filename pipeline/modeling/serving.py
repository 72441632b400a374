"""The model as MLflow logs it: a batch of 28x28 float32 images (pixels 0-255) in, class probabilities out."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import keras
import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import Schema, TensorSpec


def signature(num_classes: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28), "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, num_classes), "probabilities")]),
    )


def log_keras_model(model: keras.Model, class_names: Sequence[str]) -> ModelInfo:
    """Log under the name `model` to the active run, so `runs:/<run id>/model` loads it with mlflow.pyfunc; returns
    MLflow's record of it: its own URI, `models:/<model id>` (what `mlflow models serve -m` takes, from any machine
    that reaches the store), and that id (which pipeline/tracking/registry.py registers)."""
    return mlflow.tensorflow.log_model(
        model,
        name="model",
        signature=signature(len(class_names)),
        metadata={"class_names": list(class_names)},
        pip_requirements=requirements(),
    )


SERVING_PACKAGES = ("tensorflow", "keras", "numpy", "cloudpickle", "mlflow")


def requirements() -> list[str]:
    """What serving the model needs, pinned to what trained it. Given explicitly: left to infer them, MLflow
    loads the model again in a subprocess to see what it imports, 6 s of every training run."""
    return [f"{name}=={version(name)}" for name in SERVING_PACKAGES]
