"""The short waits: `dvc repro` with nothing changed, the evaluate stage, and each entrypoint's import time.

Run in a repository where `dvc repro` has completed (it re-runs the evaluate stage, whose outputs come out the
same). Baselines measured in the same run:
- no-op `dvc repro` against `dvc version` (DVC's own start-up, the floor of any dvc command);
- prediction over the evaluation sets as the evaluate stage does it (the pipeline's input pipeline, fused
  batch norm) and through the input pipeline alone, against Keras's own numpy path (`model.predict(x)`), the
  same model, the same batch size, taking turns;
- each entrypoint's import against `import keras` (TensorFlow's start-up, which every stage but fetch pays);
- a process's exit after importing the evaluate stage, with the final garbage collection skipped
  (pipeline/core/shutdown.py) against Python's default exit.

    .venv/bin/python bench/stages.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the stages' `python` is this one
ENTRYPOINTS = ["fetch", "ingest", "train", "evaluate", "report", "experiment", "predict"]


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall seconds of a command run `repeats` times (it must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return statistics.median(times)


def predict_rates(repeats: int) -> dict[str, float]:
    """Images/s predicting the configured test sets, Keras's numpy path vs the pipeline's; best of `repeats`."""
    import keras
    import numpy as np
    from omegaconf import OmegaConf

    from pipeline.data.datasets import load_dataset, prepared_path
    from pipeline.modeling.batches import batches
    from pipeline.modeling.fused import fused_copy

    params = OmegaConf.load(ROOT / "params.yaml")
    model = keras.models.load_model(ROOT / params.paths.models / "model.keras")
    fused = fused_copy(model)
    x = np.concatenate(
        [load_dataset(prepared_path(ROOT / params.paths.prepared, name)).x_test for name in params.data.test_sets]
    )
    size = params.evaluate.batch_size
    ways = {
        "keras numpy": lambda: model.predict(x.astype(np.float32), batch_size=size, verbose=0),
        "pipeline": lambda: model.predict(batches(x, batch_size=size), verbose=0),
        "pipeline fused": lambda: fused.predict(batches(x, batch_size=size), verbose=0),
    }
    best = dict.fromkeys(ways, 0.0)
    for way in ways.values():
        way()  # trace once
    for _ in range(repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            best[name] = max(best[name], len(x) / (time.perf_counter() - start))
    return {**best, "images": len(x)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--predict-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.predict_only:
        print(json.dumps(predict_rates(args.repeats)))
        return

    print(f"machine: {describe()}", flush=True)
    dvc = str(BIN / "dvc")
    status = subprocess.run([dvc, "status", "--quiet"], cwd=ROOT, env=ENV, check=False)
    if status.returncode != 0:
        raise SystemExit("the pipeline is not up to date: run `dvc repro` first (a no-op is what is measured)")

    floor = wall([dvc, "version"], args.repeats)
    noop = wall([dvc, "repro"], args.repeats)
    print(
        f"\nno-op `dvc repro`: {noop:.2f} s (goal <= 2 s); `dvc version` {floor:.2f} s: "
        f"{noop / floor:.2f}x DVC's start-up",
        flush=True,
    )

    evaluate = wall([dvc, "repro", "--force", "--single-item", "evaluate"], max(1, args.repeats - 1))
    out = subprocess.run(
        [sys.executable, __file__, "--predict-only", "--repeats", str(args.repeats)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rates = json.loads(out.stdout.strip().splitlines()[-1])
    base = rates["keras numpy"]
    print(
        f"evaluate stage (`dvc repro -f -s evaluate`): {evaluate:.1f} s (goal <= 20 s) for {rates['images']:,} "
        f"images; predicting, images/s: Keras's numpy path {base:,.0f}, input pipeline {rates['pipeline']:,.0f} "
        f"({rates['pipeline'] / base:.2f}x), + fused batch norm (the stage's way) {rates['pipeline fused']:,.0f} "
        f"({rates['pipeline fused'] / base:.2f}x)",
        flush=True,
    )

    python = sys.executable
    keras_import = wall([python, "-c", "import keras"], args.repeats)
    print(f"\nimport time (median of {args.repeats}); `import keras` alone: {keras_import:.2f} s")
    for name in ENTRYPOINTS:
        seconds = wall([python, "-c", f"import pipeline.{name}"], args.repeats)
        print(f"  pipeline.{name:<11} {seconds:5.2f} s  {seconds / keras_import:5.2f}x `import keras`", flush=True)

    plain_exit = wall([python, "-c", "import pipeline.evaluate"], args.repeats)
    skip = "from pipeline.core.shutdown import skip_final_collection; skip_final_collection(); "
    quick_exit = wall([python, "-c", skip + "import pipeline.evaluate"], args.repeats)
    print(
        f"\nimport pipeline.evaluate and exit: {quick_exit:.2f} s skipping the final collection vs "
        f"{plain_exit:.2f} s by default: {plain_exit - quick_exit:.2f} s saved, {plain_exit / quick_exit:.2f}x",
        flush=True,
    )


if __name__ == "__main__":
    main()
