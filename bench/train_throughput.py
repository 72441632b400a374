"""Training throughput: the new default network against the old one (cnn3_bn), and each way of training, same run.

Default: the old and the new default network, each as `pipeline.train` trains it (augmentation, fused batch norm,
8 steps per execution, the own input pipeline), in the precision this CPU gets (`train.precision: auto`) and in
forced float32 (what a CPU without bfloat16 instructions gets), with the new/old ratio of images/s.
`--ladder`: the old default, one change at a time from a plain `model.fit` (#6's measurements, bench/RESULTS.md).

Each measurement runs in its own process (dtype policy and threads are process-wide) for the same number of timed
steps after a warm-up, and they take turns over several rounds so that a slow spell of the machine hits all of
them; the figure is the best round. Also printed: the machine, its peak FLOP/s by a large matmul in this run, and
each variant's achieved FLOP/s as a fraction of it. `ONEDNN_MAX_CPU_ISA=AVX2` in the environment stands in for an
AVX2-only CPU (bench/RESULTS.md says how closely).

    .venv/bin/python bench/train_throughput.py [--steps 160] [--rounds 2] [--ladder]   (needs data/prepared/mnist.npz)
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

from bench import old_default
from bench.machine import describe, peak_gflops

OLD_DEFAULT = old_default.overrides()
PIPELINE = {"augment": True, "fused": True, "spe": 8, "pipeline": True, "jit": False}
NETWORKS = {
    "old default (cnn3_bn), auto": {**PIPELINE, "precision": "auto", "overrides": OLD_DEFAULT},
    "new default, auto": {**PIPELINE, "precision": "auto", "overrides": []},
    "old default (cnn3_bn), float32": {**PIPELINE, "precision": "float32", "overrides": OLD_DEFAULT},
    "new default, float32": {**PIPELINE, "precision": "float32", "overrides": []},
}
BASE = {"augment": False, "fused": False, "precision": "float32", "spe": 1, "pipeline": False, "jit": False}
LADDER = {
    "baseline: fit numpy, fp32, no augmentation": BASE,
    "+ augmentation (the pipeline before #6)": {**BASE, "augment": True},
    "+ fused batch norm": {**BASE, "augment": True, "fused": True},
    "+ bfloat16 (precision: auto)": {**BASE, "augment": True, "fused": True, "precision": "auto"},
    "+ 8 steps per execution": {**BASE, "augment": True, "fused": True, "precision": "auto", "spe": 8},
    "+ own input pipeline = pipeline.train": {**PIPELINE, "precision": "auto"},
    "dropped: pipeline + XLA jit_compile": {**PIPELINE, "precision": "auto", "jit": True},
}
LADDER = {name: {**v, "overrides": OLD_DEFAULT} for name, v in LADDER.items()}
WARMUP = 16  # steps, a multiple of every steps-per-execution above


def load_conf(overrides: list[str]) -> dict:
    """The model, augmentation and training settings of conf/ composed with `overrides` (none: the default)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        composed = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    return {group: composed[group] for group in ("model", "augment", "train")}


def measure(variant: dict, steps: int) -> dict:
    """Images/s over `steps` timed training steps after a warm-up, in this process."""
    import keras
    import numpy as np

    from pipeline.core.cpu import cpu_flags
    from pipeline.data.datasets import load_dataset
    from pipeline.modeling.batches import batches
    from pipeline.modeling.fitting import compile_for_training
    from pipeline.modeling.flops import TRAINING_PASSES, forward_flops
    from pipeline.modeling.fused import with_fused_batch_norm
    from pipeline.modeling.models import build_model
    from pipeline.modeling.precision import resolve_precision

    conf = load_conf(variant["overrides"])
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
        "flops_per_image": TRAINING_PASSES * forward_flops(model),
        "batch_size": batch,
    }


def run_variant(name: str, variant: dict, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--variant", json.dumps(variant), "--steps", str(steps)],
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
    parser.add_argument("--ladder", action="store_true", help="the old default, one change at a time (#6)")
    parser.add_argument(
        "--network",
        action="append",
        metavar="OVERRIDES",
        help="instead of the defaults: a network to measure, as overrides ('model=compact model.stages=[[16],[32]]'); "
        "repeat for more, the first is the baseline",
    )
    parser.add_argument("--precision", default="float32", help="with --network: auto, float32 or mixed_bfloat16")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(json.loads(args.variant), args.steps)))
        return

    print(f"machine: {describe()}", flush=True)
    peaks = peak_gflops()
    print(
        "peak estimate, 4096x4096 matmul in TensorFlow: "
        + ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peaks.items()),
        flush=True,
    )
    variants = LADDER if args.ladder else NETWORKS
    if args.network:
        variants = {n: {**PIPELINE, "precision": args.precision, "overrides": n.split()} for n in args.network}
    best: dict[str, dict] = {}
    for r in range(args.rounds):
        for name, variant in variants.items():
            result = run_variant(name, variant, args.steps)
            print(f"  round {r + 1}: {name}: {result['images_per_second']:,.0f} images/s", flush=True)
            if name not in best or result["images_per_second"] > best[name]["images_per_second"]:
                best[name] = result
    print(f"\n{args.steps} timed steps per variant, best of {args.rounds} rounds\n")
    base = best[next(iter(variants))]
    header = "vs baseline" if args.ladder or args.network else "vs old"
    print(f"{'variant':<44} {'MFLOP/img':>9} {'batch':>5} {'images/s':>9} {header:>11} {'GFLOP/s':>8} {'of peak':>8}")
    for name, r in best.items():
        ips = r["images_per_second"]
        # the ladder's ratios are to its first step; the networks' to the old default in the same precision
        reference = base if args.ladder or args.network else best[name.replace("new default", "old default (cnn3_bn)")]
        achieved = ips * r["flops_per_image"] / 1e9
        peak = peaks["bf16" if r["precision"] == "mixed_bfloat16" else "fp32"]
        print(
            f"{name:<44} {r['flops_per_image'] / 3e6:9.1f} {r['batch_size']:5d} {ips:9,.0f} "
            f"{ips / reference['images_per_second']:10.2f}x {achieved:8,.0f} {achieved / peak:7.0%}"
        )
    print(
        "\n(MFLOP/img: forward, per image; GFLOP/s counts forward + backward. Of peak: against the fp32 matmul for "
        "float32 variants, the bf16 matmul for bfloat16 ones)"
    )


if __name__ == "__main__":
    main()
