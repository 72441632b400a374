"""Training throughput of the default network, each variant against the baseline measured in the same run.

DRAFT for issue #6: written in the first session and not yet run or checked; bench/RESULTS.md does not exist yet.

Baseline: a plain `model.fit` on numpy arrays, float32, no augmentation. Variants add what the pipeline does
(augmentation layers on the graph) and what may speed it up (bfloat16 mixed precision, a tf.data input
pipeline). Each variant runs in its own process (precision and thread settings are process-wide), for the same
number of steps at the same batch size; the figure is images per second over the timed steps.

    .venv/bin/python bench/train_throughput.py [--steps 150] [--batch 128]

Also printed: the machine, a large-matmul estimate of its peak FLOP/s, and the training step's achieved FLOP/s
as a fraction of that peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "baseline: fit numpy fp32, no augmentation": {"augment": False, "precision": "float32", "tfdata": False},
    "pipeline: fit numpy fp32, augmentation": {"augment": True, "precision": "float32", "tfdata": False},
    "augmentation + bfloat16": {"augment": True, "precision": "mixed_bfloat16", "tfdata": False},
    "augmentation + bfloat16 + tf.data": {"augment": True, "precision": "mixed_bfloat16", "tfdata": True},
}
CNN3 = {"name": "cnn3_bn", "filters": [32, 64, 128], "conv_dropout": 0.25, "dense_units": [256, 128],
        "dense_dropout": 0.4}
STANDARD = {"name": "standard", "rotation_degrees": 10, "zoom": 0.1, "shift": 0.1}


def machine() -> str:
    cpu = "unknown CPU"
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = "AVX512_BF16" if "avx512_bf16" in info else ""
    except (OSError, StopIteration):
        pass
    import tensorflow as tf

    return f"{cpu}, {os.cpu_count()} cores {flags}; Python {platform.python_version()}, TensorFlow {tf.__version__}"


def training_flops_per_image(model) -> float:
    """2 x multiply-adds of every conv and dense layer, forward; x3 for forward + backward (a standard estimate)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * k_h * k_w * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return 3.0 * total


def peak_gflops() -> dict[str, float]:
    """A 4096x4096 matmul, best of 3: numpy float32, and TensorFlow bfloat16."""
    import numpy as np
    import tensorflow as tf

    n = 4096
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = {}
    for label, fn in (
        ("fp32 (numpy)", lambda: a @ a),
        ("bf16 (TensorFlow)", lambda t=tf.cast(tf.constant(a), tf.bfloat16): tf.linalg.matmul(t, t).numpy()),
    ):
        fn()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        best[label] = 2 * n**3 / min(times) / 1e9
    return best


def measure(variant: dict, steps: int, batch: int) -> dict:
    """Images/s over `steps` timed steps after a warm-up, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.datasets import load_dataset
    from pipeline.models import build_model

    keras.mixed_precision.set_global_policy(variant["precision"])
    keras.utils.set_random_seed(0)
    ds = load_dataset(ROOT / "data" / "prepared" / "mnist.npz")
    warmup = 20
    n = (steps + warmup) * batch
    x, y = ds.x_train[:n].astype(np.float32), ds.y_train[:n]
    model = build_model(CNN3, STANDARD if variant["augment"] else {"name": "none"}, 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, b, logs=None):
            if b == warmup - 1:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    timer = Timer()
    if variant["tfdata"]:
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(tf.data.AUTOTUNE)
        model.fit(data, epochs=1, callbacks=[timer], verbose=0)
    else:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, callbacks=[timer], verbose=0)
    seconds = timer.end - timer.start
    return {"images_per_second": steps * batch / seconds, "flops_per_image": training_flops_per_image(model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(VARIANTS[args.variant], args.steps, args.batch)))
        return

    print(f"machine: {machine()}")
    peaks = peak_gflops()
    for label, value in peaks.items():
        print(f"peak estimate, 4096² matmul {label}: {value:,.0f} GFLOP/s")
    results = {}
    for name in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", name, "--steps", str(args.steps),
                              "--batch", str(args.batch)], capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results[next(iter(VARIANTS))]["images_per_second"]
    flops = results[next(iter(VARIANTS))]["flops_per_image"]
    print(f"\ntraining cost of the default network: {flops / 1e6:.0f} MFLOP per image (forward + backward)")
    print(f"batch {args.batch}, {args.steps} timed steps per variant\n")
    print(f"{'variant':<46} {'images/s':>9} {'ratio':>6} {'GFLOP/s':>8} {'of fp32 peak':>12}")
    for name, r in results.items():
        ips = r["images_per_second"]
        achieved = ips * flops / 1e9
        print(f"{name:<46} {ips:9,.0f} {ips / base:5.2f}x {achieved:8,.0f} {achieved / peaks['fp32 (numpy)']:11.0%}")


if __name__ == "__main__":
    main()
