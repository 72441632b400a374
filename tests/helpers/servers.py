"""Servers on 127.0.0.1: a stand-in for NIST's and LeCun's (files from a folder, HTTP Range requests honoured,
every request recorded, and a connection that can be cut part way through a response) and an archive laid out like
NIST's for it to serve; a free port, waiting until a server answers, and `make server` as a user starts it."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.helpers.measured import followed


@dataclass
class Served:
    path: str
    range: str | None  # the Range header the client sent
    status: int
    sent: int  # body bytes sent


@dataclass
class FileServer:
    root: Path
    requests: list[Served] = field(default_factory=list)
    drop_after: int | None = None  # cut the next response after this many body bytes

    def __enter__(self) -> Self:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.respond(self)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path}"

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        asked = handler.headers.get("Range")
        path = self.root / handler.path.lstrip("/")
        if not path.is_file():
            handler.send_error(404)
            self.requests.append(Served(handler.path, asked, 404, 0))
            return
        size = path.stat().st_size
        start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1)) if asked else 0
        if start >= size:
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{size}")
            handler.end_headers()
            self.requests.append(Served(handler.path, asked, 416, 0))
            return
        status = 206 if asked else 200
        handler.send_response(status)
        if asked:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.send_header("Content-Length", str(size - start))
        handler.end_headers()
        limit, self.drop_after = self.drop_after, None
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while block := f.read(min(1 << 20, (limit - sent) if limit is not None else 1 << 20)):
                handler.wfile.write(block)
                sent += len(block)
        handler.wfile.flush()
        handler.close_connection = True
        self.requests.append(Served(handler.path, asked, status, sent))


def nist_archive(emnist: Path, dest: Path) -> str:
    """An archive laid out like NIST's gzip.zip (a gzip/ folder of the EMNIST files) from a mirror's emnist/
    folder; returns its MD5. Stored, not deflated: the members are gzip files already."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in sorted(emnist.iterdir()):
            zf.write(f, f"gzip/{f.name}")
    return hashlib.md5(dest.read_bytes(), usedforsecurity=False).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, what: str, seconds: float = 180) -> None:
    """Until `url` answers; fails with `what`'s output if the process ends first or the time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what} did not start") from None
            time.sleep(0.5)


@dataclass(frozen=True)
class TrackingServer:
    url: str
    folder: Path  # its SQLite store and the artifacts clients uploaded


@contextmanager
def make_server(repo: Path, folder: Path, settings: list[str], env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`make server` in `repo` with `settings` (DB=…, LOGINS=…), on a free loopback port, its files in `folder`;
    yields its URL once it answers, and stops it (make, the mlflow CLI and its workers) when the block ends."""
    port = free_port()
    venv = Path(sys.prefix)  # the environment running the tests; `-o` keeps make from rebuilding it
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            ["make", "-s", "-C", str(repo), f"VENV={venv}", "-o", f"{venv}/.installed", "server"]
            + ["HOST=127.0.0.1", f"PORT={port}", f"SERVER_DIR={folder}", *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**(os.environ if env is None else env), **followed()},  # the team's app measured in the workers
            start_new_session=True,  # one process group to stop at the end
        )
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_for_http(f"{url}/health", server, "mlflow server")
            except AssertionError:
                raise AssertionError(f"`make server` did not start: {log_path.read_text()[-3000:]}") from None
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@dataclass(frozen=True)
class TeamServer:
    url: str
    folder: Path  # its secrets, its auth config and the artifacts clients uploaded
    database: str  # the PostgreSQL URI of its runs, registry and users, without the password
    database_password: str
    admin_password: str  # as `make server LOGINS=yes` made it, in folder/admin-password
