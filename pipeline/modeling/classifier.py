"""A trained model to classify with, and its class names: from a `.keras` file or from MLflow by a model URI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.core.errors import UserError, first_line
from pipeline.modeling.model_file import ModelFileError, load_with_class_names

# Answers less sure than this are marked for a look by eye: chosen with the default model on the photo benchmark
# (bench/photos.py; the measurement and the choice in bench/RESULTS.md section 7).
UNSURE_BELOW = 0.98


def load_tracked_model(uri: str):
    """The Keras model and class names of an MLflow model URI (`runs:/<id>/model`, `models:/<name>/<version>`,
    `models:/<name>@<alias>`); one the store does not have is a ModelFileError naming the URI and the store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.tracking.store import connect_default

    try:
        connect_default()
        info = mlflow.models.get_model_info(uri)
    except UserError as err:
        raise ModelFileError(f"{uri}: {err}") from err
    except MlflowException as err:
        hint = (
            "`python -m pipeline.promote RUN_ID` gives a run's model an alias; `mlflow ui` lists the models"
            if uri.startswith("models:")
            else "`mlflow ui` or models/run.json gives a run's id"
        )
        raise ModelFileError(
            f"{uri}: {first_line(err).rstrip('.')} (store {mlflow.get_tracking_uri()}) — {hint}"
        ) from err
    # The Keras model itself, rather than the pyfunc: batched, and quiet on stdout.
    return mlflow.tensorflow.load_model(uri), list(info.metadata["class_names"])


class Classifier:
    """A model and its class names, from a .keras file (see pipeline/modeling/model_file.py) or an MLflow model URI."""

    def __init__(self, source: str):
        if "://" in source or source.startswith(("runs:", "models:")):
            self.model, self.class_names = load_tracked_model(source)
        else:
            self.model, self.class_names = load_with_class_names(Path(source))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.model.predict(images.astype(np.float32), verbose=0)


def unsure(probs: np.ndarray) -> bool:
    """Whether an answer deserves a look: its probability is below UNSURE_BELOW."""
    return float(np.max(probs)) < UNSURE_BELOW


def top_k(probs: np.ndarray, class_names: Sequence[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(class_names[i], float(probs[i])) for i in order]
