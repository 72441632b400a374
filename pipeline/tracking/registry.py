"""The MLflow Model Registry: a registered model per dataset, a version of it per training, and an alias (by
default `champion`) on the version to use, so that `models:/handwriting-mnist@champion` names the model to
predict with or serve whichever run trained it.
"""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    ALREADY_EXISTS,
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.tracking import MlflowClient

from pipeline.core.errors import UserError, first_line

CHAMPION = "champion"
REGISTERED_TAG = "model.registered"  # on the training run: `handwriting-mnist/3`
FINISHED = "FINISHED"  # the status of a run whose training (and evaluation, which reopens it) ended well


class RegistryError(UserError):
    """A run or alias that the registry cannot promote; the message names it and says what to do."""


def model_name(dataset_name: str) -> str:
    """`handwriting-mnist`, `handwriting-emnist-balanced`: the project's name and the dataset's, in hyphens (as in
    the project's name and MLflow's own examples; a URI `models:/handwriting-emnist-balanced@champion` reads as
    one word). Models of different datasets, whose classes differ, are never versions of one model."""
    return f"handwriting-{dataset_name.replace('_', '-')}"


def version_label(name: str, version: int | str) -> str:
    """`handwriting-mnist/3`: the training run's tag REGISTERED_TAG."""
    return f"{name}/{version}"


def register(name: str, model_id: str, run_id: str, client: MlflowClient | None = None) -> ModelVersion:
    """A new version of the registered model `name` (made on first use) from the logged model `model_id` of the run
    `run_id`. As `mlflow.register_model` does, without its two lines on stderr ("Registered model … already
    exists", "Created version …": the training says which version it made). Two jobs of a sweep may make `name`
    at once: the second finds it made."""
    client = client or MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code not in (ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS)):
            raise
    return client.create_model_version(name, f"models:/{model_id}", run_id=run_id, model_id=model_id)


def registered_version(run_id: str, client: MlflowClient, force: bool = False) -> ModelVersion:
    """The registered version whose training run is `run_id` (the newest, should it have been registered twice). A
    run that did not finish (KILLED or FAILED, in training or in the evaluation that reopens it; still RUNNING) is
    refused unless `force`: its model may be half-trained or never evaluated."""
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE):  # MLflow's own check of an id's characters
            raise RegistryError(
                f"run {run_id!r}: not a run id — give one from `mlflow ui` or models/run.json (32 hex digits)"
            ) from None
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise RegistryError(
            f"run {run_id}: no such run in {client.tracking_uri} — give a run id from `mlflow ui` or models/run.json"
            " (MLFLOW_TRACKING_URI chooses another store)"
        ) from None
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    if not versions:
        raise RegistryError(
            f"run {run_id} ({run.info.run_name}) has no registered model: a completed training of the train stage or "
            f"a sweep's variant has one (a search's trial or a K-fold's fold only logs its model) — promote a run "
            f"with the tag {REGISTERED_TAG}, or register this one first (docs/tracking.md#registered-models-and-the-champion)"
        )
    if run.info.status != FINISHED and not force:
        raise RegistryError(
            f"run {run_id} ({run.info.run_name}) is {run.info.status}, not {FINISHED}: its training or evaluation did "
            f"not finish, so its model may be half-trained or unevaluated — promote a finished run, or run "
            f"`python -m pipeline.promote {run_id} --force` to promote this one anyway"
        )
    return max(versions, key=lambda v: int(v.version))


def promote(
    run_id: str, alias: str = CHAMPION, client: MlflowClient | None = None, force: bool = False
) -> ModelVersion:
    """Give `alias` to the registered version that run `run_id` trained, taking it from any other version of that
    model (an alias names one version); returns the version, its aliases updated. A run that did not finish is
    refused unless `force`. `client` defaults to the current tracking URI's."""
    client = client or MlflowClient()
    version = registered_version(run_id, client, force)
    try:
        client.set_registered_model_alias(version.name, alias, version.version)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(PERMISSION_DENIED):  # a team server's member who is no maintainer
            why = err.message.removeprefix(f"{err.error_code}: ")  # the server's reason (pipeline/tracking/team_app.py)
            raise RegistryError(
                f"{version.name} version {version.version} not made @{alias}: {why}; a maintainer can, with "
                f"`python -m pipeline.promote {run_id}`"
            ) from None
        if err.error_code != ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise
        # A name MLflow refuses: `latest`, `v3`, one with spaces…
        raise RegistryError(f"alias {alias!r}: {first_line(err, limit=200)}") from None
    return client.get_model_version(version.name, version.version)


def promotion_line(version: ModelVersion, alias: str, run: Run) -> str:
    """`champion: handwriting-mnist version 3 (run <id>, test.mnist.accuracy 0.9960)`: the run's accuracy on the
    test set of the dataset it trained on, which says whether this is the version one meant."""
    metric = f"test.{run.data.params.get('data.name')}.accuracy"
    score = run.data.metrics.get(metric)
    scored = f"{metric} {score:.4f}" if score is not None else "not evaluated"
    return f"{alias}: {version.name} version {version.version} (run {run.info.run_id}, {scored})"
