"""A 4-variant sweep tracked by a tracking server (`make server`, on this machine) and by the embedded SQLite store,
in the same run, in alternating order (round 1: SQLite first; round 2: the server first; ...).

Prints each sweep's wall time, the best of each store and their ratio, and the CPU time the server's processes
used during its sweeps (on this machine the server shares the cores with the training). Both sweeps are the
joblib launcher's (`hydra/launcher=parallel`), small variants as in bench/sweep_parallel.py; every run lands in a
throw-away store, so the user's mlruns/ is left alone.

    .venv/bin/python bench/tracking_server.py [--train-limit 12000] [--epochs 2] [--rounds 2]   (needs data/prepared/)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe

SWEEP = ["model=cnn3_bn,cnn2_bn", "augment=none,standard"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """`make server` on a free loopback port with its store in `folder`; returns once it answers."""
    port = free_port()
    server = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "server", "HOST=127.0.0.1", f"PORT={port}", f"SERVER_DIR={folder}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).close()
            return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("make server did not start") from None
            time.sleep(0.5)


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of the live processes in a process group (the server's make, CLI, workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the command: state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def embedded_store(folder: Path) -> str:
    """A SQLite store in `folder` whose experiment keeps its artifacts there too: given an absolute sqlite URI,
    MLflow would otherwise put a new experiment's artifacts under ./mlruns of the repository."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("handwriting-lab", artifact_location=(folder / "artifacts").as_uri())
    return uri


def run_sweep(uri: str, sweep_dir: Path, size: list[str]) -> float:
    """Wall seconds of one multirun tracked at `uri`; fails loudly if any job failed."""
    cmd = [sys.executable, "-m", "pipeline.experiment", "-m", "hydra/launcher=parallel", *SWEEP, *size]
    cmd.append(f"hydra.sweep.dir={sweep_dir}")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-limit", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = ["experiment=fast", f"data.train_limit={args.train_limit}", f"train.epochs={args.epochs}"]
    print(f"machine: {describe()}")
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]} (1, 5, 15 min)")
    print(f"sweep: hydra/launcher=parallel {' '.join(SWEEP)} ({' '.join(size)})", flush=True)
    times: dict[str, list[float]] = {"sqlite": [], "server": []}
    server_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hwlab-bench-") as tmp:
        tmp = Path(tmp)
        server, url = start_server(tmp / "server")
        uris = {"sqlite": embedded_store(tmp), "server": url}
        try:
            for r in range(args.rounds):
                for store in ("sqlite", "server") if r % 2 == 0 else ("server", "sqlite"):
                    cpu = group_cpu_seconds(server.pid)
                    seconds = run_sweep(uris[store], tmp / f"{store}{r}", size)
                    times[store].append(seconds)
                    line = f"  round {r + 1}, {store:<6}: {seconds:6.1f} s"
                    if store == "server":
                        server_cpu.append(group_cpu_seconds(server.pid) - cpu)
                        line += f"  (server processes: {server_cpu[-1]:.1f} CPU s)"
                    print(line, flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    sqlite, served = min(times["sqlite"]), min(times["server"])
    print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"\nbest of {args.rounds}: SQLite {sqlite:.1f} s, tracking server {served:.1f} s")
    print(f"the server costs {100 * (served / sqlite - 1):+.1f}% of the sweep's time (goal: < 10%)")
    print(f"server CPU per sweep: {sum(server_cpu) / len(server_cpu):.1f} s")


if __name__ == "__main__":
    main()
