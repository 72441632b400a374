"""The tool that joins a K-fold sweep's folds (pipeline/kfold.py) into out-of-sample probabilities for every training
image and ranks the training set's likely wrong labels with them, as the label_issues stage does a test set's.

`python -m pipeline.kfold_join <sweep folder>` writes into <sweep folder>/label_issues/ (or --out):
<dataset>_train.csv (the review queue: the label_issues.review images most likely wrong first, each with cleanlab's
`flagged` verdict, `index` its row in the official training file),
<dataset>_train.pdf and label_issues.json (the counts); and logs them to the sweep's parent MLflow run when the
folder has its sweep.json. Folds that do not cover the training set exactly once, or were run with other settings,
are refused with one line naming what is wrong, and nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import reports_user_errors
from pipeline.core.files import read_json, write_json
from pipeline.data.datasets import display, load_dataset, prepared_path
from pipeline.figures.label_review import Findings, findings, issues_line, write_findings
from pipeline.scoring.label_quality import COUNTS_FILE, ProbabilitiesError, check_probabilities, label_issues
from pipeline.scoring.out_of_fold import FOLD_FILE, FoldsError, check_folds, join_folds, no_folds, read_fold
from pipeline.sweeps.callback import SWEEP_FILE


def joined_findings(sweep_dir: Path) -> tuple[Findings, dict[str, Any]]:
    """The sweep's folds read, checked against each other and the prepared training set, joined, and cleanlab's
    answer on them; and the settings the folds ran with."""
    if not sweep_dir.is_dir():
        raise FoldsError(f"{sweep_dir}: no such folder — pass the K-fold sweep's folder (it prints it at its start)")
    found = [read_fold(path) for path in sorted(sweep_dir.rglob(FOLD_FILE))]
    if not found:
        raise no_folds(str(sweep_dir))
    settings = found[0].settings
    name = settings["data.name"]
    ds = load_dataset(prepared_path(settings["paths.prepared"], name))
    n = len(ds.y_train[: settings["data.train_limit"]])
    check_folds(found, n, str(sweep_dir))
    for p in found:
        check_probabilities(p.probs, p.labels, ds.num_classes, p.source)
        if not np.array_equal(p.labels, ds.y_train[p.positions]):
            raise ProbabilitiesError(
                f"{p.source}: its labels are not those of {prepared_path(settings['paths.prepared'], name)}'s "
                "training images — the prepared data changed since the folds ran: run them again"
            )
    probs, labels = join_folds(found, n, str(sweep_dir))
    t = findings(
        f"{name}_train",
        f"Label review queue: {display(name)}, training set",
        f"Training set: {ds.source}; out-of-fold probabilities, {len(found)} folds",
        ds.x_train[:n],
        ds.train_rows[:n],
        ds.train_file,
        ds.class_names,
        probs,
        labels,
        label_issues(probs, labels, settings["label_issues.review"]),
    )
    return t, settings


def log_to_parent(
    sweep_dir: Path, settings: dict[str, Any], paths: Sequence[Path], counts: dict[str, float], name: str
) -> None:
    """The join's files and counts on the sweep's parent run, beside its folds' children."""
    import mlflow

    from pipeline.tracking.store import connect

    connect({k.removeprefix("tracking."): v for k, v in settings.items() if k.startswith("tracking.")})
    client = mlflow.MlflowClient()
    parent = read_json(sweep_dir / SWEEP_FILE)["parent_run_id"]
    for path in paths:
        client.log_artifact(parent, str(path), "label_issues")
    for k, v in counts.items():
        if k != "images":
            client.log_metric(parent, f"label_issues.{name}.{k}", v)


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.kfold_join", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="the K-fold sweep's folder (multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, help="folder to write to (default: <sweep>/label_issues)")
    args = parser.parse_args(argv)
    t, settings = joined_findings(args.sweep)  # everything checked before anything is written
    out = args.out or args.sweep / "label_issues"
    paths = write_findings(t, out, settings["label_issues.max_shown"], settings["label_issues.per_page"])
    write_json(out / COUNTS_FILE, {t.name: t.counts})
    paths.append(out / COUNTS_FILE)
    if (args.sweep / SWEEP_FILE).is_file():
        log_to_parent(args.sweep, settings, paths, t.counts, t.name)
    print(issues_line(t, out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
