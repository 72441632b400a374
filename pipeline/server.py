"""A team's MLflow tracking server, as `make server` starts it: `python -m pipeline.server --folder DIR --store URI
[--logins yes] -- <mlflow server's options>`.

Its runs, datasets and registry in the database `--store` names (the SQLite file in the folder for one user;
PostgreSQL for a team: docs/scaling.md), a SQLite file readable by its owner alone (with logins it holds the
password hashes). With `--logins yes`, the team's app (pipeline/tracking/team_app.py: MLflow's basic-auth app and
the team's rules) asks every client for a login; the admin's password and the session key come from the environment
or from private files in the folder (pipeline/tracking/logins.py). This process becomes `mlflow server`, so stopping
it stops the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from pipeline.core.errors import UserError, reports_user_errors
from pipeline.tracking.logins import APP_NAME, server_environ


def keep_private(store_uri: str) -> None:
    """The SQLite file of `store_uri` (absolute, or relative to where the server runs), made if missing, readable by
    its owner alone (SQLite gives its journal the file's mode); any other store is the database's business."""
    if not store_uri.startswith("sqlite:///"):
        return
    path = Path(store_uri.removeprefix("sqlite:///").split("?", 1)[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is an empty SQLite database
    path.chmod(0o600)


def missing_app(name: str = APP_NAME) -> str | None:
    """Why `mlflow server --app-name name` would not find the app: MLflow looks only at installed entry points."""
    if entry_points(group="mlflow.app", name=name):
        return None
    return (
        f"MLflow's app {name!r} is not installed in {sys.prefix}: `make env` installs the project, which declares it "
        "(pyproject.toml)"
    )


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True, help="the server's own files: SQLite store, secrets")
    parser.add_argument("--store", required=True, help="the database: sqlite:///… or postgresql://user@host/db")
    parser.add_argument("--logins", choices=["yes", "no"], default="no", help="ask every client for a login")
    parser.add_argument("mlflow_options", nargs=argparse.REMAINDER, help="after --: passed to `mlflow server`")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", args.store]
    env = dict(os.environ)
    if args.logins == "yes":
        if problem := missing_app():
            raise UserError(problem)
        secrets, note = server_environ(args.folder, args.store)
        env.update(secrets)
        command += ["--app-name", APP_NAME]
        print(note, file=sys.stderr, flush=True)
    keep_private(args.store)
    options = args.mlflow_options[1:] if args.mlflow_options[:1] == ["--"] else args.mlflow_options
    os.execve(sys.executable, [*command, *options], env)


if __name__ == "__main__":
    sys.exit(main())
