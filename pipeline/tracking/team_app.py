"""The team server's app (`make server LOGINS=yes`): MLflow's basic-auth app, its logins and permissions unchanged,
and the team's rules on top, which MLflow's permissions cannot say (docs/scaling.md#who-may-do-what):

- a run is its owner's: the server writes who created it (the login, whatever the client sent), and only that login
  and the admins may change it afterwards: end or fail it, log, tag, rename, delete or restore it, write or delete
  its files, and create, change or delete the logged models (and their files) that hang from it;
- the registry's aliases and names and the experiments' are the maintainers' (the admins, and the users the admin
  put in the MLflow role `maintainers`): moving or deleting an alias such as `@champion`, renaming or deleting a
  registered model or one of its versions, renaming, deleting or restoring an experiment. Registering a new
  version stays every member's;
- a password set through the server (a new user, a changed password) passes the team's policy
  (pipeline/tracking/logins.py).

Each rule is a before-request hook that Flask runs after MLflow's own, only on what MLflow let through: it can
refuse more, never less. MLflow finds `create_app` by the project's entry point (pyproject.toml), which is why
`make env` installs the project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi.responses import JSONResponse
from flask import Flask, g, request
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.protos.model_registry_pb2 import (
    DeleteModelVersion,
    DeleteRegisteredModel,
    DeleteRegisteredModelAlias,
    RenameRegisteredModel,
    SetRegisteredModelAlias,
    TransitionModelVersionStage,
)
from mlflow.protos.service_pb2 import CreateRun, DeleteExperiment, RestoreExperiment, UpdateExperiment
from mlflow.server import app as tracking_app
from mlflow.server import auth
from mlflow.server.auth import routes as auth_routes
from mlflow.server.handlers import _get_tracking_store, catch_mlflow_exception, get_endpoints
from mlflow.utils.mlflow_tags import MLFLOW_USER
from mlflow.utils.uri import validate_path_is_safe

from pipeline.tracking.logins import MAINTAINERS, password_problem

# What only a maintainer (or an admin) may do, in the words of the refusal.
MAINTAINER_ONLY = {
    SetRegisteredModelAlias: "move an alias such as @champion",
    DeleteRegisteredModelAlias: "delete an alias such as @champion",
    RenameRegisteredModel: "rename a registered model",
    DeleteRegisteredModel: "delete a registered model",
    DeleteModelVersion: "delete a registered model's version",
    TransitionModelVersionStage: "change a registered version's stage",
    UpdateExperiment: "rename an experiment",
    DeleteExperiment: "delete an experiment",
    RestoreExperiment: "restore an experiment",
}
# The routes MLflow itself gates as changes to one run (its own validators name them): the owner's alone.
RUN_CHANGES = (
    auth.validate_can_update_run,
    auth.validate_can_delete_run,
    auth.validate_can_manage_run,
    auth.validate_can_log_metric,
    auth.validate_can_log_batch,
    auth.validate_can_log_inputs,
    auth.validate_can_log_outputs,
    auth.validate_can_update_run_artifact,
)
PASSWORD_ROUTES = {
    (auth_routes.CREATE_USER, "POST"),
    (auth_routes.AJAX_CREATE_USER, "POST"),
    (auth_routes.CREATE_USER_UI, "POST"),
    (auth_routes.UPDATE_USER_PASSWORD, "PATCH"),
    (auth_routes.AJAX_UPDATE_USER_PASSWORD, "PATCH"),
}

Route = tuple[str, str]  # (path, method), as Flask sees a request
RUN_ID = re.compile(r"[0-9a-f]{32}")  # as MLflow makes them (uuid4().hex)


def routes_of(request_classes: Iterable[type]) -> dict[Route, type]:
    """The REST and UI paths of MLflow's API calls, each with the call it serves."""
    wanted = set(request_classes)
    return {
        (path, method): handler
        for path, handler, methods in get_endpoints(lambda request_class: request_class)
        if handler in wanted
        for method in methods
    }


MAINTAINER_ROUTES = routes_of(MAINTAINER_ONLY)
CREATE_RUN_ROUTES = set(routes_of([CreateRun]))
RUN_ROUTES = {route for route, validator in auth.BEFORE_REQUEST_VALIDATORS.items() if validator in RUN_CHANGES}
# Logged models' writes (MLflow matches these paths by pattern: they hold the model's id), and their creation.
LOGGED_MODEL_CHANGES = (
    auth.validate_can_create_logged_model,
    auth.validate_can_update_logged_model,
    auth.validate_can_delete_logged_model,
)
LOGGED_MODEL_ROUTES = [
    (pattern, method)
    for (pattern, method), validator in auth.LOGGED_MODEL_BEFORE_REQUEST_VALIDATORS.items()
    if validator in LOGGED_MODEL_CHANGES
]


def refused(message: str) -> MlflowException:
    """A 403 whose message the client shows (MLflow's own 403 says only "Permission denied")."""
    return MlflowException(message, error_code=PERMISSION_DENIED)


def request_values() -> dict:
    """The request's parameters wherever the client put them: query, JSON body, path. A body that is not JSON (an
    artifact's bytes) is never read here: reading it would consume it before MLflow's handler."""
    body = request.get_json(silent=True) if request.is_json else None
    return {**request.args.to_dict(), **(body if isinstance(body, dict) else {}), **(request.view_args or {})}


def check_new_password() -> None:
    values = request_values() if request.is_json else request.form.to_dict()
    username, password = values.get("username") or "", values.get("password") or ""
    if password and (problem := password_problem(password)):
        raise MlflowException.invalid_parameter_value(f"the password for {username!r}: {problem} — choose another")


def stamp_owner(login: str) -> None:
    """A new run is the login's: MLflow stores the `user_id` and `mlflow.user` the client sends (`unknown` from
    MlflowClient.create_run), so they are set here, in the body MLflow's handler is about to read."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        return  # not a body MLflow's handler can read either: it refuses the request itself
    body["user_id"] = login
    tags = [tag for tag in body.get("tags") or [] if isinstance(tag, dict) and tag.get("key") != MLFLOW_USER]
    body["tags"] = [*tags, {"key": MLFLOW_USER, "value": login}]


def owner_problem(login: str, run_id: str) -> str | None:
    """Why `login` may not change run `run_id` (or what hangs from it), or None when it is theirs."""
    owner = _get_tracking_store().get_run(run_id).info.user_id
    if owner == login:
        return None
    return f"run {run_id} is {owner or 'nobody'}'s: only its owner and the admins may change it, {login} may not"


def check_run_owner(login: str) -> None:
    values = request_values()
    run_id = values.get("run_id") or values.get("run_uuid")
    if run_id and (problem := owner_problem(login, run_id)):  # without one, MLflow's own validator has refused
        raise refused(problem)


def artifact_owner(artifact_path: str) -> tuple[str, str] | None:
    """Whose an artifact path in the server's store is, as ("run", run id) or ("model", logged model id): MLflow lays
    out `<experiment>/<run>/artifacts/…` and `<experiment>/models/<model>/artifacts/…`; None for anything else. The
    path is read as MLflow's handler reads it (decoded again; `..` refused), and `.` and empty segments, which land
    in the same folder, are skipped."""
    parts = [part for part in validate_path_is_safe(artifact_path).split("/") if part not in ("", ".")]
    if len(parts) >= 3 and parts[0].isdigit() and parts[1] == "models":
        return "model", parts[2]
    if len(parts) >= 2 and parts[0].isdigit() and RUN_ID.fullmatch(parts[1]):
        return "run", parts[1]
    return None


def logged_model_run(model_id: str) -> str | None:
    """The run a logged model came from (whose owner may change it); None for one logged outside a run."""
    return _get_tracking_store().get_logged_model(model_id).source_run_id or None


def artifact_problem(login: str, artifact_path: str) -> str | None:
    """Why `login` may not write or delete at `artifact_path`, or None: a run's files, and a logged model's (the
    files `models:/…@champion` serves), are its run's owner's."""
    owner = artifact_owner(artifact_path)
    if owner is None:
        return None
    kind, key = owner
    run_id = key if kind == "run" else logged_model_run(key)
    return owner_problem(login, run_id) if run_id else None


def check_artifact_owner(login: str) -> None:
    path = (request.view_args or {}).get("artifact_path") or request.args.get("path") or ""
    if path and (problem := artifact_problem(login, path)):  # an invalid path: MlflowException, a 400
        raise refused(problem)


def check_logged_model_owner(login: str, model_id: str | None) -> None:
    """A logged model is changed (finalized, tagged, deleted) by its run's owner; one is logged into a run by its
    owner alone."""
    run_id = request_values().get("source_run_id") if model_id is None else logged_model_run(model_id)
    if run_id and (problem := owner_problem(login, run_id)):
        raise refused(problem)


def is_maintainer(user: Any) -> bool:
    """`user` (MLflow's auth store's) is in the role `maintainers` (admins pass before this is asked)."""
    return any(role.name == MAINTAINERS for role in auth.store.list_user_roles(user.id))


def check_maintainer(user: Any, what: str) -> None:
    if not is_maintainer(user):
        raise refused(
            f"only the team's maintainers and admins may {what}, and {user.username} is neither (the admin names "
            "maintainers: `make maintainer NAME=…`)"
        )


@catch_mlflow_exception
def team_rules() -> None:
    """After MLflow's own hook has let a request through: the team's rules, by route."""
    login = getattr(g, "mlflow_authenticated_user", None)
    if login is None:
        return  # a route MLflow serves without a login (health, static files)
    route = (request.path, request.method)
    if route in PASSWORD_ROUTES:
        check_new_password()
    if route in CREATE_RUN_ROUTES:
        stamp_owner(login)
    user = auth.store.get_user(login)  # once per request: the admin's pass, and whether a maintainer
    if user.is_admin:
        return
    if route in RUN_ROUTES:
        check_run_owner(login)
    if request.method != "GET" and auth._is_proxy_artifact_path(request.path):  # MLflow's test of the route
        check_artifact_owner(login)
    for pattern, method in LOGGED_MODEL_ROUTES:
        if method == request.method and (match := pattern.fullmatch(request.path)):
            check_logged_model_owner(login, match.group(1) if match.groups() else None)
    if route in MAINTAINER_ROUTES:
        check_maintainer(user, MAINTAINER_ONLY[MAINTAINER_ROUTES[route]])


def artifact_upload_rules(served) -> None:
    """Uploads of artifacts are served by MLflow's FastAPI app itself, outside Flask's hooks: the same rule there.
    Added last, this middleware runs first, so it authenticates as MLflow's own does (a request without a valid
    login goes on to MLflow's, which refuses it)."""

    @served.middleware("http")
    async def artifact_owner_middleware(request, call_next):
        path = request.url.path
        if auth._is_native_fastapi_proxy_artifact_path(path, request.method) and request.method != "GET":
            user = auth._authenticate_fastapi_request(request)
            if user is not None and not user.is_admin:
                artifact_path = path.split("/mlflow-artifacts/artifacts/", 1)[1]
                try:
                    problem = artifact_problem(user.username, artifact_path)
                except MlflowException as err:  # a path MLflow's handler would refuse too (`..`)
                    return JSONResponse(json.loads(err.serialize_as_json()), status_code=err.get_http_status_code())
                if problem:
                    return JSONResponse(json.loads(refused(problem).serialize_as_json()), status_code=403)
        return await call_next(request)


def create_app(app: Flask = tracking_app) -> Callable:
    """MLflow's basic-auth app around MLflow's server, then the team's rules: `mlflow server --app-name
    handwriting-lab-team` calls this in each worker."""
    served = auth.create_app(app)
    app.before_request(team_rules)  # after MLflow's hook, which authenticates and applies its permissions
    if served is not app:  # MLflow's FastAPI app around the Flask one (uvicorn, the default)
        artifact_upload_rules(served)
    return served
