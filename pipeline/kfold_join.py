"""The tool that joins a K-fold sweep's folds (pipeline/kfold.py) into out-of-sample probabilities for every training
image and ranks the training set's likely wrong labels with them, as the label_issues stage does a test set's.

`python -m pipeline.kfold_join <sweep folder>` writes into <sweep folder>/label_issues/ (or --out):
<dataset>_train.csv (the review queue: the label_issues.review images most likely wrong first, each with cleanlab's
`flagged` verdict, `index` its row in the official training file), <dataset>_train.pdf and label_issues.json (the
counts); and logs them to the sweep's parent MLflow run when the folder has its sweep.json.
`python -m pipeline.kfold_join <sweep> <sweep> … --out <folder>` averages several K-fold sweeps of the same training
images (other seeds or models), as a sweep's end averages its runs' test probabilities. Folds that do not cover the
training set exactly once, or were run with other settings than their sweep's others, are refused with one line
naming what is wrong, and nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import reports_user_errors
from pipeline.core.files import read_json, write_json
from pipeline.core.paths import CONF
from pipeline.data.datasets import display, load_dataset, prepared_path
from pipeline.figures.label_review import Findings, findings, issues_line, write_findings
from pipeline.scoring.label_quality import COUNTS_FILE, ProbabilitiesError, check_probabilities, label_issues
from pipeline.scoring.out_of_fold import FOLD_FILE, FoldsError, check_folds, join_folds, no_folds, read_fold
from pipeline.sweeps.callback import SWEEP_FILE


@dataclass(frozen=True)
class Joined:
    """One K-fold sweep's folds joined: a probability row for every training image it covers."""

    sweep: Path
    probs: np.ndarray
    labels: np.ndarray
    folds: int
    settings: dict[str, Any]  # what its folds ran with


def joined(sweep_dir: Path) -> Joined:
    """The sweep's folds read, checked against each other and the prepared training set, and joined."""
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
    return Joined(sweep_dir, probs, labels, len(found), settings)


def joined_findings(sweep_dirs: Sequence[Path]) -> tuple[Findings, dict[str, Any]]:
    """Each sweep's folds joined and, with several sweeps (other seeds, other models), their probabilities averaged;
    cleanlab's answer on them; and the settings the first sweep's folds ran with. Sweeps of other training images
    (another dataset or data.train_limit) are refused, naming the first that differs."""
    sweeps = [joined(d) for d in sweep_dirs]
    first = sweeps[0]
    settings = first.settings
    for j in sweeps[1:]:
        for key in ("data.name", "data.train_limit"):
            if j.settings[key] != settings[key]:
                raise FoldsError(
                    f"{j.sweep}: its folds ran with {key}={j.settings[key]}, those of {first.sweep} with "
                    f"{settings[key]} — only K-folds of the same training images are averaged"
                )
    name = settings["data.name"]
    ds = load_dataset(prepared_path(settings["paths.prepared"], name))
    n = len(first.labels)
    probs = np.mean([j.probs for j in sweeps], axis=0)
    how = f"out-of-fold probabilities, {first.folds} folds"
    if len(sweeps) > 1:
        how = f"out-of-fold probabilities of {len(sweeps)} K-fold sweeps averaged ({', '.join(str(d) for d in sweep_dirs)})"
    t = findings(
        f"{name}_train",
        f"Label review queue: {display(name)}, training set",
        f"Training set: {ds.source}; {how}",
        ds.x_train[:n],
        ds.train_rows[:n],
        ds.train_file,
        ds.class_names,
        probs,
        first.labels,
        label_issues(probs, first.labels, review_length(settings)),
    )
    return t, settings


def review_length(settings: dict[str, Any]) -> int:
    """The folds' label_issues.review; conf/'s for folds written before the setting existed (#32), which would
    otherwise have to be trained again for a setting that does not change them."""
    if "label_issues.review" in settings:
        return int(settings["label_issues.review"])
    from omegaconf import OmegaConf

    return int(OmegaConf.load(CONF / "config.yaml").label_issues.review)


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
    parser.add_argument(
        "sweeps", type=Path, nargs="+", help="the K-fold sweep's folder (multirun/<date>/<time>), or several"
    )
    parser.add_argument("--out", type=Path, help="folder to write to (default: <sweep>/label_issues, for one sweep)")
    args = parser.parse_args(argv)
    if len(args.sweeps) > 1 and args.out is None:
        raise FoldsError("several K-fold sweeps averaged have no folder of their own: give --out <folder>")
    t, settings = joined_findings(args.sweeps)  # everything checked before anything is written
    out = args.out or args.sweeps[0] / "label_issues"
    paths = write_findings(t, out, settings["label_issues.max_shown"], settings["label_issues.per_page"])
    write_json(out / COUNTS_FILE, {t.name: t.counts})
    paths.append(out / COUNTS_FILE)
    if len(args.sweeps) == 1 and (args.sweeps[0] / SWEEP_FILE).is_file():
        log_to_parent(args.sweeps[0], settings, paths, t.counts, t.name)
    print(issues_line(t, out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
