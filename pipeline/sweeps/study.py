"""A search's Optuna study and its parent MLflow run: where the study is stored (beside the MLflow store), what it
is called, how it samples and prunes, how much of its budget is spent, and what the parent run shows of it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.core.errors import UserError
from pipeline.core.metric_direction import higher_is_better
from pipeline.sweeps.search_space import as_overrides
from pipeline.tracking import runs, store

DONE = (TrialState.COMPLETE, TrialState.PRUNED)  # what the budget counts: a failed or killed trial is not spent
SETTINGS_ATTR = "settings"  # the study's user attribute: the settings its trials share, to refuse a different search
PARENT_ATTR = "mlflow_parent_run_id"
RUN_ATTR = "mlflow_run_id"  # a trial's user attribute: its training's run


def storage_url(tune_cfg: Mapping[str, Any], tracking_cfg: Mapping[str, Any]) -> str:
    """`tune.storage`, or an SQLite file `optuna.db` beside the embedded MLflow store; a tracking server has no
    such folder here, so then the study needs its own database (the team's: docs/scaling.md)."""
    if tune_cfg["storage"]:
        return tune_cfg["storage"]
    mlflow_file = store.embedded_file(tracking_cfg["uri"])
    if mlflow_file is None:
        raise UserError(
            "tune.storage=null: MLflow's store is a server, so the study has no folder beside it — set tune.storage "
            "to an SQLAlchemy URL every search process reaches (e.g. the team's PostgreSQL)"
        )
    mlflow_file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{mlflow_file.parent / 'optuna.db'}"


def study_name(cfg: Mapping[str, Any], variant: str | None = None) -> str:
    """`tune.study`, or `<search>-<dataset>`, and in a search of several variants the variant's values too
    (`default-mnist-model_plain3`): a name that `tune.best_of=` takes on the command line as it is."""
    if cfg["tune"]["study"]:
        return cfg["tune"]["study"]
    base = f"{cfg['search']['name']}-{cfg['data']['name']}"
    return f"{base}-{re.sub(r'[^A-Za-z0-9._-]+', '_', variant)}" if variant else base


def shared_settings(config: Mapping[str, Any], searched: list[str]) -> dict[str, Any]:
    """The settings every trial of a study shares: all but the searched ones, the budget and the folders."""
    skip = ("tune.", "paths.", "hydra.")
    return {k: v for k, v in runs.flatten(config).items() if k not in searched and not k.startswith(skip)}


def pruner(tune_cfg: Mapping[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    """`tune.pruner`, never before epoch `tune.prune_after`: early epochs of a one-cycle schedule rank trials by
    their warm-up (a larger batch starts slower), not by where they end (seen: 5 of 8 MNIST trials pruned after
    epoch 1 when pruning began there)."""
    first = tune_cfg["prune_after"]
    if tune_cfg["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune_cfg["startup_trials"], n_warmup_steps=first)
    if tune_cfg["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min(first, epochs), max_resource=epochs)
    return optuna.pruners.NopPruner()


def open_study(config: Mapping[str, Any], searched: list[str], url: str, name: str) -> optuna.Study:
    """The study of this search, made or resumed (`load_if_exists`): TPE, seeded from `seed`, the trials already
    run (a resumed search does not draw its first trials' values again) and the worker, the configured pruner, and the
    direction of `train.monitor`, in the storage at `url`. A study of other settings is refused: its trials could
    not be compared."""
    monitor = config["train"]["monitor"]
    study = optuna.create_study(
        storage=url,
        study_name=name,
        direction="maximize" if higher_is_better(monitor) else "minimize",
        pruner=pruner(config["tune"], config["train"]["epochs"]),
        load_if_exists=True,
    )
    # Parallel workers opening it at once must not draw the same values: each its own stream.
    study.sampler = optuna.samplers.TPESampler(
        seed=config["seed"] + len(study.trials) + 1000 * config["tune"]["worker"]
    )
    settings = shared_settings(config, searched)
    before = study.user_attrs.get(SETTINGS_ATTR)
    if before is None:
        study.set_user_attr(SETTINGS_ATTR, json.loads(json.dumps(settings, default=str)))
    elif before != json.loads(json.dumps(settings, default=str)):
        differ = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        raise UserError(
            f"study {name} in {url} searched with other settings ({', '.join(differ[:5])}"
            f"{', …' if len(differ) > 5 else ''}) — run it with the same settings to resume it, or name a new study "
            "with tune.study=<name>"
        )
    return study


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state: complete, pruned, fail, running."""
    found = {s.name.lower(): 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name.lower() in found:
            found[trial.state.name.lower()] += 1
    return found


def trials_done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


def parent_run(study: optuna.Study, experiment: str, space_text: str, url: str) -> str:
    """The search's parent run: the one the study names (a resumed search, RUNNING again), or a new one."""
    client = mlflow.MlflowClient()
    known = study.user_attrs.get(PARENT_ATTR)
    if known is not None:
        try:
            client.get_run(known)
        except mlflow.exceptions.MlflowException:
            print(f"tune: the study's parent run {known} is not in this MLflow store; starting another", flush=True)
        else:
            client.update_run(known, status="RUNNING")
            client.set_tag(known, runs.END_TAG, "")
            return known
    experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    tags = {**runs.provenance_tags(), "tune.study": study.study_name, "tune.storage": shown_url(url)}
    run = client.create_run(experiment_id, run_name=f"tune {study.study_name}", tags={**tags, "tune.space": space_text})
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    return run.info.run_id


def shown_url(url: str) -> str:
    """A storage URL without its password, fit for a tag."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def record_best(study: optuna.Study, parent: str) -> optuna.trial.FrozenTrial | None:
    """The study's state on the parent run: trials by state as metrics; the best trial, its value, its values
    and its run as tags. None while no trial has completed."""
    client = mlflow.MlflowClient()
    for state, n in counts(study).items():
        client.log_metric(parent, f"tune.trials_{state}", n)
    try:
        best = study.best_trial
    except ValueError:
        return None
    client.log_metric(parent, "tune.best_value", best.value, step=trials_done(study))
    tags = {"tune.best_trial": str(best.number), "tune.best_run": best.user_attrs.get(RUN_ATTR, "")}
    tags.update({f"tune.best.{k}": str(v) for k, v in best.params.items()})
    for key, value in tags.items():
        client.set_tag(parent, key, value)
    return best


def log_figures(parent: str, files: Mapping[str, Path]) -> None:
    client = mlflow.MlflowClient()
    for path in files.values():
        client.log_artifact(parent, str(path), "optuna")


def summarise(study: optuna.Study, parent: str, folder: Path) -> optuna.trial.FrozenTrial | None:
    """The best trial and the trials' counts on the parent run, Optuna's figures as its artifacts, and the same
    said in two lines; returns the best trial (None while no trial has completed)."""
    from pipeline.figures.study_figures import study_figures

    best = record_best(study, parent)
    drawn, notes = study_figures(study, folder)
    log_figures(parent, drawn)
    for note in notes:
        print(f"tune: no figure {note}", flush=True)
    n = counts(study)
    print(f"tune: {n['complete']} trials completed, {n['pruned']} pruned, {n['fail']} failed", flush=True)
    if best is not None:
        print(f"tune: best trial {best.number}: {best.value:.5g} ({' '.join(as_overrides(best.params))})", flush=True)
    return best


def close_parent(parent: str, status: str, why: str | None = None) -> None:
    client = mlflow.MlflowClient()
    if why:
        client.set_tag(parent, runs.END_TAG, why)
    client.set_terminated(parent, status)


def mark_run(run_id: str, state: str, name: str | None = None) -> None:
    """A trial's run tagged with its state in the study (`tune.state`), renamed (a pruned trial says so)."""
    client = mlflow.MlflowClient()
    client.set_tag(run_id, "tune.state", state)
    if name is not None:
        client.set_tag(run_id, "mlflow.runName", name)


TRAINING_GROUPS = ("data.", "model.", "augment.", "train.")  # what a study's settings give a tuned training


def best_settings(tune_cfg: Mapping[str, Any], tracking_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`tune.best_of`'s study, as settings to train with: the data, network, augmentation and training its trials
    shared, with its best trial's values, as whole groups (`{"model": {…}, "train": {…}, …}`). Not the seed: a
    tuned variant is compared over seeds of its own."""
    name, url = tune_cfg["best_of"], storage_url(tune_cfg, tracking_cfg)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(url)) or "none"
        raise UserError(
            f"tune.best_of={name}: no such study in {shown_url(url)} (studies there: {known}) — tune it first "
            "with python -m pipeline.tune, or set tune.storage to where it is"
        ) from None
    try:
        best = study.best_trial
    except ValueError:
        raise UserError(
            f"tune.best_of={name}: the study has no completed trial yet — run python -m pipeline.tune until one "
            "completes"
        ) from None
    shared = study.user_attrs.get(SETTINGS_ATTR, {})
    chosen = {**{k: v for k, v in shared.items() if k.startswith(TRAINING_GROUPS)}, **best.params}
    return nested(chosen)


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"model.name": "plain3", "model.filters": [32]} -> {"model": {"name": "plain3", "filters": [32]}}: whole
    config groups, to replace a config's (another network's group has other keys)."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return tree
