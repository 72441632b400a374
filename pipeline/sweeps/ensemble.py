"""An ensemble's label audit and scores: finished runs' logged predictions (evaluate's `predictions/<test set>.npz`)
averaged per test set (pipeline/scoring/ensemble.py), scored as one run's are, and their review queue written as the
label_issues stage writes one model's — into a folder and, for a sweep, onto its parent run. A sweep's end does it
(pipeline/sweeps/callback.py), and `python -m pipeline.ensemble` for any list of finished runs."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException

from pipeline.core.errors import UserError
from pipeline.core.files import write_json
from pipeline.data.datasets import display, load_dataset, prepared_path
from pipeline.figures.label_review import Findings, findings, issues_line, write_findings
from pipeline.scoring.comparison import EnsembleResult
from pipeline.scoring.ensemble import EnsembleError, Member, averaged, ensemble_scores
from pipeline.scoring.label_quality import COUNTS_FILE, test_set_issues
from pipeline.sweeps.results import sweep_runs, without_download_bars

SCORES_FILE = "ensemble.json"  # beside label_issues.json: the averaged probabilities' scores per test set
ARTIFACTS = "ensemble"  # the parent run's folder of them


@dataclass(frozen=True)
class AuditSettings:
    """What writing the review queues needs: conf's `label_issues` and where the prepared test sets are."""

    prepared: str
    review: int
    max_shown: int
    per_page: int


@dataclass(frozen=True)
class Ensemble:
    """An ensemble's answer per test set."""

    scores: dict[str, dict[str, float]]  # the averaged probabilities' accuracy, loss, …
    single: dict[str, dict[str, float]]  # the members' own accuracy and loss, their mean
    counts: dict[str, dict[str, float]]  # its review queue's
    queues: tuple[Findings, ...]


def members_of(client: Any, runs: Sequence[Any], test_set: str, folder: Path, prepared: str) -> list[Member]:
    """Of the runs (MLflow's, as `get_run` gives them), those that logged predictions for `test_set`, as members."""

    @cache
    def class_names(data_name: str) -> tuple[str, ...]:
        return load_dataset(prepared_path(prepared, data_name)).class_names

    found = []
    for run in runs:
        target = folder / run.info.run_id
        target.mkdir(parents=True, exist_ok=True)
        try:
            path = client.download_artifacts(run.info.run_id, f"predictions/{test_set}.npz", str(target))
        except (MlflowException, OSError):  # a run that did not evaluate this test set
            continue
        with np.load(path) as z:
            probs, labels = z["probs"], z["y_true"]
        name = run.info.run_name or run.info.run_id
        source = run.data.tags.get(f"dataset.test.{test_set}", "")
        if "data.name" not in run.data.params:
            raise EnsembleError(f"run {name} has no parameter data.name: its model's classes are not known")
        found.append(Member(name, source, class_names(run.data.params["data.name"]), labels, probs))
    return found


def test_sets_evaluated(runs: Sequence[Any], preferred: Sequence[str]) -> list[str]:
    """The test sets the runs have scores of: `preferred`'s first, in order, then any other."""
    found = {k.split(".")[1] for r in runs for k in r.data.metrics if k.startswith("test.") and k.endswith(".accuracy")}
    return [t for t in preferred if t in found] + sorted(found - set(preferred))


def single_scores(runs: Sequence[Any], test_set: str) -> dict[str, float]:
    """The members' own accuracy and loss on `test_set`, the mean over those that logged them."""
    out = {}
    for score in ("accuracy", "loss"):
        values = [
            r.data.metrics[f"test.{test_set}.{score}"] for r in runs if f"test.{test_set}.{score}" in r.data.metrics
        ]
        if values:
            out[f"{score}_mean"] = float(np.mean(values))
    return out


def ensemble_queue(test_set: str, members: Sequence[Member], settings: AuditSettings) -> Findings:
    """The members' averaged probabilities on `test_set`, checked against its prepared file, and their queue."""
    probs = averaged(test_set, members)
    labels = members[0].labels
    ds = load_dataset(prepared_path(settings.prepared, test_set))
    where = f"the ensemble of {len(members)} runs on {test_set}"
    issues = test_set_issues(test_set, ds, probs, labels, where, settings.review)
    n = len(labels)
    return findings(
        test_set,
        f"Label review queue: {display(test_set)}, {len(members)} models averaged",
        f"Test set: {ds.source}; the probabilities of {len(members)} runs averaged: {', '.join(m.run for m in members)}",
        ds.x_test[:n], ds.test_rows[:n], ds.test_file, ds.class_names, probs, labels, issues,
    )  # fmt: skip


def ensemble_of(client: Any, run_ids: Sequence[str], preferred: Sequence[str], settings: AuditSettings) -> Ensemble:
    """The runs' ensemble on every test set they evaluated, everything read and checked (nothing written): runs that
    did not finish, or cannot be averaged, are refused (EnsembleError)."""
    runs = [client.get_run(run_id) for run_id in run_ids]
    for r in runs:
        if r.info.status != "FINISHED":
            raise EnsembleError(
                f"run {r.info.run_name or r.info.run_id} is {r.info.status}: only finished runs are averaged"
            )
    queues, scores, single = [], {}, {}
    with tempfile.TemporaryDirectory() as folder, without_download_bars():
        for test_set in test_sets_evaluated(runs, preferred):
            members = members_of(client, runs, test_set, Path(folder) / test_set, settings.prepared)
            if not members:
                continue
            t = ensemble_queue(test_set, members, settings)
            queues.append(t)
            scores[test_set] = {k: v for k, v in ensemble_scores(t.probs, t.labels).items() if k != "images"}
            scores[test_set]["runs"] = len(members)
            single[test_set] = single_scores(runs, test_set)
    if not queues:
        raise EnsembleError("none of the runs logged predictions (predictions/<test set>.npz) to average")
    return Ensemble(scores, single, {t.name: t.counts for t in queues}, tuple(queues))


def write_ensemble(
    e: Ensemble, folder: Path, settings: AuditSettings, client: Any = None, parent: str | None = None
) -> list[str]:
    """The ensemble's review queues (<test set>.csv, .pdf), their counts (label_issues.json) and its scores
    (ensemble.json) in `folder`, and, given a parent run, as its artifacts (ensemble/) and metrics
    (`ensemble.<test set>.accuracy`, …, `label_issues.ensemble.<test set>.queue_errors`, …); returns the lines to
    print."""
    from mlflow.entities import Metric

    paths = []
    lines = []
    for t in e.queues:
        paths += write_findings(t, folder, settings.max_shown, settings.per_page)
        lines.append(issues_line(t, folder).replace("label_issues:", "ensemble:", 1))
    write_json(folder / COUNTS_FILE, e.counts)
    write_json(folder / SCORES_FILE, {t: {**e.scores[t], "single": e.single[t]} for t in e.scores})
    paths += [folder / COUNTS_FILE, folder / SCORES_FILE]
    for test_set, s in e.scores.items():
        single = e.single[test_set].get("accuracy_mean")
        beside = f" (the mean single run: {single:.2%})" if single is not None else ""
        lines.append(
            f"ensemble: {test_set}: runs averaged {s['runs']}, accuracy {s['accuracy']:.2%}{beside}, loss {s['loss']:.4f}"
        )
    if parent is not None:
        for path in paths:
            client.log_artifact(parent, str(path), ARTIFACTS)
        now = int(time.time() * 1000)
        values = {f"ensemble.{t}.{k}": v for t, s in e.scores.items() for k, v in s.items()}
        values |= {f"ensemble.{t}.single_{k}": v for t, s in e.single.items() for k, v in s.items()}
        values |= {
            f"label_issues.ensemble.{t}.{k}": v for t, c in e.counts.items() for k, v in c.items() if k != "images"
        }
        client.log_batch(parent, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
    return lines


def audit_settings(cfg: Mapping[str, Any]) -> AuditSettings:
    """From a composed config: its `paths.prepared` and `label_issues`."""
    li = cfg["label_issues"]
    return AuditSettings(str(cfg["paths"]["prepared"]), int(li["review"]), int(li["max_shown"]), int(li["per_page"]))


def ensemble_results(e: Ensemble) -> tuple[EnsembleResult, ...]:
    """The ensemble as rows of a sweep's comparison."""
    return tuple(
        EnsembleResult(
            test_set=t,
            runs=int(s["runs"]),
            accuracy=s["accuracy"],
            loss=s["loss"],
            test_interval=(s["accuracy_ci_low"], s["accuracy_ci_high"]),
            single_accuracy=e.single[t].get("accuracy_mean"),
            single_loss=e.single[t].get("loss_mean"),
        )
        for t, s in e.scores.items()
    )


def sweep_ensemble(client: Any, parent: str, cfg: Mapping[str, Any], sweep_dir: Path) -> tuple[EnsembleResult, ...]:
    """At a sweep's end: its finished runs averaged, their review queues and scores written into
    <sweep folder>/ensemble/ and onto the parent run; returns the comparison's rows. Fewer than two finished runs that
    evaluated a test set (a K-fold's folds evaluate none) make no ensemble; runs that cannot be averaged are said so
    in one line, and the sweep's comparison goes on without it."""
    runs = [r for r in sweep_runs(client, parent) if r.status == "FINISHED"]
    if len(runs) < 2 or not any(k.startswith("test.") for r in runs for k in r.metrics):
        return ()
    settings = audit_settings(cfg)
    try:
        e = ensemble_of(client, [r.run_id for r in runs], list(cfg["data"]["test_sets"]), settings)
    except (EnsembleError, UserError, FileNotFoundError) as err:
        print(f"sweep: no ensemble: {err}", file=sys.stderr, flush=True)
        return ()
    for line in write_ensemble(e, sweep_dir / ARTIFACTS, settings, client, parent):
        print(f"sweep: {line}", flush=True)
    return ensemble_results(e)


def logged_ensembles(client: Any, parent: str) -> tuple[EnsembleResult, ...]:
    """The ensemble rows a sweep's end logged to its parent run (`ensemble.<test set>.*`), for a comparison written
    again (`python -m pipeline.compare`); none when it logged none."""
    m = client.get_run(parent).data.metrics
    test_sets = sorted({k.split(".")[1] for k in m if k.startswith("ensemble.") and k.endswith(".accuracy")})
    return tuple(
        EnsembleResult(
            test_set=t,
            runs=int(m[f"ensemble.{t}.runs"]),
            accuracy=m[f"ensemble.{t}.accuracy"],
            loss=m[f"ensemble.{t}.loss"],
            test_interval=(m[f"ensemble.{t}.accuracy_ci_low"], m[f"ensemble.{t}.accuracy_ci_high"]),
            single_accuracy=m.get(f"ensemble.{t}.single_accuracy_mean"),
            single_loss=m.get(f"ensemble.{t}.single_loss_mean"),
        )
        for t in test_sets
    )
