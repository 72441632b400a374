"""How well the review queue finds wrong labels, with one model and with several models' probabilities averaged
(#32): of the queue's first 20/50/100 images, how many are among the model's errors, and, on MNIST, how many of
the labels a published human review confirmed wrong are in the first 100; and the ensemble's accuracy beside each
model's. Reads the predictions a seed sweep's jobs wrote (`<sweep folder>/<job>/predictions/<test set>.npz`), so it
trains nothing.

    .venv/bin/python bench/label_queue.py multirun/seeds-default   (needs data/prepared/)

The review: Northcutt, Athalye and Mueller, "Pervasive Label Errors in Test Sets Destabilize Machine Learning
Benchmarks" (NeurIPS 2021 Datasets and Benchmarks, arXiv:2103.14749). Five Mechanical Turk workers looked at each
of 100 MNIST test images that confident learning proposed; the study counts a label as wrong when fewer than 3 of
the 5 chose the given label, which makes the paper's 15. The votes: github.com/cleanlab/label-errors,
mturk/mnist_mturk.json (commit 6d5d6b31a13216290afc40e5c6319399c4d15c06); `id` is the row in t10k-images-idx3-ubyte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.data.datasets import load_dataset, prepared_path
from pipeline.scoring.label_quality import label_issues

CONFIRMED_MNIST = (947, 1621, 1901, 2130, 2462, 2597, 2654, 3520, 3558, 5937, 6651, 6783, 8527, 9679, 9729)
FIRST = (20, 50, 100)


def row(name: str, probs: np.ndarray, labels: np.ndarray, rows: np.ndarray, confirmed: set[int]) -> str:
    queue = label_issues(probs, labels, review=len(labels))  # every image, ranked
    wrong = probs.argmax(axis=1) != labels
    held = [int(wrong[queue.positions[:k]].sum()) for k in FIRST]
    rank = {int(rows[i]): k + 1 for k, i in enumerate(queue.positions)}
    found = [sum(rank[r] <= k for r in confirmed) for k in (100, 200)]
    review = f"{found[0]} / {found[1]}" if confirmed else "–"
    return (
        f"| {name} | {100 * (1 - wrong.mean()):.2f}% | {int(wrong.sum())} | {' / '.join(map(str, held))} | {review} | "
        f"{int(queue.flagged.sum())} | {', '.join(str(rank[r]) for r in sorted(confirmed, key=rank.get)) or '–'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--prepared", default="data/prepared")
    args = parser.parse_args()
    jobs = sorted(p.parent.parent for p in args.sweep.glob("*/predictions/mnist.npz"))
    for test_set in ("mnist", "emnist_digits"):
        ds = load_dataset(prepared_path(args.prepared, test_set))
        confirmed = set(CONFIRMED_MNIST) if test_set == "mnist" else set()
        print(f"\n**{test_set}** ({len(jobs)} runs of {args.sweep})\n")
        print(
            "| model | accuracy | errors | errors in the queue's first 20 / 50 / 100 | confirmed in the first 100 / 200 "
            "| flagged | each confirmed label's rank |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        all_probs = []
        for job in jobs:
            with np.load(job / "predictions" / f"{test_set}.npz") as z:
                probs, labels = z["probs"], z["y_true"]
            all_probs.append(probs)
            print(row(f"job {job.name}", probs, labels, ds.test_rows, confirmed))
        for k in range(2, len(jobs) + 1):
            name = f"jobs {', '.join(j.name for j in jobs[:k])} averaged"
            print(row(name, np.mean(all_probs[:k], axis=0), labels, ds.test_rows, confirmed))


if __name__ == "__main__":
    main()
