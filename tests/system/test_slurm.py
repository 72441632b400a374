"""Sweeps through a real SLURM scheduler: a single-node cluster on this machine (tests/helpers/slurm.py), the team's
tracking server (`make server` on PostgreSQL with logins) and `python -m pipeline.experiment -m
hydra/launcher=slurm` as a user runs it, with conf/hydra/launcher/slurm.yaml as committed. Every job goes through
sbatch (Hydra's submitit launcher); the runs, the comparison and the champion are read back from the server. And
pre-emption: a training job sent SIGTERM by the scheduler says so in one line and exits 143, its run KILLED, and
requeued, resumes that run to FINISHED.

The data are synthetic (tests/helpers/projects.py): what is checked is where jobs run and what they record."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow.server import get_app_client

from pipeline import team
from tests.helpers import postgres
from tests.helpers.configs import conf
from tests.helpers.measured import followed, slurm_jobs_unmeasured
from tests.helpers.projects import project, start, wait_for_epochs
from tests.helpers.slurm import job_err, job_field, job_ids, job_log, sweep_runs, sweeping, wait_for_state

pytestmark = pytest.mark.slow  # a cluster, a tracking server and real trainings

LAUNCHER = conf("hydra/launcher", "slurm")

CAROL = ("carol", "carol-sweeps-on-slurm-3")  # a team maintainer who sweeps on the cluster, and crowns


def test_a_two_job_sweep_goes_through_sbatch_into_the_team_server(slurm, team_server, tmp_path, monkeypatch):
    """Into the team's server as the README's cluster step has it: PostgreSQL-backed, behind logins; every job
    logs in with the member's login, which sbatch passes on with the rest of the environment."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
    admin = get_app_client("basic-auth", tracking_uri=team_server.url)
    team.add(admin, CAROL[0], team_server.folder, maintainer=True, environ={team.NEW_PASSWORD_ENV: CAROL[1]})
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", CAROL[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", CAROL[1])
    folder = project(tmp_path)
    experiment = "slurm-sweep"
    login = {"MLFLOW_TRACKING_USERNAME": CAROL[0], "MLFLOW_TRACKING_PASSWORD": CAROL[1]}
    env = {**slurm.env, "MLFLOW_TRACKING_URI": team_server.url, **login}
    with sweeping(folder, f"tracking.experiment={experiment}", "model=plain1,plain3", **env) as sweep:
        out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, (out[-3000:], err[-3000:])

    # Every job went through the scheduler: a SLURM job of the sweep's array, run to completion with what
    # slurm.yaml reserves, its log where docs/scaling.md says.
    jobs = job_ids(folder / "sweep")
    assert len(jobs) == 2 and len({j.split("_")[0] for j in jobs}) == 1, jobs
    for job in jobs:
        assert wait_for_state(slurm, job, {"COMPLETED", "FAILED"}) == "COMPLETED"  # its result came before its end
        assert job_field(slurm, job, "NumCPUs") == str(LAUNCHER["cpus_per_task"])
        assert job_field(slurm, job, "MinMemoryNode") == f"{LAUNCHER['mem_gb']}G"
        assert job_field(slurm, job, "Partition") == "debug"
        assert job_field(slurm, job, "Requeue") == "1"  # --requeue: a pre-empted job goes back to the queue
        # TensorFlow computes with the threads the job reserved, not with every core of the node.
        log = job_log(folder / "sweep", job)
        assert f"sweep job: {LAUNCHER['cpus_per_task']} TensorFlow threads" in log, log[-2000:]
    assert f"sched: Allocate JobId={jobs[0].split('_')[0]}_" in slurm.log("slurmctld")

    # As with the local launchers: a parent, a child per variant, the comparison and the champion.
    client, parents, children = sweep_runs(team_server, experiment)
    assert len(parents) == 1 and len(children) == 2
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert {r.info.user_id for r in [parent, *children]} == {CAROL[0]}  # the member's, the parent's too
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.run_name for c in children} == {"model=plain1", "model=plain3"}
    assert all(c.info.status == "FINISHED" and "test.mnist.accuracy" in c.data.metrics for c in children)
    listed = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert listed == {f"comparison/{f}" for f in ("comparison.md", "comparison.csv", "runs.csv", "comparison.png")}
    assert parent.data.tags["compare.best"] in {"model=plain1", "model=plain3"}
    assert parent.data.tags["compare.champion"].startswith("handwriting-mnist/")


DORA = ("dora", "dora-is-pre-empted-5")  # a team member whose job the scheduler takes the node from


def test_a_training_job_sent_sigterm_ends_killed_and_requeued_resumes_in_the_same_run(
    slurm, team_server, tmp_path, monkeypatch
):
    """What a scheduler that takes the node back does: SIGTERM to the job's processes (scancel --signal=TERM, as
    pre-emption sends it), then the job back in the queue (scontrol requeue, as PreemptMode=REQUEUE does), with the
    team's server on PostgreSQL. The job says so in one line and exits 143 (a signal, not a crash); the requeued job
    is the same sweep job: it finds its checkpoint in its folder and resumes the same MLflow run, which ends FINISHED
    with its interruption counted, not as its last word, and its training time that of both jobs."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin_password)
    get_app_client("basic-auth", tracking_uri=team_server.url).create_user(*DORA)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", DORA[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", DORA[1])
    folder = project(tmp_path)
    experiment = "preempted"
    login = {"MLFLOW_TRACKING_USERNAME": DORA[0], "MLFLOW_TRACKING_PASSWORD": DORA[1]}
    env = {**slurm.env, "MLFLOW_TRACKING_URI": team_server.url, **login}
    longer = ["data.train_limit=null", "train.epochs=3", "train.batch_size=32"]  # epochs of seconds each
    # A sweep of one job, its run named by its model.
    with sweeping(folder, f"tracking.experiment={experiment}", *longer, "model=choice(plain1)", **env) as sweep:
        checkpoints = folder / "sweep" / "0" / "checkpoints"
        wait_for_epochs(checkpoints / "epochs.json", 1, sweep)
        (job,) = job_ids(folder / "sweep")
        slurm.run("scancel", "--signal=TERM", job)
        wait_for_state(slurm, job, {"COMPLETED", "FAILED"})

        # A signal, as SLURM and the user see it: exit status 128 + 15, and one line in the job's log.
        assert job_field(slurm, job, "ExitCode") == "143:0"
        err = job_err(folder / "sweep", job)
        assert "Traceback" not in err, err[-3000:]
        (line,) = [line for line in err.splitlines() if "interrupted" in line]
        assert line.startswith("experiment: interrupted by SIGTERM; its MLflow run is marked KILLED"), err[-3000:]
        client, parents, children = sweep_runs(team_server, experiment)
        (killed,) = children
        assert killed.info.status == "KILLED", killed.info
        assert killed.data.tags["run.ended_by"] == "train: interrupted by SIGTERM"
        done = len(json.loads((checkpoints / "epochs.json").read_text()))
        first_seconds = json.loads((checkpoints / "seconds.json").read_text())["seconds"]
        assert 1 <= done < 3 and first_seconds > 0 and sweep.poll() is None  # the sweep waits for its job

        # SLURM holds a requeued job 2 min; started again at once, in the second its last run ended, slurmd would
        # refuse it ("Job credential revoked"): a second between, then at once.
        time.sleep(2)
        slurm.run("scontrol", "requeue", job)
        slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
        out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, (out[-3000:], err[-3000:])

    assert wait_for_state(slurm, job, {"COMPLETED", "FAILED"}) == "COMPLETED"  # its result came before its end
    assert job_field(slurm, job, "Restarts") == "1"
    log = job_log(folder / "sweep", job)
    assert f"resuming MLflow run {killed.info.run_id} after epoch {done}" in log, log[-3000:]
    client, parents, children = sweep_runs(team_server, experiment)
    (resumed,) = children  # the same run, not a second one
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    assert resumed.data.tags["train.resumed_after_epoch"] == str(done)
    assert "run.ended_by" not in resumed.data.tags and resumed.data.tags["run.interruptions"] == "1"
    for metric in ("loss", "val_loss", "learning_rate"):
        assert [m.step for m in client.get_metric_history(resumed.info.run_id, metric)] == [1, 2, 3], metric
    # Its training time is both jobs', and so is the comparison's `train s`.
    seconds = resumed.data.metrics["train.train_seconds"]
    assert seconds >= first_seconds
    (parent,) = parents
    assert parent.info.status == "FINISHED" and parent.data.tags["compare.best"] == "model=plain1"
    table = Path(client.download_artifacts(parent.info.run_id, "comparison/comparison.csv", str(tmp_path)))
    (row,) = [r for r in csv.DictReader(table.open()) if r["variant"] == "model=plain1"]
    assert float(row["train_seconds"]) == pytest.approx(seconds)


def test_cancelled_and_pre_empted_jobs_end_their_variants_within_the_bound_and_the_same_command_finishes_the_sweep(
    slurm, tracking_server, tmp_path
):
    """On a cluster without accounting (sacct answers nothing), a training job cancelled (`scancel`) and one
    pre-empted that never comes back (SIGTERM, as pre-emption sends it, and no requeue): the sweep gives each job up
    once it has been over for hydra.launcher.lost_after_min without its result, in one line, compares the variant
    that finished and exits 1. The same command again, in the same sweep folder, reopens the same parent run, keeps
    the finished variant, resumes the other two, compares all three and exits 0."""
    folder = project(tmp_path)
    experiment = "slurm-cancelled"
    env = {**slurm.env, "MLFLOW_TRACKING_URI": tracking_server.url}
    bound = 0.25  # minutes
    command = [
        f"tracking.experiment={experiment}",
        *["data.train_limit=6000", "train.epochs=3", "train.batch_size=32"],  # epochs of seconds each
        "model=plain1,plain3,compact",
        f"hydra.launcher.lost_after_min={bound}",
    ]
    # The node runs one job of 2 CPUs at a time: plain1, then plain3, then compact.
    with sweeping(folder, *command, **env) as sweep:
        wait_for_epochs(folder / "sweep" / "1" / "checkpoints" / "epochs.json", 1, sweep)
        cancelled, pre_empted = job_ids(folder / "sweep")[1:]
        slurm.run("scancel", cancelled)
        wait_for_epochs(folder / "sweep" / "2" / "checkpoints" / "epochs.json", 1, sweep)
        slurm.run("scancel", "--signal=TERM", pre_empted)
        pre_empted_at = time.monotonic()
        out, err = sweep.communicate(timeout=bound * 60 + 180)
        waited = time.monotonic() - pre_empted_at
    assert sweep.returncode == 1, (out[-3000:], err[-3000:])
    assert bound * 60 <= waited <= bound * 60 + 60, waited  # it waited for a requeue, then no longer
    for job, variant, state in [(cancelled, "plain3", "CANCELLED"), (pre_empted, "compact", "FAILED")]:
        lines = [line for line in err.splitlines() if line.startswith(f"sweep: job {job} ")]
        assert len(lines) == 1 and re.fullmatch(
            rf".* \(model={variant}\): {state}.* — its run (ended KILLED|marked FAILED)", lines[0]
        ), err[-3000:]
    assert re.search(r"2 of 3 runs did not finish: model=plain3 \((KILLED|FAILED)\), model=compact \(KILLED\)", err)
    assert err.count("SLURM has no accounting") == 1 and "Bypassing sacct error" not in out + err  # each line once
    assert job_field(slurm, pre_empted, "ExitCode") == "143:0"  # it said it was stopped by a signal
    _, parents, children = sweep_runs(tracking_server, experiment)
    (parent,) = parents
    assert parent.info.status == "FAILED"
    first_jobs = job_ids(folder / "sweep")
    first = {c.info.run_name: c for c in children}
    assert first["model=plain1"].info.status == "FINISHED"
    assert first["model=plain3"].info.status in {"KILLED", "FAILED"}  # never left RUNNING
    assert first["model=compact"].info.status == "KILLED"
    assert "| model=plain1 |" in (folder / "sweep" / "comparison.md").read_text()  # what finished is compared

    with sweeping(folder, *command, **env) as again:
        out, err = again.communicate(timeout=400)
    assert again.returncode == 0, (out[-3000:], err[-3000:])
    assert f"sweep: parent MLflow run {parent.info.run_id} " in out and "again: 1 of 3 runs finished, kept" in out
    _, parents, children = sweep_runs(tracking_server, experiment)
    assert [p.info.run_id for p in parents] == [parent.info.run_id] and parents[0].info.status == "FINISHED"
    assert {c.info.run_name: c.info.run_id for c in children} == {n: c.info.run_id for n, c in first.items()}
    assert all(c.info.status == "FINISHED" for c in children)  # the two resumed in their own runs, plain1 kept
    assert f"sweep: model=plain1 finished before, in MLflow run {first['model=plain1'].info.run_id}: kept" in out
    reruns = [j for j in job_ids(folder / "sweep") if j not in first_jobs]  # only the two that did not finish
    assert len(reruns) == 2
    logs = "".join(job_log(folder / "sweep", job) for job in reruns)
    for variant in ("plain3", "compact"):
        assert f"resuming MLflow run {first[f'model={variant}'].info.run_id}" in logs, logs[-3000:]
    assert parents[0].data.tags["compare.champion"].startswith("handwriting-mnist/")


def test_a_searchs_workers_are_slurm_jobs_sharing_one_study_in_the_teams_postgresql(
    slurm, team_server, tmp_path, monkeypatch
):
    """docs/sweeps.md's cluster search: two workers, each a SLURM job of one CPU, taking trials from one study in a
    database of the team's PostgreSQL (its password from PGPASSWORD, as sbatch passes on the environment), their
    runs under one parent on the team's server."""
    host = team_server.database.rsplit("/", 1)[0]  # postgresql://mlflow@127.0.0.1:<port>
    port = host.rsplit(":", 1)[1]
    pg = {"PGPASSWORD": team_server.database_password}
    createdb = [str(postgres.binaries() / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", postgres.USER, "optuna"]
    subprocess.run(createdb, env={**os.environ, **pg}, check=True, capture_output=True)
    storage = host.replace("postgresql://", "postgresql+psycopg://") + "/optuna"  # no password in it
    login = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": team_server.admin_password}
    env = {**slurm.env, "MLFLOW_TRACKING_URI": team_server.url, **login, **pg}
    folder = project(tmp_path)
    search = start(
        folder,
        "pipeline.tune",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.cpus_per_task=1",  # both workers at once on the test cluster's node of 2 CPUs
        "hydra.sweep.dir=search",
        "tune.worker=0,1",
        f"tune.storage={storage}",
        "tune.trials=2",
        "tune.pruner=none",
        "tracking.experiment=slurm-search",
        "experiment=fast",
        "data.train_limit=2000",
        "train.batch_size=32",
        "search.params.train.batch_size='choice(32)'",
        *slurm_jobs_unmeasured(),
        **followed(),  # the search's callback, in the sweep's process
        **env,
    )
    try:
        out, err = search.communicate(timeout=400)
    finally:
        if search.poll() is None:
            search.kill()
    assert search.returncode == 0, (out[-3000:], err[-3000:])

    jobs = job_ids(folder / "search")
    assert len(jobs) == 2
    for job in jobs:
        assert wait_for_state(slurm, job, {"COMPLETED", "FAILED"}) == "COMPLETED"
        assert "sweep job: 1 TensorFlow threads" in job_log(folder / "search", job)
    monkeypatch.setenv("PGPASSWORD", team_server.database_password)
    study = optuna.load_study(study_name="default-mnist", storage=storage)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert 2 <= len(done) <= 3 and len(done) == len(study.trials)  # a worker asks while fewer than 2 are done
    for key, value in login.items():
        monkeypatch.setenv(key, value)
    _, parents, children = sweep_runs(team_server, "slurm-search")
    (parent,) = parents
    assert parent.info.run_name == "tune default-mnist" and parent.info.status == "FINISHED"
    assert parent.data.tags["tune.storage"] == storage
    assert sorted(c.data.tags["tune.trial"] for c in children) == sorted(str(t.number) for t in done)
    assert {c.data.tags["tune.worker"] for c in children} <= {"0", "1"}
    assert parent.data.tags["tune.best_run"] in {c.info.run_id for c in children}
