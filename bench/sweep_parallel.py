"""A 4-variant Hydra sweep run twice in the same run: one job after another (baseline), then with the joblib
launcher (`hydra/launcher=parallel`: 2 worker processes, cores / 2 TensorFlow threads each).

Prints both wall times and their ratio. The variants are small (a slice of MNIST, a few epochs) so that the
benchmark takes minutes; every job still trains, evaluates on both test sets and writes its report, and every
run lands in a throw-away MLflow store, so the user's mlruns/ is left alone.

    .venv/bin/python bench/sweep_parallel.py [--train-limit 12000] [--epochs 2]   (needs data/prepared/)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe

SWEEP = ["model=cnn3_bn,cnn2_bn", "augment=none,standard"]


def run_sweep(launcher: str | None, sweep_dir: Path, store: Path, size: list[str]) -> float:
    """Wall seconds of one multirun; fails loudly if any job failed."""
    cmd = [sys.executable, "-m", "pipeline.experiment", "-m", *SWEEP, *size, f"hydra.sweep.dir={sweep_dir}"]
    if launcher:
        cmd.append(f"hydra/launcher={launcher}")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
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
    args = parser.parse_args()
    size = ["experiment=fast", f"data.train_limit={args.train_limit}", f"train.epochs={args.epochs}"]
    print(f"machine: {describe()}")
    print(f"sweep: {' '.join(SWEEP)} ({' '.join(size)})", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwlab-bench-") as tmp:
        tmp = Path(tmp)
        sequential = run_sweep(None, tmp / "sequential", tmp / "mlflow.db", size)
        print(f"  sequential (Hydra's basic launcher): {sequential:6.1f} s", flush=True)
        parallel = run_sweep("parallel", tmp / "parallel", tmp / "mlflow.db", size)
        print(f"  parallel (joblib, 2 workers):        {parallel:6.1f} s", flush=True)
    print(f"\nparallel is {sequential / parallel:.2f}x as fast as sequential (goal: >= 1.00x)")


if __name__ == "__main__":
    main()
