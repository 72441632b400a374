"""The model file (models/model.keras): a Keras model that carries the names of its classes.

A `.keras` file is a zip archive of config.json, metadata.json and model.weights.h5, which
keras.models.load_model reads by name, ignoring any other member. The class names are one more member,
class_names.json, added once Keras has written the rest: a copied or renamed model keeps its names, and no
file beside it (models/history.json may belong to another model) can lend it someone else's.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import UserError, first_line
from pipeline.data.datasets import DIGIT_NAMES

if TYPE_CHECKING:
    import keras

CLASS_NAMES_MEMBER = "class_names.json"

# What keras.models.load_model raises on a zip that is not a model it can rebuild: a missing member (KeyError),
# a config naming an unknown class (TypeError), weights of other shapes (ValueError), a damaged member.
UNLOADABLE = (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile)

PASS_A_MODEL = "pass --model a .keras file that train saved (`dvc repro` writes models/model.keras)"


class ModelFileError(UserError):
    """A file given as a model that cannot be used as one; the message names it and says what to do."""


def save_with_class_names(model: keras.Model, path: str | Path, class_names: Sequence[str]) -> None:
    """`model` as a .keras file at `path` (which must end in .keras), with its class names inside."""
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model of {model.output_shape[-1]} outputs")
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(CLASS_NAMES_MEMBER, json.dumps(list(class_names)))


def read_class_names(path: str | Path) -> list[str] | None:
    """The class names saved in a .keras file; None for a file saved without them (before they were saved)."""
    with zipfile.ZipFile(path) as archive:
        if CLASS_NAMES_MEMBER not in archive.namelist():
            return None
        names = json.loads(archive.read(CLASS_NAMES_MEMBER))
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ValueError(f"{CLASS_NAMES_MEMBER} holds {names!r}, not a list of class names")
    return names


def load_with_class_names(path: Path, fix: str = PASS_A_MODEL) -> tuple[keras.Model, list[str]]:
    """The model in a .keras file and its class names. A file saved without names counts as a digit model when
    it has 10 outputs, and is refused otherwise (its names are unknown: printing digits would be wrong).

    Raises ModelFileError, chained to what Keras raised, for anything that is not such a model; its message ends in
    `fix`, what the caller's user can do (predict's: pass another --model)."""
    if path.is_dir():
        raise ModelFileError(f"{path}: a folder, not a model file — {fix}")
    if not path.is_file():
        raise ModelFileError(f"{path}: no model file — {fix}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path}: not a .keras model file (not a zip archive: truncated, or another kind of file) — {fix}"
        )
    import keras  # here, not at the top: TensorFlow takes seconds to import, which `--help` need not wait for

    try:
        model = keras.models.load_model(path)
        names = read_class_names(path)
    except UNLOADABLE as err:
        raise ModelFileError(f"{path}: Keras cannot load it ({first_line(err)}) — {fix}") from err
    if tuple(model.input_shape[1:]) not in ((28, 28), (28, 28, 1)):
        raise ModelFileError(f"{path}: a model of {model.input_shape[1:]} inputs, not of 28x28 images — {fix}")
    outputs = model.output_shape[-1]
    if names is None:
        if outputs != len(DIGIT_NAMES):
            raise ModelFileError(
                f"{path}: a model of {outputs} classes saved without their names (before models carried them) — "
                "retrain it with `dvc repro`, or pass its MLflow model (--model runs:/<run id>/model)"
            )
        names = list(DIGIT_NAMES)
    if len(names) != outputs:
        raise ModelFileError(f"{path}: {len(names)} class names for a model of {outputs} outputs — {fix}")
    return model, names
