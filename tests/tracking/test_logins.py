"""The team server's logins, its side: the admin's password and the session key are given or made once into files
only their owner reads, a guessable password is refused, and MLflow's basic-auth config names the run store.
(The server itself, with PostgreSQL: tests/system/test_team_server.py.)"""

from __future__ import annotations

import stat

import pytest
from mlflow.server.auth.config import read_auth_config

from pipeline.core.errors import UserError
from pipeline.tracking import logins


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_admin_password_is_made_once_into_a_private_file(tmp_path):
    env, note = logins.server_environ(tmp_path, "sqlite:///x.db", environ={})
    password = env[logins.ADMIN_PASSWORD_ENV]
    assert len(password) >= 32 and (tmp_path / "admin-password").read_text().strip() == password
    assert note == f"logins on: the admin is 'admin', with the password made now in {tmp_path / 'admin-password'}"
    assert mode(tmp_path / "admin-password") == mode(tmp_path / "secret-key") == 0o600
    again, note = logins.server_environ(tmp_path, "sqlite:///x.db", environ={})
    assert again == env  # the next start reads them back
    assert note.endswith(f"with the password in {tmp_path / 'admin-password'}")


def test_passwords_in_the_environment_win_and_no_file_is_made(tmp_path):
    given = {logins.ADMIN_PASSWORD_ENV: "from-the-team-vault", logins.SECRET_KEY_ENV: "key-from-the-vault"}
    env, note = logins.server_environ(tmp_path, "sqlite:///x.db", environ=given)
    assert env[logins.ADMIN_PASSWORD_ENV] == "from-the-team-vault"
    assert env[logins.SECRET_KEY_ENV] == "key-from-the-vault"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic_auth.ini"]
    assert note.endswith("with the password in MLFLOW_AUTH_ADMIN_PASSWORD")


@pytest.mark.parametrize("password", ["password1234", "short-one"])
def test_a_guessable_admin_password_is_refused(tmp_path, password):
    with pytest.raises(UserError, match=r"^MLFLOW_AUTH_ADMIN_PASSWORD: ") as refused:
        logins.server_environ(tmp_path, "sqlite:///x.db", environ={logins.ADMIN_PASSWORD_ENV: password})
    assert ("anyone can guess" if password == "password1234" else "12 or more are needed") in str(refused.value)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("password1234", "password1234 is the admin password MLflow used to ship, which anyone can guess"),
        ("eleven-char", "it has 11 characters, and 12 or more are needed"),
        ("twelve-chars", None),
    ],
)
def test_the_password_policy(password, problem):
    assert logins.password_problem(password) == problem


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    (tmp_path / "admin-password").write_text("a-long-enough-password\n")
    (tmp_path / "admin-password").chmod(0o644)
    with pytest.raises(UserError, match=r"readable by others \(mode 0644\) — `chmod 600 "):
        logins.server_environ(tmp_path, "sqlite:///x.db", environ={})


def test_the_config_names_the_run_store_for_the_users_too_and_caches_logins(tmp_path, monkeypatch):
    uri = "postgresql://mlflow:p%40ss@db.lab/mlflow"  # a URL-encoded password: `%` is special to MLflow's reader
    env, _ = logins.server_environ(tmp_path, uri, environ={})
    monkeypatch.setenv(logins.CONFIG_ENV, env[logins.CONFIG_ENV])
    config = read_auth_config()  # as MLflow's server reads it
    assert (config.default_permission, config.database_uri, config.admin_username) == ("EDIT", uri, "admin")
    assert config.auth_cache_ttl_seconds == logins.LOGIN_CACHE_SECONDS > 0  # no scrypt check on every request
    assert mode(tmp_path / "basic_auth.ini") == 0o600
