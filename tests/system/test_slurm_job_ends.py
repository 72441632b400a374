"""A sweep's jobs that end without their result, on clusters of their own (tests/helpers/slurm.py), so that the
session's cluster of test_slurm.py is left as its tests expect: with SLURM's accounting (slurmdbd on MariaDB), a job
killed as the kernel's OOM killer kills (SIGKILL), one cancelled, one held in the queue; without accounting, a job
SLURM has forgotten. Each is given up within hydra.launcher.lost_after_min in one line naming the job and what SLURM
said, its run never left RUNNING, and the sweep exits 1 (docs/scaling.md#when-a-job-does-not-come-back).

The data are synthetic (tests/helpers/projects.py): what is checked is how jobs end and what is said of them."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from tests.helpers.projects import project, wait_for_epochs
from tests.helpers.slurm import (
    SlurmCluster,
    forget_every_job,
    job_ids,
    job_python,
    needs,
    slurm_cluster,
    sweep_runs,
    sweeping,
    wait_for_jobs,
    wait_for_state,
)

pytestmark = pytest.mark.slow  # clusters, a tracking server and real trainings

BOUND = 0.25  # hydra.launcher.lost_after_min of these sweeps: 15 s
TRAINING = ["train.epochs=3", "train.batch_size=32"]  # on 2,000 images (SETTINGS): epochs of a second or two


@pytest.fixture(scope="module")
def accounted(tmp_path_factory) -> Iterator[SlurmCluster]:
    """A single-node cluster that keeps accounting: slurmdbd, on a MariaDB of its own."""
    needs(accounting=True)
    with slurm_cluster(tmp_path_factory.mktemp("slurm-accounted"), accounting=True) as cluster:
        yield cluster


def given_up(err: str, job: str) -> str:
    """The one line that gives the job up."""
    lines = [line for line in err.splitlines() if line.startswith(f"sweep: job {job} ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def test_with_accounting_a_killed_a_cancelled_and_a_held_job_are_given_up_with_what_sacct_says(
    accounted, tracking_server, tmp_path
):
    """Three variants, one job of 2 CPUs at a time on the node: the first killed while it trains (SIGKILL, as the
    OOM killer ends a training: it cannot mark its run), the second cancelled as it starts, the third held in the
    queue (`scontrol hold`). sacct names how each ended, with its exit code, which squeue cannot; the held job, which
    would wait for a release for ever, is cancelled when it is given up."""
    folder = project(tmp_path)
    experiment = "slurm-accounted"
    env = {**accounted.env, "MLFLOW_TRACKING_URI": tracking_server.url}
    command = [f"tracking.experiment={experiment}", *TRAINING, "model=plain1,plain3,compact"]
    with sweeping(folder, *command, f"hydra.launcher.lost_after_min={BOUND}", **env) as sweep:
        wait_for_epochs(folder / "sweep" / "0" / "checkpoints" / "epochs.json", 1, sweep)
        killed, cancelled, held = job_ids(folder / "sweep")
        accounted.run("scontrol", "hold", held)
        os.kill(job_python(accounted, killed), signal.SIGKILL)  # not scancel's KILL, which SLURM takes as a cancel
        wait_for_state(accounted, cancelled, {"RUNNING"})  # SLURM keeps no record of a task cancelled before
        accounted.run("scancel", cancelled)
        out, err = sweep.communicate(timeout=BOUND * 60 + 180)
    assert sweep.returncode == 1, (out[-3000:], err[-3000:])

    assert "SLURM has no accounting" not in err
    assert re.fullmatch(
        rf"sweep: job {killed} \(model=plain1\): FAILED \(exit code \d+:\d+\) — its run marked FAILED",
        given_up(err, killed),
    ), err[-3000:]
    assert re.fullmatch(
        rf"sweep: job {cancelled} \(model=plain3\): CANCELLED by 0 — (it made no run|its run (ended KILLED|marked FAILED))",
        given_up(err, cancelled),
    ), err[-3000:]
    assert (
        given_up(err, held)
        == f"sweep: job {held} (model=compact): PENDING (JobHeldAdmin), now cancelled — it made no run"
    )
    assert wait_for_state(accounted, held, {"CANCELLED"}) == "CANCELLED"  # it will not start after its sweep
    assert "3 of 3 runs did not finish" in err, err[-3000:]

    _, (parent,), children = sweep_runs(tracking_server, experiment)
    assert parent.info.status == "FAILED"
    runs = {c.info.run_name: c for c in children}
    assert runs["model=plain1"].info.status == "FAILED"
    assert runs["model=plain1"].data.tags["run.ended_by"].startswith(f"sweep: job {killed}: FAILED")
    assert "model=compact" not in runs and runs.get("model=plain3", runs["model=plain1"]).info.status != "RUNNING"


def test_without_accounting_a_job_slurm_has_forgotten_is_given_up_as_unknown(tracking_server, tmp_path):
    """A job cancelled as it starts, then forgotten: its controller restarted without its state, as one that lost it
    comes back (SLURM also forgets an ended job by itself, MinJobAge after its end: 5 minutes by default). With no
    accounting nothing knows the job any more; the sweep gives it up as unknown to SLURM, within the bound."""
    needs(accounting=False)
    folder = project(tmp_path / "project")
    experiment = "slurm-forgotten"
    with slurm_cluster(tmp_path / "slurm") as cluster:
        env = {**cluster.env, "MLFLOW_TRACKING_URI": tracking_server.url}
        command = [f"tracking.experiment={experiment}", "model=choice(plain1)"]
        with sweeping(folder, *command, f"hydra.launcher.lost_after_min={BOUND}", **env) as sweep:
            (job,) = wait_for_jobs(folder / "sweep", 1, sweep)
            wait_for_state(cluster, job, {"RUNNING"})
            cluster.run("scancel", job)
            wait_for_state(cluster, job, {"CANCELLED"})
            forget_every_job(cluster)
            assert not cluster.run("squeue", "-h", "-t", "all", check=False).strip()  # no job known
            forgotten_at = time.monotonic()
            out, err = sweep.communicate(timeout=180)
            waited = time.monotonic() - forgotten_at
    assert sweep.returncode == 1, (out[-3000:], err[-3000:])
    assert waited <= BOUND * 60 + 30, waited
    assert re.fullmatch(
        rf"sweep: job {job} \(model=plain1\): unknown to SLURM \(cancelled before it started, or ended and forgotten; "
        r"squeue: .*Invalid job id.*\) — it made no run",
        given_up(err, job),
    ), err[-3000:]
    assert err.count("SLURM has no accounting") == 1
    assert "1 of 1 runs did not finish: model=plain1 (no run)" in err
    _, (parent,), children = sweep_runs(tracking_server, experiment)
    assert parent.info.status == "FAILED" and children == []
