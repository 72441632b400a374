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
# URIs of a model in the tracking store; any other scheme names a storage (s3://, gs://, file://…) that MLflow reads
# directly, with a client package of its own.
TRACKED = ("runs", "models", "mlflow-artifacts")
# The package to install for a storage, where MLflow's own error names only a module deep inside it.
STORAGE_PACKAGES = {
    "s3": "boto3",
    "b2": "boto3",
    "r2": "boto3",
    "gs": "google-cloud-storage",
    "wasbs": "azure-storage-blob and azure-identity",
    "abfss": "azure-storage-file-datalake and azure-identity",
    "sftp": "pysftp",
}
DOWNLOAD_IT = "download the model first and pass its .keras file"


def load_tracked_model(uri: str):
    """The Keras model and class names of an MLflow model URI (`runs:/<id>/model`, `models:/<name>/<version>`,
    `models:/<name>@<alias>`, or a storage's: `s3://…`); one the store does not have, a web address (which MLflow
    cannot download a model from), or a storage whose client package is not installed is a ModelFileError naming
    the URI and what to do."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.tracking.store import ENV_URI, connect_default

    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        raise ModelFileError(
            f"{uri}: a web address, which MLflow cannot load a model from — {DOWNLOAD_IT}, or give "
            f"runs:/<run id>/model or models:/<name>@<alias> with {ENV_URI} set to the tracking server"
        )
    try:
        if scheme in TRACKED:
            connect_default()
        info = mlflow.models.get_model_info(uri)
        # The Keras model itself, rather than the pyfunc: batched, and quiet on stdout.
        model = mlflow.tensorflow.load_model(uri)
    except UserError as err:
        raise ModelFileError(f"{uri}: {err}") from err
    except MlflowException as err:
        if scheme not in TRACKED:
            raise ModelFileError(f"{uri}: {first_line(err).rstrip('.')} — {DOWNLOAD_IT}") from err
        hint = (
            "`python -m pipeline.promote RUN_ID` gives a run's model an alias; `mlflow ui` lists the models"
            if scheme == "models"
            else "`mlflow ui` or models/run.json gives a run's id"
        )
        raise ModelFileError(
            f"{uri}: {first_line(err).rstrip('.')} (store {mlflow.get_tracking_uri()}) — {hint}"
        ) from err
    except ImportError as err:
        package = STORAGE_PACKAGES.get(scheme, f"the package that provides {err.name}")
        raise ModelFileError(
            f"{uri}: MLflow needs {err.name} to read it, which is not installed — {DOWNLOAD_IT}, or install {package}"
        ) from err
    except Exception as err:  # a storage's client, whatever it raises: OSError, ValueError, b2://'s bare Exception
        if scheme in TRACKED:
            raise
        raise ModelFileError(f"{uri}: MLflow cannot load it ({first_line(err)}) — {DOWNLOAD_IT}") from err
    return model, list(info.metadata["class_names"])


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
