"""Time from nothing to a trained, evaluated and reported default model: `dvc repro` in a fresh clone.

Clones the repository's HEAD into a temporary folder and runs `dvc repro` there with this environment's
Python, printing each stage's wall time, the total and the MNIST test accuracy (goal: <= 6 minutes and
>= 99.5%). Baseline in the same run: one epoch of seed 001's training as it was before #6 (float32, Keras's
batch norm, one step per execution, Adam 1e-3 on a plateau schedule; `experiment=seed001
train.fused_batch_norm=false train.steps_per_execution=1`), timed in the clone and projected to the 15 epochs
seed 001 needed for 99.53%.

    HWLAB_DATA_MIRROR=../shared/data .venv/bin/python bench/time_to_accuracy.py   (or with internet access)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe

STAGE = re.compile(r"^Running stage '(\w+)'")
EPOCH_SECONDS = re.compile(r"train: done in (\d+) s")


def repro(clone: Path, env: dict[str, str]) -> dict[str, float]:
    """Run `dvc repro`, streaming its output, and return the wall seconds of every stage and the total."""
    dvc = str(Path(sys.executable).parent / "dvc")
    started = last = time.perf_counter()
    stages: dict[str, float] = {}
    current = None
    with subprocess.Popen(
        [dvc, "repro"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            match = STAGE.match(line)
            if match:
                now = time.perf_counter()
                if current:
                    stages[current] = now - last
                    print(f"  {current:<9} {stages[current]:6.1f} s", flush=True)
                current, last = match.group(1), now
    if proc.returncode != 0:
        raise SystemExit(f"dvc repro failed in {clone} ({proc.returncode})")
    now = time.perf_counter()
    stages[current] = now - last
    print(f"  {current:<9} {stages[current]:6.1f} s", flush=True)
    stages["total"] = now - started
    return stages


def seed001_epoch(clone: Path, env: dict[str, str]) -> float:
    """Seconds of one training epoch the way seed 001 trained before #6 (from the train stage's own timing)."""
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        "experiment=seed001",
        "train.epochs=1",
        "train.fused_batch_norm=false",
        "train.steps_per_execution=1",
        "paths.models=baseline_models",
        "hydra.run.dir=.",
        "hydra.output_subdir=null",
        "hydra/job_logging=stdout",
    ]
    out = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, check=False)
    found = EPOCH_SECONDS.search(out.stdout)
    if out.returncode != 0 or not found:
        raise SystemExit(f"baseline epoch failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="clone into this new folder and keep it (for bench/stages.py)")
    args = parser.parse_args()
    print(f"machine: {describe()}", flush=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with (
        contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="hwlab-bench-")
    ) as folder:
        clone = Path(folder) / "repo" if not args.keep else Path(folder)
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        print(f"dvc repro in a fresh clone of HEAD ({clone}):", flush=True)
        stages = repro(clone, env)
        accuracy = json.loads((clone / "metrics" / "test.json").read_text())["mnist"]["accuracy"]
        epoch = seed001_epoch(clone, env)
    others = stages["total"] - stages["train"]
    projected = others + 15 * epoch
    print(
        f"\ntotal {stages['total']:.0f} s ({stages['total'] / 60:.1f} min; goal <= 6 min), "
        f"MNIST test accuracy {accuracy:.2%} (goal >= 99.5%)"
    )
    print(
        f"baseline: seed 001's way, one epoch {epoch:.0f} s; 15 epochs + the other stages ~ {projected:.0f} s "
        f"({projected / 60:.1f} min): the pipeline is {projected / stages['total']:.2f}x as fast"
    )


if __name__ == "__main__":
    main()
