"""Training throughput of the default network: each way of training it against a plain `model.fit`, same run.

Baseline: `model.fit` on numpy arrays, float32, Keras's own layers, no augmentation, the default batch size.
Then, one change at a time, what the pipeline does: augmentation on, TensorFlow's fused batch norm, bfloat16
(where the CPU has it), several steps per execution, and the pipeline's own input pipeline; the last variant
is exactly `pipeline.train` with conf/ as committed. XLA (`jit_compile`) is measured as the one that was dropped.

Each variant runs in its own process (dtype policy and threads are process-wide) for the same number of timed
steps after a warm-up, and the variants take turns over several rounds so that a slow spell of the machine hits
all of them; the figure is the best round. Also printed: the machine, its peak FLOP/s by a large matmul in this
run, and each variant's achieved FLOP/s as a fraction of it.

    .venv/bin/python bench/train_throughput.py [--steps 160] [--rounds 2]   (needs data/prepared/mnist.npz)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe, peak_gflops

BASE = {"augment": False, "fused": False, "precision": "float32", "spe": 1, "pipeline": False, "jit": False}
VARIANTS = {
    "baseline: fit numpy, fp32, no augmentation": BASE,
    "+ augmentation (the pipeline before #6)": {**BASE, "augment": True},
    "+ fused batch norm": {**BASE, "augment": True, "fused": True},
    "+ bfloat16 (precision: auto)": {**BASE, "augment": True, "fused": True, "precision": "auto"},
    "+ 8 steps per execution": {**BASE, "augment": True, "fused": True, "precision": "auto", "spe": 8},
    "+ own input pipeline = pipeline.train": {
        "augment": True,
        "fused": True,
        "precision": "auto",
        "spe": 8,
        "pipeline": True,
        "jit": False,
    },
    "dropped: pipeline + XLA jit_compile": {
        "augment": True,
        "fused": True,
        "precision": "auto",
        "spe": 8,
        "pipeline": True,
        "jit": True,
    },
}
WARMUP = 16  # steps, a multiple of every steps-per-execution above


def load_conf() -> dict:
    """The default model, augmentation and training settings: params.yaml, the composition of conf/."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml"))
    return {group: params[group] for group in ("model", "augment", "train")}


def measure(variant: dict, steps: int) -> dict:
    """Images/s over `steps` timed training steps after a warm-up, in this process."""
    import keras
    import numpy as np

    from pipeline.batches import batches
    from pipeline.datasets import load_dataset
    from pipeline.fused import with_fused_batch_norm
    from pipeline.models import build_model
    from pipeline.precision import cpu_flags, resolve_precision
    from pipeline.train import compile_for_training

    conf = load_conf()
    train_cfg = {**conf["train"], "steps_per_execution": variant["spe"], "schedule": "plateau"}
    batch = train_cfg["batch_size"]
    precision = resolve_precision(variant["precision"], cpu_flags())
    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    ds = load_dataset(ROOT / "data" / "prepared" / "mnist.npz")
    n = (steps + WARMUP) * batch
    x, y = ds.x_train[:n], ds.y_train[:n]
    model = build_model(conf["model"], conf["augment"] if variant["augment"] else {"name": "none"}, 10)
    if variant["fused"]:
        model = with_fused_batch_norm(model)
    compile_for_training(model, train_cfg, len(x))  # Adam at a constant rate; the schedule costs nothing
    if variant["jit"]:
        model.jit_compile = True

    marks: list[float] = []

    class Marks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch_index, logs=None):
            marks.append(time.perf_counter())  # called once per execution of `spe` steps

    if variant["pipeline"]:
        model.fit(batches(x, y, batch_size=batch, shuffle_seed=0), epochs=1, callbacks=[Marks()], verbose=0)
    else:
        model.fit(x.astype(np.float32), y, batch_size=batch, epochs=1, callbacks=[Marks()], verbose=0)
    first = WARMUP // variant["spe"] - 1
    seconds = marks[-1] - marks[first]
    images = (len(marks) - 1 - first) * variant["spe"] * batch
    return {
        "images_per_second": images / seconds,
        "precision": precision,
        "flops_per_image": training_flops_per_image(model),
    }


def training_flops_per_image(model) -> float:
    """Forward multiply-adds x 2 of every conv and dense layer, x 3 for forward + backward (the usual estimate)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            total += 2 * h * w * k_h * k_w * layer.input.shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return 3.0 * total


def run_variant(name: str, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--variant", name, "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"variant {name!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=160, help="timed training steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(VARIANTS[args.variant], args.steps)))
        return

    print(f"machine: {describe()}", flush=True)
    peaks = peak_gflops()
    print(
        "peak estimate, 4096x4096 matmul in TensorFlow: "
        + ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peaks.items()),
        flush=True,
    )
    best: dict[str, dict] = {}
    for r in range(args.rounds):
        for name in VARIANTS:
            result = run_variant(name, args.steps)
            print(f"  round {r + 1}: {name}: {result['images_per_second']:,.0f} images/s", flush=True)
            if name not in best or result["images_per_second"] > best[name]["images_per_second"]:
                best[name] = result
    base = best[next(iter(VARIANTS))]
    flops = base["flops_per_image"]
    print(
        f"\ndefault network: {flops / 1e6:.0f} MFLOP per training image (forward + backward); batch "
        f"{load_conf()['train']['batch_size']}, {args.steps} timed steps, best of {args.rounds} rounds\n"
    )
    print(f"{'variant':<44} {'images/s':>9} {'vs baseline':>11} {'GFLOP/s':>8} {'of peak':>8}")
    for name, r in best.items():
        ips = r["images_per_second"]
        achieved = ips * flops / 1e9
        peak = peaks["bf16" if r["precision"] == "mixed_bfloat16" else "fp32"]
        print(
            f"{name:<44} {ips:9,.0f} {ips / base['images_per_second']:10.2f}x {achieved:8,.0f} {achieved / peak:7.0%}"
        )
    print("\n(of peak: against the fp32 matmul for float32 variants, the bf16 matmul for bfloat16 ones)")


if __name__ == "__main__":
    main()
