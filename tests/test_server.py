"""`make server`'s own step before MLflow starts: its SQLite store readable by its owner alone. (The server itself:
tests/system/test_tracking_server.py and test_team_server.py.)"""

from __future__ import annotations

import sqlite3
import stat
import sys

from pipeline.server import keep_private, missing_app


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_store_is_made_private_and_an_old_one_made_so(tmp_path, monkeypatch):
    keep_private(f"sqlite:///{tmp_path}/server/mlflow.db")
    assert mode(tmp_path / "server" / "mlflow.db") == 0o600
    sqlite3.connect(tmp_path / "server" / "mlflow.db").execute("create table t (x)").connection.commit()  # a database
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    monkeypatch.chdir(tmp_path)
    keep_private("sqlite:///old.db")  # relative: to where the server runs
    assert mode(old) == 0o600


def test_another_store_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keep_private("postgresql://mlflow@db.lab/mlflow")
    assert list(tmp_path.iterdir()) == []


def test_the_team_app_must_be_installed():
    assert missing_app() is None  # make env installs the project, and with it the app's entry point
    assert missing_app("no-such-app") == (
        f"MLflow's app 'no-such-app' is not installed in {sys.prefix}: `make env` installs the project, which declares "
        "it (pyproject.toml)"
    )
