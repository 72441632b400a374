"""The team's logins on its tracking server, run by the server's operator, as its admin: `python -m pipeline.team add
NAME [--maintainer]` adds a member or a maintainer, or makes one the other (`make member NAME=ada`, `make maintainer
NAME=bob`); `python -m pipeline.team remove NAME` removes a user (`make remove-user NAME=ada`), whose runs stay.

A new user's password is HWLAB_NEW_PASSWORD when set, or else made (24 random characters) into a file of the server's
folder, `logins/NAME`, that only its owner can read: the line printed says where, to hand it to the user. Either
passes the team's policy (pipeline/tracking/logins.py). A maintainer is a user in the MLflow role `maintainers`
(made with its grants the first time): an existing member made a maintainer keeps their password. The admin's own
password is MLFLOW_AUTH_ADMIN_PASSWORD or the server folder's `admin-password`, as `make server` keeps it.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from pipeline.core.errors import UserError, first_line, reports_user_errors
from pipeline.tracking.logins import (
    ADMIN,
    ADMIN_PASSWORD_ENV,
    ADMIN_PASSWORD_FILE,
    MAINTAINERS,
    WORKSPACE,
    kept_secret,
    password_problem,
    read_private,
)
from pipeline.tracking.reach import http_problem

NEW_PASSWORD_ENV = "HWLAB_NEW_PASSWORD"
LOGINS_FOLDER = "logins"  # in the server's folder: the passwords this tool made, one file per user
# The maintainers' role lets MLflow's own checks agree with the team's rules (pipeline/tracking/team_app.py).
MAINTAINER_GRANTS = (("experiment", "*", "MANAGE"), ("registered_model", "*", "MANAGE"))


def admin_client(url: str, folder: Path, environ: Mapping[str, str] = os.environ):
    """MLflow's client of its basic-auth app, logged in as the admin."""
    password = environ.get(ADMIN_PASSWORD_ENV) or read_private(folder / ADMIN_PASSWORD_FILE)
    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=password)  # where MLflow's client reads
    with warnings.catch_warnings():
        # Importing MLflow's server warns that Starlette's WSGI middleware is deprecated: MLflow's affair, not the
        # admin's, and a line that reads like a fault.
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        from mlflow.server.auth.client import AuthServiceClient
    return AuthServiceClient(url)


def new_password(name: str, folder: Path, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The new user's password and where it is: the environment's, or one made now into a private file (read back
    if this tool made it before, so that a second try gives the same)."""
    if given := environ.get(NEW_PASSWORD_ENV):
        if problem := password_problem(given):
            raise UserError(f"{NEW_PASSWORD_ENV}: {problem} — choose another, or unset it to have one made")
        return given, NEW_PASSWORD_ENV
    logins = folder / LOGINS_FOLDER
    logins.mkdir(mode=0o700, exist_ok=True)
    return kept_secret(logins, name, None)[0], str(logins / name)  # made as the admin's password is


def is_user(client, name: str) -> bool:
    try:
        client.get_user(name)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return False
    return True


def existing_maintainers_role(client) -> int | None:
    """The id of the role `maintainers`, or None while no one has been made a maintainer."""
    return next((r.id for r in client.list_roles(WORKSPACE) if r.name == MAINTAINERS), None)


def maintainers_role(client) -> int:
    """The id of the role `maintainers`, made with its grants if the server has none yet."""
    if (role_id := existing_maintainers_role(client)) is not None:
        return role_id
    role = client.create_role(WORKSPACE, MAINTAINERS, "move @champion; rename or delete models and experiments")
    for resource_type, pattern, permission in MAINTAINER_GRANTS:
        client.add_role_permission(role.id, resource_type, pattern, permission)
    return role.id


def add(client, name: str, folder: Path, maintainer: bool, environ: Mapping[str, str] = os.environ) -> str:
    """Makes `name` a user (unless it is one) and a maintainer or a member, as asked; returns the line that says what
    was done. A maintainer made a member again leaves the role `maintainers` and keeps their password."""
    lines = []
    role = maintainers_role(client) if maintainer else existing_maintainers_role(client)
    if not is_user(client, name):
        password, where = new_password(name, folder, environ)
        client.create_user(name, password)
        lines.append(f"{name}: a new user, with the password in {where}")
        was_maintainer = False
    else:
        was_maintainer = role is not None and any(r.id == role for r in client.list_user_roles(name))
        if not maintainer and not was_maintainer:
            raise UserError(
                f"{name}: already a member of the server — `make maintainer NAME={name}` makes them a maintainer, "
                f"`make remove-user NAME={name}` removes them"
            )
    if maintainer:
        if not was_maintainer:
            client.assign_role(name, role)
        lines.append(f"{name}: a maintainer (moves @champion, renames and deletes models and experiments)")
    elif was_maintainer:
        client.unassign_role(name, role)
        lines.append(f"{name}: a member again, no longer a maintainer (runs of their own, new versions of every model)")
    else:
        lines.append(f"{name}: a member (runs of their own, new versions of every model)")
    return "; ".join(lines)


def remove(client, name: str, folder: Path) -> str:
    """Removes the user `name` and the password this tool made for them; returns the line that says what was done.
    Their runs stay, theirs by name: from now on only the admins may change them."""
    if name == ADMIN:
        raise UserError(f"{name}: the server's admin cannot be removed (make server needs its login)")
    if not is_user(client, name):
        raise UserError(f"{name}: no such user on the server — nothing to remove")
    client.delete_user(name)  # and their roles' assignments with them (MLflow's cascade)
    (folder / LOGINS_FOLDER / name).unlink(missing_ok=True)
    return f"{name}: removed; their runs stay, theirs by name, and only the admins may change them now"


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.team", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    adding = commands.add_parser("add", help="add a member or a maintainer, or make one the other")
    adding.add_argument("--maintainer", action="store_true", help="a maintainer (else a member)")
    removing = commands.add_parser("remove", help="remove a user; their runs stay")
    for command in (adding, removing):
        command.add_argument("name", help="the user's login")
        command.add_argument(
            "--server", default="http://127.0.0.1:5000", help="the server's URL (default: %(default)s)"
        )
        command.add_argument(
            "--folder", type=Path, default=Path("mlflow-server"), help="the server's folder (make server's)"
        )
    args = parser.parse_args(argv)
    if problem := http_problem(f"{args.server}/health"):
        raise UserError(f"{args.server}: {problem} — is `make server LOGINS=yes` running there (HOST, PORT)?")
    client = admin_client(args.server, args.folder)
    try:
        if args.command == "add":
            line = add(client, args.name, args.folder, args.maintainer)
        else:
            line = remove(client, args.name, args.folder)
    except MlflowException as err:  # the server's refusal: a password against the policy, a name MLflow refuses
        raise UserError(f"{args.server}: {first_line(err, limit=300)}") from None
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
