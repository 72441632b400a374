"""The accuracy-per-FLOP frontier: every finished run of an MLflow experiment, grouped by variant over its seeds.

A variant is a run's network, augmentation and training settings (every param but the seed and the paths); per
variant: forward MFLOP per image, epochs, training TFLOP per run and its fraction of the old default's (cnn3_bn,
12 epochs: 114.5 TFLOP, counted from conf/model/cnn3_bn.yaml), the precision it trained in, seconds per epoch, and the MNIST and EMNIST-digits
accuracy as mean ± the 95% Student-t half-width over its seeds. Sorted by training FLOPs; the markdown table is
what docs/frontier.md keeps.

`--plot PATH` also draws the frontier: MNIST accuracy (mean over seeds, 95% interval) against training FLOPs.

    .venv/bin/python bench/frontier.py [--experiment frontier] [--min-seeds 1] [--plot docs/frontier.png]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from bench import old_default
from pipeline.modeling.flops import training_flops
from pipeline.scoring.stats import spread

VARIANT_PARAMS = ("model.", "augment.", "train.epochs", "train.batch_size", "train.learning_rate", "train.schedule")


ADDED_LATER = {"model.stage_dropout": "0.0"}  # compact's options added after runs were made: their value then


def variant_of(params: dict[str, str]) -> str:
    """What a run varied, written as overrides: model, augmentation and the training settings that shape it."""
    if params.get("model.name") == "compact":
        params = {**ADDED_LATER, **params}
    keys = sorted(k for k in params if k.startswith(VARIANT_PARAMS))
    return " ".join(f"{k}={params[k]}" for k in keys)


SHOWN = ("model.name", "model.stages", "model.dense_units", "model.head", "augment.name")
DEFAULTS = (
    "model.head=flatten",
    "model.dense_units=[]",
    "model.stage_dropout=0.0",
    "train.batch_size=128",
    "train.learning_rate=0.003",
    "train.schedule=one_cycle",
)


def short(params: dict[str, str]) -> str:
    """The variant as a reader tells it apart: the network, the policy and the training settings off the default."""
    shown = [
        f"{k}={params[k]}" for k in (*SHOWN, "model.dropout", "model.stage_dropout", *VARIANT_PARAMS[2:]) if k in params
    ]
    words = (s.split("=", 1)[1] if s.startswith(SHOWN) else s.split(".", 1)[1] for s in shown if s not in DEFAULTS)
    return " ".join(words)


def off_default(params: dict[str, str], key: str) -> bool:
    """Whether a run logged `key` at another value than the one DEFAULTS leaves unsaid."""
    return key in params and f"{key}={params[key]}" not in DEFAULTS


def label(params: dict[str, str]) -> str:
    """A short name for the picture: the stages as 16/32/64,64 (or the architecture), the head, policy, epochs."""
    if params["model.name"] == "compact":
        net = "/".join(stage.strip(" []").replace(" ", "") for stage in params["model.stages"][1:-1].split("],"))
        if off_default(params, "model.dense_units"):
            net += f" +dense{params['model.dense_units']}"
        if off_default(params, "model.stage_dropout"):
            net += f" +drop {params['model.stage_dropout']}"
    else:
        net = params["model.name"]
    policy = "" if params["augment.name"] == "standard" else f" {params['augment.name']}"
    recipe = "".join(
        f", {short}{params[key]}"
        for key, short in (("train.batch_size", "batch "), ("train.learning_rate", "lr "))
        if off_default(params, key)
    )
    return f"{net}{policy}, {params['train.epochs']} ep{recipe}"


OLD_NAME = old_default.MODEL  # the old default's point is named even with fewer seeds: it is the baseline


def fraction(share: float) -> str:
    """A share of the old default's FLOPs as a reader says it: 1/5.4 below it, 1.7× above."""
    return f"1/{1 / share:.1f}" if share <= 1 else f"{share:.1f}×"


def draw(points: list[tuple[float, list[float], str]], old: float, path: Path) -> None:
    """MNIST accuracy against a training's TFLOP, with the old default's FLOPs / 5 and / 8 and the 99.6% target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    placed: list[tuple[float, float]] = []  # where labels went, so that close points' labels stack, not overlap
    for flops, values, name in sorted(points, key=lambda p: -float(np.mean(p[1]))):
        s = spread(values)
        x, y = flops / 1e12, 100 * s.mean
        err = None if s.high is None else [[100 * (s.mean - s.low)], [100 * (s.high - s.mean)]]
        filled = len(values) >= 3
        ax.errorbar(
            x, y, yerr=err, fmt="o", capsize=3, mfc=None if filled else "white", color="C0" if filled else "0.5"
        )
        if not filled and not name.startswith(OLD_NAME):
            continue  # a one-seed screen: in the table, unnamed here, where long labels would bury the results
        label_y = y
        while any(abs(np.log(x / px)) < 0.9 and abs(label_y - py) < 0.028 for px, py in placed):
            label_y -= 0.028
        placed.append((x, label_y))
        left = x < old / 8e12  # below 1/8 of the old default, away from the crowd at 1/5: labelled on the left
        ax.annotate(
            f"{name} ({len(values)})",
            (x, y),
            xytext=(x / 1.05 if left else x * 1.05, label_y),
            fontsize=7,
            va="center",
            ha="right" if left else "left",
            arrowprops={"arrowstyle": "-", "color": "0.7", "lw": 0.5},
        )
    old /= 1e12
    for fraction, text in ((5, "1/5 of the old default"), (8, "1/8")):
        ax.axvline(old / fraction, color="C3", ls=":", lw=1)
        ax.text(old / fraction, ax.get_ylim()[0], f" {text}", color="C3", fontsize=7, va="bottom", rotation=90)
    ax.set_xscale("log")
    ax.axhline(99.6, color="C2", ls="--", lw=1)
    ax.text(0.01, 99.6, "99.6% target", color="C2", fontsize=7, va="bottom", transform=ax.get_yaxis_transform())
    lowest, highest = (f(flops for flops, _, _ in points) / 1e12 for f in (min, max))
    ax.set_xlim(lowest / 2.5, highest * 1.8)  # room for the labels of the first and the last point
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    sparse = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "235" else "")
    ax.xaxis.set_minor_formatter(sparse)  # 2, 3, 5, 20, 30, 50…: the others would run into each other
    ax.set_xlabel("training FLOPs per run (TFLOP, log scale)")
    ax.set_ylabel("MNIST test accuracy, % (mean, 95% interval over seeds)")
    ax.set_title("Accuracy per FLOP: filled = 3 seeds or more, hollow = fewer (seeds in brackets)", fontsize=10)
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


def old_default_flops() -> int:
    """The old default's training FLOPs, counted from its network as every run's are (114.5 TFLOP)."""
    from omegaconf import OmegaConf

    from pipeline.modeling.flops import forward_flops
    from pipeline.modeling.models import build_model

    network = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / f"{old_default.MODEL}.yaml"))
    forward = forward_flops(build_model(network, {"name": "none"}, 10))
    return training_flops(forward, old_default.TRAINING_IMAGES, old_default.EPOCHS)


def metric(runs: list, key: str) -> list[float]:
    """One metric of each run (MLflow run objects)."""
    return [r.data.metrics[key] for r in runs]


def mean_pm(values: list[float]) -> str:
    s = spread(values)
    half = "" if s.high is None else f" ± {100 * (s.high - s.mean):.2f}"
    return f"{100 * s.mean:.2f}%{half}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="frontier")
    parser.add_argument("--min-seeds", type=int, default=1)
    parser.add_argument("--plot", type=Path, help="draw the frontier into this PNG")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from pipeline.tracking.store import resolved_uri

    client = MlflowClient(resolved_uri("sqlite:///mlruns/mlflow.db")[0])
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {args.experiment!r} in {client.tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=5000)
    groups: dict[str, dict[str, object]] = defaultdict(dict)
    for run in sorted(runs, key=lambda r: r.info.start_time):  # a seed run again replaces the earlier run
        if "test.mnist.accuracy" in run.data.metrics and "train.flops" in run.data.metrics:
            groups[variant_of(run.data.params)][run.data.params["seed"]] = run
    old = old_default_flops()
    rows, points = [], []
    for by_seed in groups.values():
        members = list(by_seed.values())
        if len(members) < args.min_seeds:
            continue
        m = members[0].data
        flops, epochs = (
            float(np.mean(metric(members, "train.flops"))),
            float(np.mean(metric(members, "train.epochs_run"))),
        )
        mnist = metric(members, "test.mnist.accuracy")
        row = (
            f"| {short(m.params)} | {m.metrics['model.forward_flops'] / 1e6:.1f} | {epochs:.0f} | {flops / 1e12:.1f} "
            f"| {fraction(flops / old)} | {m.tags.get('train.precision_used', '?')} "
            f"| {np.mean(metric(members, 'train.train_seconds')) / epochs:.0f} | {len(members)} "
            f"| {mean_pm(mnist)} | {mean_pm(metric(members, 'test.emnist_digits.accuracy'))} |"
        )
        rows.append((flops, row))
        points.append((flops, mnist, label(m.params)))
    print(
        "| variant | MFLOP/img | epochs | TFLOP/run | of old default | precision | s/epoch | seeds | MNIST "
        "| EMNIST digits |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
    )
    for _, row in sorted(rows):
        print(row)
    if args.plot:
        draw(points, old, args.plot)


if __name__ == "__main__":
    main()
