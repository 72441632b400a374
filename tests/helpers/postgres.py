"""A real PostgreSQL for the team server's tests: a new cluster in a temporary folder (initdb), listening on a free
loopback port and nowhere else, a password login and one database, stopped and deleted at the end (pg_ctl)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.servers import free_port

USER = "mlflow"
DATABASE = "mlflow"
# Who runs the cluster when the tests run as root (PostgreSQL refuses root): Debian's package makes `postgres`.
UNPRIVILEGED = ("postgres", "nobody")


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on the PATH, or where Debian's postgresql package puts them (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    return Path(folders[-1]) if folders and os.access(f"{folders[-1]}/initdb", os.X_OK) else None


@dataclass(frozen=True)
class Postgres:
    uri: str  # postgresql://mlflow@127.0.0.1:<port>/mlflow: no password, which libpq takes from PGPASSWORD
    password: str
    port: int


def cluster_user() -> str | None:
    """Who runs the cluster: None for ourselves, or an unprivileged user when we are root (initdb and postgres
    refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    known = {entry.pw_name for entry in pwd.getpwall()}
    return next(u for u in UNPRIVILEGED if u in known)


def as_user(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


def run(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@contextmanager
def postgres(bin_dir: Path) -> Iterator[Postgres]:
    """A new cluster, started; stopped (fast: open connections are cut) and deleted when the block ends."""
    # Not under pytest's tmp_path: that is root's alone (0700) when root runs the tests, and the cluster's user
    # must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="hwlab-postgres-"))
    folder.chmod(0o755)
    data = folder / "data"
    password = "team-server-test-password"
    (folder / "password").write_text(password + "\n")
    port = free_port()
    owner = cluster_user()
    if owner:
        shutil.chown(folder, owner)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={folder / 'password'}"]
        run(as_user(owner, [*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"]))
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder}"
        run(as_user(owner, [*pg_ctl, "-l", str(folder / "postgres.log"), "-w", "-o", options, "start"]))
        env = {**os.environ, "PGPASSWORD": password}
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE], env=env)
        yield Postgres(f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}", password, port)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(as_user(owner, [*pg_ctl, "-m", "fast", "-w", "stop"]), capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)
