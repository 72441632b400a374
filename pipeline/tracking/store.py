"""Where runs are stored (the configured MLflow store, or MLFLOW_TRACKING_URI's), and connecting to it."""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock

from pipeline.core.errors import UserError
from pipeline.core.paths import CONF, project_root
from pipeline.tracking import reach

ENV_URI = "MLFLOW_TRACKING_URI"
ENV_LOG_LEVEL = "MLFLOW_LOGGING_LEVEL"  # MLflow's own setting, which it reads when imported
ENV_NO_URL = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # MLflow's too, read as each run ends


def quiet_mlflow(environ: MutableMapping[str, str] = os.environ) -> None:
    """MLflow's own INFO lines ("Started monitoring system metrics.", "Stopping system metrics monitoring…") off a
    stage's output, which says what the stage did in its own words: MLflow's logger at WARNING, or at the level
    MLFLOW_LOGGING_LEVEL asks for (`MLFLOW_LOGGING_LEVEL=INFO` brings them back). So too the lines MLflow prints
    (not logs) as each run on a tracking server ends, "🏃 View run <name> at: <url>" and "🧪 View experiment at: …",
    a pair per run of a sweep, unless MLflow's own setting for them is given."""
    level = environ.get(ENV_LOG_LEVEL, "").upper() or "WARNING"
    logging.getLogger("mlflow").setLevel(level)
    if level not in ("INFO", "DEBUG"):
        environ.setdefault(ENV_NO_URL, "true")


def tracking_uri(configured: str, environ: Mapping[str, str] = os.environ) -> str:
    """MLFLOW_TRACKING_URI wins over the configured (embedded SQLite) store, so any server needs no code change."""
    return environ.get(ENV_URI) or configured


def local_store(uri: str, root: Path) -> Path | None:
    """The file of a relative `sqlite:///` URI, anchored at `root`; None for any other URI."""
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////"):
        return None
    return root / uri.removeprefix("sqlite:///")


def resolved_uri(configured: str) -> tuple[str, Path | None]:
    """The URI to use, and the embedded store's file when that is what it names: in the user's project, also when
    DVC runs a queued experiment in a temporary copy, so that every run lands in one store."""
    uri = tracking_uri(configured)
    store = local_store(uri, project_root())
    return (f"sqlite:///{store}", store) if store is not None else (uri, None)


def embedded_file(configured: str) -> Path | None:
    """The SQLite file of the store in use, where it is one: relative to the project, or absolute (as `connect`
    leaves MLFLOW_TRACKING_URI for the processes it starts); None for a server."""
    uri, store = resolved_uri(configured)
    if store is None and uri.startswith("sqlite:////"):
        return Path(uri.removeprefix("sqlite:///"))
    return store


def server_problems(tracking_cfg: Mapping[str, Any], timeout: float = reach.TIMEOUT) -> list[str]:
    """Why the configured tracking server cannot be used, asked within seconds — it does not answer, or it wants a
    login that we lack: [] when it takes our requests, or when the store is not a server. MLflow's client would
    retry for minutes, and a training could end with nowhere to go. (Once a run is under way, MLflow's retries
    stay: a server restarting mid-training must not fail it.)"""
    uri = resolved_uri(tracking_cfg["uri"])[0]
    if not uri.startswith(("http://", "https://")):
        return []
    source = ENV_URI if os.environ.get(ENV_URI) else "tracking.uri"
    problem = reach.http_problem(f"{uri.rstrip('/')}/health", timeout)
    if problem is not None:
        fix = "is it running (`make server` starts one) and are the address and port right?"
        return [f"MLflow tracking server {uri} ({source}) not reachable: {problem} — {fix}"]
    problem = login_problem(uri, timeout)
    return [] if problem is None else [f"MLflow tracking server {uri} ({source}) {problem}"]


def login_problem(uri: str, timeout: float = reach.TIMEOUT) -> str | None:
    """Why the server at `uri` turns our requests away: it wants a login and has none, or refuses the one given;
    None when it takes them. Asked with MLflow's own credentials (MLFLOW_TRACKING_USERNAME and _PASSWORD, a
    token, ~/.mlflow/credentials), so what passes here passes for MLflow's client; without this question, a
    server with logins (`make server LOGINS=yes`) would fail a training at its first call, in a traceback."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    try:
        answer = http_request(
            creds,
            "/api/2.0/mlflow/experiments/search",
            "GET",
            params={"max_results": 1},
            max_retries=0,
            timeout=timeout,
            raise_on_status=False,
        )
    except Exception:  # noqa: BLE001 (it answered /health: anything else here is MLflow's client's to report)
        return None
    if answer.status_code != 401:
        return None
    if creds.username:
        who = f"{creds.username!r} (MLFLOW_TRACKING_USERNAME)"
        return f"refused the login of {who} — check it and MLFLOW_TRACKING_PASSWORD, or ask the server's admin"
    if creds.token:
        return "refused MLFLOW_TRACKING_TOKEN — check it, or ask the server's admin"
    return "wants a login — set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (an account from its admin)"


def check_server(tracking_cfg: Mapping[str, Any]) -> None:
    if problems := server_problems(tracking_cfg):
        raise UserError(problems[0])


def connect(tracking_cfg: Mapping[str, Any]) -> None:
    """Point MLflow at the configured store and experiment; a tracking server that does not answer is a
    UserError before anything else happens. A server decides where artifacts go (its proxied store); the
    embedded store keeps them in a folder beside its file."""
    quiet_mlflow()
    check_server(tracking_cfg)
    uri, store = resolved_uri(tracking_cfg["uri"])
    mlflow.set_tracking_uri(uri)
    name = tracking_cfg["experiment"]
    if store is None:
        mlflow.set_experiment(name)
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    # Parallel sweep jobs and queued experiments connect at once. MLflow makes a new store's tables, and we the
    # experiment, with no guard against another process doing the same (four at once on a new store: an
    # alembic error in every one); so one process at a time. Once set up, writes need no lock: MLflow gives
    # SQLite a 20 s busy timeout.
    with FileLock(f"{store}.lock"):
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=(store.parent / name).as_uri())
        mlflow.set_experiment(name)


# The stores MLflow reads runs from, by their URI's scheme (a SQLAlchemy URI may name its driver:
# postgresql+psycopg://); not its file store (a bare path, file://), which MLflow 3 refuses unless told otherwise and
# this project never makes.
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc")


def not_a_store(uri: str) -> str | None:
    """Why `uri` is not the URI of a store MLflow reads runs from ("a path, not …"), or None."""
    scheme = urllib.parse.urlparse(uri).scheme.split("+", 1)[0].lower()
    if scheme in STORE_SCHEMES:
        return None
    what = f"{scheme}://, not a tracking store's scheme" if scheme else "a path, not a tracking store's URI"
    return f"{what} — a SQLite store is sqlite:///<its .db file>, a server http(s)://<host>:<port>"


def connect_default() -> None:
    """For tools outside the pipeline (predict, promote, compare): the project's configured store, as the stages use
    it, or MLFLOW_TRACKING_URI's. They only read, so a store that is not there is an error naming it, never made:
    run from another folder, or given a mistyped path, the tool would otherwise look in a new, empty store (or fail
    on the folder it lacks) and report the run or model as unknown. A URI that is not a store's is one line too."""
    from omegaconf import OmegaConf

    quiet_mlflow()
    cfg = OmegaConf.load(CONF / "tracking" / "local.yaml")
    given = tracking_uri(cfg.uri)
    source = ENV_URI if os.environ.get(ENV_URI) else "tracking.uri"
    if problem := not_a_store(given):
        raise UserError(f"{given} ({source}): {problem}")
    check_server(cfg)
    file = embedded_file(cfg.uri)
    if file is not None and not file.is_file():
        if source == ENV_URI:
            raise UserError(
                f"{given} ({ENV_URI}): no MLflow store at {file} — check the path (MLflow would make a new, empty "
                f"store there), or unset {ENV_URI} for the project's"
            )
        raise UserError(
            f"{file}: no MLflow store — run this in the project's folder, where `dvc repro` made it, or set "
            f"{ENV_URI} to the store to use"
        )
    mlflow.set_tracking_uri(resolved_uri(cfg.uri)[0])
