"""A sweep's Hydra callback: a parent MLflow run per multirun, a child run per variant, and at the end the runs
averaged (their label audit and scores: pipeline/sweeps/ensemble.py) and the comparison.

`SweepTracking` is a Hydra callback (see conf/config.yaml): it runs in the launching process, so it works with
any launcher; jobs find their parent through `sweep.json` in the sweep folder (pipeline/sweeps/jobs.py).
"""

from __future__ import annotations

import atexit
import hashlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from mlflow.entities import Run as MlflowRun
from mlflow.exceptions import MlflowException
from mlflow.tracking.context.registry import resolve_tags
from omegaconf import DictConfig

from pipeline.config.schema import config_problems
from pipeline.core import interrupt
from pipeline.core.errors import exit_on_user_error, first_line, is_user_error, user_message
from pipeline.core.files import read_json, write_json
from pipeline.scoring.comparison import Run
from pipeline.scoring.comparison_tables import to_markdown
from pipeline.sweeps.ensemble import sweep_ensemble
from pipeline.sweeps.results import sweep_runs, write_comparison
from pipeline.tracking import runs, store

SWEEP_FILE = "sweep.json"
SEARCH_JOB = "tune"  # a search's multirun (`python -m pipeline.tune -m`) is tracked by pipeline/sweeps/tune_sweep.py
# The longest run name MLflow's SQL stores keep (runs.name is VARCHAR(250)): PostgreSQL refuses a longer one, where
# SQLite keeps it whole.
MAX_RUN_NAME = 250
COMMAND_TAG = "sweep.command"  # a sweep's whole command line, where its parent run's name had to be cut short


def parse(overrides: Sequence[str]) -> list[Override]:
    """Command-line overrides as Hydra reads them."""
    return OverridesParser.create().parse_overrides(list(overrides))


def overridden_key(override: Override) -> str:
    """The key or config group without its +, ++ or ~: `model`, `train.lr`, `model@package`."""
    if override.package is None:
        return override.key_or_group
    return f"{override.key_or_group}@{override.package}"


def varied_keys(sweep_overrides: Sequence[str]) -> list[str]:
    """The keys a multirun sweeps over, as Hydra decides: `model=a,b`, `range(…)`, `choice(…)`, `glob(…)`,
    `sort(…)`, `tag(…)`…; a list value (`model.filters=[16,32]`) is one value, not a sweep."""
    return [overridden_key(o) for o in parse(sweep_overrides) if o.is_sweep_override()]


def child_name(job_overrides: Sequence[str], varied: Sequence[str]) -> str:
    """`model=cnn2_bn,augment=none`: the job's values of the swept keys, in the sweep's order, each written as
    in an override (`model.filters=[16,32]`)."""
    values = {overridden_key(o): o.get_value_element_as_str() for o in parse(job_overrides)}
    return ",".join(f"{k}={values[k]}" for k in varied if k in values) or "default"


def split_jobs(sweep_overrides: Sequence[str], loader: Any = None) -> list[list[str]]:
    """Each job's overrides, in the sweep's order, as Hydra's basic sweeper (the joblib launcher's too) splits the
    sweep (one over a config group's files, `model=glob(*)`, needs Hydra's config loader)."""
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(sweep_overrides))
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return jobs


def variant_configs(config: DictConfig, sweep_overrides: Sequence[str]) -> Iterator[tuple[list[str], DictConfig]]:
    """Each job's overrides and config, composed as Hydra's basic sweeper will."""
    loader = GlobalHydra.instance().config_loader()
    for job in split_jobs(sweep_overrides, loader):
        yield job, loader.load_sweep_config(config, job)


def sweep_problems(config: DictConfig, sweep_overrides: Sequence[str], varied: Sequence[str]) -> list[str]:
    """Every variant's settings out of range; a problem that only some variants have names them."""
    found: dict[str, list[str]] = {}
    variants = 0
    for job, job_config in variant_configs(config, sweep_overrides):
        variants += 1
        for problem in config_problems(job_config):
            found.setdefault(problem, []).append(child_name(job, varied))
    return [p if len(names) == variants else f"{p} (in {' / '.join(names)})" for p, names in found.items()]


def check_sweep(config: DictConfig, sweep_overrides: Sequence[str], varied: Sequence[str]) -> None:
    """Every variant checked before the first starts, and the tracking server asked: a bad one would otherwise stop
    the sweep when its turn came, and leave the parent run open. A problem ends the process as a user's mistake
    (an exception in a callback would only be a warning: Hydra catches them)."""
    try:
        problems = sweep_problems(config, sweep_overrides, varied)
    except HydraException as err:  # a variant that does not compose (Hydra's sweeper would refuse it next)
        problems = [str(err)]
    problems += launcher_problems(config.hydra.launcher)
    problems += store.server_problems(config.tracking)  # an absent tracking server, before any job starts
    if problems:
        exit_on_user_error("; ".join(problems))


def launcher_problems(launcher: Mapping[str, Any]) -> list[str]:
    """The cluster launcher's own setting (conf/hydra/launcher/slurm.yaml), out of range."""
    minutes = launcher.get("lost_after_min")
    if minutes is None or (isinstance(minutes, int | float) and not isinstance(minutes, bool) and minutes > 0):
        return []
    return [f"hydra.launcher.lost_after_min={minutes}: must be a number of minutes > 0"]


def job_names(sweep_overrides: Sequence[str], varied: Sequence[str], loader: Any = None) -> list[str]:
    """Every job's run name, in the sweep's order."""
    return [child_name(job, varied) for job in split_jobs(sweep_overrides, loader)]


def hydra_loader() -> Any:
    """Hydra's config loader in a multirun's process (None outside one)."""
    return GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None


def unfinished(names: Sequence[str], runs: Sequence[Run]) -> list[str]:
    """The jobs whose run did not finish, or that made none, each with what became of it: `model=a (KILLED)`."""
    status = {r.name: r.status for r in runs}
    return [f"{n} ({status.get(n, 'no run')})" for n in names if status.get(n) != "FINISHED"]


def parent_name(command: str) -> str:
    """`sweep <the command's overrides>`, cut to MLflow's longest run name with a digest of the whole, so that two
    long commands that differ only at the end still have names of their own (and the same command, the same)."""
    name = f"sweep {command}"
    if len(name) <= MAX_RUN_NAME:
        return name
    digest = f"… ({hashlib.sha256(name.encode()).hexdigest()[:8]})"
    return name[: MAX_RUN_NAME - len(digest)] + digest


def reusable_parent(client: mlflow.MlflowClient, sweep_file: Path, name: str) -> MlflowRun | None:
    """The parent run of the same sweep (the same command, so the same name) in this sweep folder, run before: the
    command run again finishes it."""
    if not sweep_file.is_file():
        return None
    run_id = read_json(sweep_file).get("parent_run_id")
    try:
        run = client.get_run(run_id) if run_id else None
    except MlflowException:  # sweep.json of another tracking store
        return None
    return run if run is not None and run.info.run_name == name else None


def reopen(client: mlflow.MlflowClient, parent: MlflowRun, sweep_file: Path) -> None:
    """The parent run RUNNING again, without how it ended last time (no longer true). On a team's server only its
    owner may: a member who runs the same command in another's sweep folder is told so in one line, and nothing of
    the other's sweep changes."""
    try:
        client.update_run(parent.info.run_id, status="RUNNING")
        if runs.END_TAG in parent.data.tags:
            client.delete_tag(parent.info.run_id, runs.END_TAG)
    except MlflowException as err:
        if not is_user_error(err):
            raise
        exit_on_user_error(
            f"sweep: {user_message(err)} — {sweep_file} is another's sweep: run yours in a folder of its own "
            "(hydra.sweep.dir=…)"
        )


def close_if_unfinished(tracking_uri: str, parent_run_id: str) -> None:
    """A parent still RUNNING when the sweep's process exits: it, and any child left RUNNING (a worker killed with
    the sweep), end KILLED, with why in the tag `run.ended_by`."""
    client = mlflow.MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id).info
    if parent.status != "RUNNING":
        return
    why = f"interrupted by {interrupt.received}" if interrupt.received else "stopped before its last job ended"
    running = client.search_runs(
        [parent.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'",
    )
    for run_id in [r.info.run_id for r in running] + [parent_run_id]:
        client.set_tag(run_id, runs.END_TAG, f"sweep: {why}")
        client.set_terminated(run_id, "KILLED")


def crown(client: mlflow.MlflowClient, parent_run_id: str, run_id: str) -> None:
    """The best variant's best run: its registered model gets the alias `champion`, named in the parent's tag
    `compare.champion`. A run without a registered model (trained before models were registered) is said so; the
    sweep's result stands."""
    from pipeline.tracking.registry import CHAMPION, RegistryError, promote, promotion_line, version_label

    try:
        version = promote(run_id, CHAMPION, client)
    except RegistryError as err:
        print(f"sweep: no champion: {err}", file=sys.stderr, flush=True)
        return
    client.set_tag(parent_run_id, "compare.champion", version_label(version.name, version.version))
    print(f"sweep: {promotion_line(version, CHAMPION, client.get_run(run_id))}", flush=True)


class SweepTracking(Callback):
    """Opens the parent run before the first job and closes it, with the comparison, after the last."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.name == SEARCH_JOB:
            return
        sweep_overrides = list(config.hydra.overrides.task)
        varied = varied_keys(sweep_overrides)
        check_sweep(config, sweep_overrides, varied)
        store.connect(config.tracking)
        client = mlflow.MlflowClient()
        command = " ".join(sweep_overrides)
        name = parent_name(command)
        sweep_file = Path(config.hydra.sweep.dir) / SWEEP_FILE
        before = reusable_parent(client, sweep_file, name)
        if before is None:
            tags = {**runs.provenance_tags(), "sweep.varied": ",".join(varied)}
            if name != f"sweep {command}":
                tags[COMMAND_TAG] = command
            try:
                parent = client.create_run(
                    mlflow.get_experiment_by_name(config.tracking.experiment).experiment_id,
                    run_name=name,
                    # as mlflow.start_run tags the children: the member who ran it (mlflow.user), the source
                    tags=resolve_tags(tags),
                ).info.run_id
            except MlflowException as err:  # no parent, no sweep: its jobs would run with nothing to compare them
                exit_on_user_error(f"sweep: its parent run could not be made: {first_line(err, limit=300)}")
            write_json(sweep_file, {"parent_run_id": parent, "varied": varied})
            print(f"sweep: parent MLflow run {parent} ({name})", flush=True)
        else:
            parent = before.info.run_id
            reopen(client, before, sweep_file)
            names = job_names(sweep_overrides, varied, hydra_loader())
            done = len(names) - len(unfinished(names, sweep_runs(client, parent)))
            print(f"sweep: parent MLflow run {parent} ({name}) again: {done} of {len(names)} runs finished, kept")
        # on_multirun_end is not called when the sweep stops early (a signal, a crash): then this closes it.
        atexit.register(close_if_unfinished, mlflow.get_tracking_uri(), parent)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.name == SEARCH_JOB:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep = read_json(sweep_dir / SWEEP_FILE)
        parent = sweep["parent_run_id"]
        store.connect(config.tracking)
        client = mlflow.MlflowClient()
        ensembles = sweep_ensemble(client, parent, config, sweep_dir)  # before the comparison, which has its rows
        comparison = write_comparison(client, parent, config.compare, list(config.data.test_sets), sweep_dir, ensembles)
        if comparison.champion is not None:
            crown(client, parent, comparison.champion)
        names = job_names(list(config.hydra.overrides.task), sweep["varied"], hydra_loader())
        failed = unfinished(names, comparison.runs)
        client.set_terminated(parent, "FAILED" if failed or not comparison.runs else "FINISHED")
        print(f"sweep: {len(comparison.runs)} runs compared in {sweep_dir / 'comparison.md'}", flush=True)
        print(to_markdown(comparison), flush=True)
        if failed or not comparison.runs:
            # Hydra turns a callback's exception into a warning; a sweep with failures must still exit non-zero.
            print(
                f"sweep: {len(failed)} of {len(names)} runs did not finish: {', '.join(failed)} — the same command "
                f"again (in {sweep_dir}) runs them, and keeps the others",
                file=sys.stderr,
            )
            raise SystemExit(1)
