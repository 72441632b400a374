"""The tracking server's logins (MLflow's basic-auth app), its side: the secrets it needs, the config that names
where its users are kept, and the team's password policy.

MLflow's basic-auth app needs an admin password the first time it starts (it makes the admin then) and a key that
signs its sessions. Each is taken from its environment variable when the server's operator sets one (from the
team's secret store), or else made once, 32 random characters, into a file in the server's folder that only its
owner can read; the next start reads it there. A password anyone could guess is refused, MLflow's old default
first: a server reachable by a team must not open with it, nor let anyone have one (pipeline/tracking/team_app.py
applies the same policy to every user's).
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import UserError

ADMIN = "admin"
APP_NAME = "handwriting-lab-team"  # `mlflow server --app-name`: pipeline/tracking/team_app.py, by its entry point
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"
ADMIN_PASSWORD_FILE = "admin-password"
SECRET_KEY_FILE = "secret-key"
CONFIG_FILE = "basic_auth.ini"
OLD_DEFAULT = "password1234"  # the admin password MLflow's basic_auth.ini shipped until 3.x (GHSA-gq3w-7jj3-x7gr)
MIN_LENGTH = 12  # MLflow's own minimum for a user's password
# Every login may read everything and add runs to every experiment and versions to every registered model: a team
# trains into one experiment (handwriting-lab) and one model per dataset. What MLflow's EDIT would also allow, the
# team's app refuses (pipeline/tracking/team_app.py): changing another's run, moving an alias, renaming or deleting.
DEFAULT_PERMISSION = "EDIT"
# The MLflow role (in its `default` workspace) of the members the admin names maintainers: they move `@champion` and
# rename or delete registered models and experiments. Its grants (MANAGE on every experiment and registered model)
# let MLflow's own checks agree.
MAINTAINERS = "maintainers"
# How long a server worker trusts a login it has checked: MLflow checks a password by scrypt, ~0.1 s of the server's
# CPU on every request (a training makes hundreds), unless its login cache is on. A password changed or a member
# removed through the server is refused at once by the worker that made the change, by the others within this time
# (docs/scaling.md#members-and-maintainers).
LOGIN_CACHE_SECONDS = 30
WORKSPACE = "default"  # MLflow's one workspace when workspaces are off, as on this server


def write_private(path: Path, text: str) -> None:
    """`text` into a new file that only its owner may read (0600 from the start: no moment when others can)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def read_private(path: Path) -> str:
    """A secret kept in a file; one that others may read is refused, not used."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UserError(
            f"{path}: readable by others (mode {mode:04o}) — `chmod 600 {path}`, or delete it for a new one"
        )
    return path.read_text().strip()


def kept_secret(folder: Path, name: str, given: str | None) -> tuple[str, bool]:
    """The secret `given` (from the environment) or kept in `folder/name`, made there first if there is none; and
    whether it was made now."""
    if given:
        return given, False
    path = folder / name
    if path.exists():
        return read_private(path), False
    write_private(path, secrets.token_urlsafe(24) + "\n")
    return read_private(path), True


def password_problem(password: str) -> str | None:
    """Why `password` will not do (a phrase), or None: the team's policy for every user, the admin too. (MLflow's
    own: 12 characters or more; it lets anyone but the admin have MLflow's old default.)"""
    if password == OLD_DEFAULT:
        return f"{OLD_DEFAULT} is the admin password MLflow used to ship, which anyone can guess"
    if len(password) < MIN_LENGTH:
        return f"it has {len(password)} characters, and {MIN_LENGTH} or more are needed"
    return None


def check_password(password: str, source: str) -> None:
    """The admin's password, before the server starts with it."""
    if problem := password_problem(password):
        raise UserError(f"{source}: {problem} — choose another, or unset {ADMIN_PASSWORD_ENV} to have one made")


def auth_config(store_uri: str) -> str:
    """MLflow's basic-auth config: its users in the same database as the runs (their tables, and their migrations'
    version table, are their own), so one database holds the team's server and one backup restores it; its login
    cache on (LOGIN_CACHE_SECONDS). MLflow reads the file with interpolation: a `%` of a URL-encoded password is
    written `%%`."""
    settings = {
        "default_permission": DEFAULT_PERMISSION,
        "database_uri": store_uri,
        "admin_username": ADMIN,
        "auth_cache_ttl_seconds": str(LOGIN_CACHE_SECONDS),
    }
    return "[mlflow]\n" + "".join(f"{key} = {value.replace('%', '%%')}\n" for key, value in settings.items())


def server_environ(folder: Path, store_uri: str, environ: Mapping[str, str] = os.environ) -> tuple[dict[str, str], str]:
    """What `mlflow server --app-name basic-auth` needs in its environment, with its config written into `folder`;
    and a line for the operator when the admin password was made now (where to read it)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = ADMIN_PASSWORD_ENV if environ.get(ADMIN_PASSWORD_ENV) else str(folder / ADMIN_PASSWORD_FILE)
    password, made = kept_secret(folder, ADMIN_PASSWORD_FILE, environ.get(ADMIN_PASSWORD_ENV))
    check_password(password, source)
    key, _ = kept_secret(folder, SECRET_KEY_FILE, environ.get(SECRET_KEY_ENV))
    config = folder / CONFIG_FILE
    config.unlink(missing_ok=True)  # written anew each start; private, as the database URI may hold a password
    write_private(config, auth_config(store_uri))
    note = f"logins on: the admin is {ADMIN!r}, "
    note += f"with the password made now in {source}" if made else f"with the password in {source}"
    return {ADMIN_PASSWORD_ENV: password, SECRET_KEY_ENV: key, CONFIG_ENV: str(config)}, note
