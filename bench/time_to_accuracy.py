"""Time from nothing to a trained, evaluated and reported default model: `dvc repro` in a fresh clone.

Clones the repository's HEAD into a temporary folder and runs `dvc repro` there with this environment's
Python, printing each stage's wall time, the total and the test accuracies (#20's goal: <= 8 minutes on an
AVX2-only CPU, >= 99.6% on MNIST). Baseline in the same run: one epoch of the old default (bench/old_default.py:
`model=cnn3_bn augment=standard train.epochs=1`), timed by the train stage in the clone and projected to its 12
epochs plus the other stages of this run (its evaluation would take longer: the projection flatters it).

`--float32` trains both in float32 (the clone's params.yaml), as a CPU without bfloat16 instructions does.
`ONEDNN_MAX_CPU_ISA=AVX2` in the environment stands in for an AVX2-only CPU (`train.precision: auto` is then
float32 too; bench/RESULTS.md says how closely it stands in).

    HWLAB_DATA_MIRROR=../shared/data .venv/bin/python bench/time_to_accuracy.py [--float32]
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

from bench import old_default
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


def force_float32(clone: Path) -> None:
    """The clone's params.yaml (what `dvc repro` reads) with train.precision: float32."""
    params = clone / "params.yaml"
    text = params.read_text()
    forced = re.sub(r"(?m)^(  precision: )\S+", r"\1float32", text)
    if forced == text:
        raise SystemExit(f"{params}: no train.precision to force")
    params.write_text(forced)


def old_default_epoch(clone: Path, env: dict[str, str], float32: bool) -> float:
    """Seconds of one training epoch of the old default (from the train stage's own timing)."""
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        *old_default.overrides(epochs=1),
        *(["train.precision=float32"] if float32 else []),
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
    parser.add_argument("--float32", action="store_true", help="train in float32, whatever the CPU offers")
    args = parser.parse_args()
    print(f"machine: {describe()}", flush=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with (
        contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="hwlab-bench-")
    ) as folder:
        clone = Path(folder) / "repo" if not args.keep else Path(folder)
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        if args.float32:
            force_float32(clone)
        print(f"dvc repro in a fresh clone of HEAD ({clone}){', float32' if args.float32 else ''}:", flush=True)
        stages = repro(clone, env)
        test = json.loads((clone / "metrics" / "test.json").read_text())
        epoch = old_default_epoch(clone, env, args.float32)
    others = stages["total"] - stages["train"]
    projected = others + old_default.EPOCHS * epoch
    accuracies = ", ".join(f"{name} {m['accuracy']:.2%}" for name, m in test.items())
    print(f"\ntotal {stages['total']:.0f} s ({stages['total'] / 60:.1f} min); test accuracy: {accuracies}")
    print(
        f"baseline: the old default (cnn3_bn), one epoch {epoch:.0f} s; {old_default.EPOCHS} epochs + the other "
        f"stages ~ {projected:.0f} s ({projected / 60:.1f} min): the new default is "
        f"{projected / stages['total']:.2f}x as fast"
    )


if __name__ == "__main__":
    main()
