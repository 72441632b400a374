"""A sweep's SLURM jobs (hydra/launcher=slurm): Hydra's submitit launcher, with the wait for the jobs' results bounded.

submitit waits for a job's result file for as long as `sacct` does not say the job ended, and without accounting
(no slurmdbd) `sacct` never says anything: a cancelled, failed or forgotten job kept the sweep waiting for ever. Here
the sweep asks SLURM itself (squeue, and sacct where there is accounting) and gives a job up once it has been over
(ended, held, or unknown to SLURM) without leaving its result for `lost_after_min` minutes; time enough to requeue or
release it by hand, and SLURM's own requeue (pre-emption) puts it back to PENDING, which restarts the clock. A job
given up is one line (a held one is cancelled, so that it cannot start after its sweep), its MLflow run ends FAILED if
it was left RUNNING, and its variant counts as failed in the comparison.

Hydra takes a launcher only from its `hydra_plugins` package: hydra_plugins/hwlab_slurm.py names this one there, and
Hydra imports that module in every entrypoint, so this one imports little until a sweep runs.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

LOST_AFTER_MIN = 5.0  # SLURM's own default MinJobAge: as long as it keeps an ended job, which can then be requeued

# A job in these states may still give its result (SLURM's job state codes, `man squeue`), unless it is held; any
# other state, or none (SLURM no longer knows the job), is over.
COMING = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESIZING",
        "REQUEUED",
        "REQUEUE_FED",
    }
)
# A held job waits for someone to release it (`scontrol release`), which may be never: SLURM holds a job that failed to
# launch, a requeue can hold it (`scontrol requeuehold`, a job's special exit), and so can its user or an admin.
HELD_STATES = frozenset({"REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD"})
HELD_REASONS = ("JobHeldUser", "JobHeldAdmin", "launch failed requeued held")


@dataclass(frozen=True)
class JobState:
    state: str  # SLURM's word for it: RUNNING, CANCELLED…; "" for a job SLURM does not know
    said: str  # what SLURM said, for the line that gives the job up: `CANCELLED by 0 (exit code 0:15)`
    held: bool = False

    @property
    def coming(self) -> bool:
        return self.state in COMING and not self.held

    @property
    def queued(self) -> bool:
        """Still in SLURM's queue: coming, or held there."""
        return self.coming or self.held


def from_sacct(text: str) -> dict[str, JobState]:
    """`sacct -o JobID,State,ExitCode --parsable2` read as submitit reads it (an array's pending tasks are one line,
    `12_[1-3]`), per job (`12_0`)."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    found = SlurmInfoWatcher().read_info(text)
    states = {}
    for job, f in found.items():
        state = (f["State"].split() or [""])[0]
        states[job] = JobState(state, said(f["State"], f.get("ExitCode", "")), state in HELD_STATES)
    return states


def from_squeue(text: str) -> dict[str, JobState]:
    """`squeue -h -r -t all -o %i|%T|%r` (one line per array task, ended jobs too while SLURM keeps them)."""
    states = {}
    for line in text.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        held = state in HELD_STATES or (state == "PENDING" and reason.startswith(HELD_REASONS))
        states[job.strip()] = JobState(state, state if reason in ("", "None") else f"{state} ({reason})", held)
    return states


def merged(queue: Mapping[str, JobState], accounts: Mapping[str, JobState]) -> dict[str, JobState]:
    """squeue's word for a job still in the queue (it alone says why a job waits: held, or only for its start time),
    sacct's for one that ended (its exit code, and for as long as the database keeps it)."""
    states = dict(accounts)
    states.update({job: state for job, state in queue.items() if state.queued or job not in accounts})
    return states


def said(state: str, exit_code: str) -> str:
    return state if exit_code in ("", "0:0") else f"{state} (exit code {exit_code})"


class Patience:
    """How long each job has been over without its result; `given_up` names those over for `seconds` or longer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: dict[str, float] = {}

    def given_up(self, states: Mapping[str, JobState], waiting: Iterable[str], now: float) -> list[str]:
        out = []
        for job in waiting:
            if job in states and states[job].coming:
                self.since.pop(job, None)  # back in the queue (requeued): its clock starts again when it ends
            elif now - self.since.setdefault(job, now) >= self.seconds:
                out.append(job)
        return out


class Scheduler:
    """SLURM's view of jobs: squeue's, which knows a job until MinJobAge after it ended, and where the cluster keeps
    accounting, sacct's too (exact states and exit codes, for every job ever run): `merged`."""

    def __init__(self) -> None:
        self.accounting = True
        self.trouble = ""  # why the last question got no answer, for a job given up meanwhile

    def states(self, arrays: Collection[str]) -> dict[str, JobState]:
        ids = ",".join(sorted(arrays))
        accounts = self.accounts(ids) if self.accounting else {}
        done = run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", ids])
        # squeue refuses a list of only unknown ids; a list with one it knows lists that one.
        self.trouble = "" if done.returncode == 0 else done.stderr.strip()
        return merged(from_squeue(done.stdout) if done.returncode == 0 else {}, accounts)

    def accounts(self, ids: str) -> dict[str, JobState]:
        done = run(["sacct", "-o", "JobID,State,ExitCode", "--parsable2", "-j", ids])
        if done.returncode == 0:
            return from_sacct(done.stdout)
        self.accounting = False
        reason = done.stderr.strip() or f"exit status {done.returncode}"
        print(f"sweep: SLURM has no accounting (sacct: {reason}); asking squeue", file=sys.stderr, flush=True)
        return {}

    def unknown(self) -> JobState:
        """A job neither squeue nor sacct names: SLURM keeps no record of an array's task cancelled before it started,
        and squeue none of a job MinJobAge after its end."""
        trouble = f"; squeue: {self.trouble}" if self.trouble else ""
        return JobState("", f"unknown to SLURM (cancelled before it started, or ended and forgotten{trouble})")


def run(command: Sequence[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(command, 1, "", str(err))


def cancelled_if_held(job_id: str, state: JobState) -> str:
    """What SLURM said of a job given up; a held one is cancelled first, so that nobody's release starts a training
    after its sweep gave it up (and alongside the same command run again)."""
    if not state.held:
        return state.said
    done = run(["scancel", job_id])
    return f"{state.said}, {'now cancelled' if done.returncode == 0 else 'not cancelled: ' + done.stderr.strip()}"


def poll_seconds(lost_after_s: float) -> float:
    """How often SLURM is asked: a few times within the bound, at most twice a minute."""
    return min(30.0, max(1.0, lost_after_s / 5))


def one_voice_for_submitit() -> None:
    """submitit's logger writes to its own handlers (stdout and stderr) and again through Hydra's: each line once,
    through Hydra's."""
    logging.getLogger("submitit").handlers.clear()


def returned(overrides: list[str], value: float) -> JobReturn:
    """A job's return that the launcher makes itself, as pipeline/experiment.py returns: its accuracy, NaN if failed."""
    made = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
    made.return_value = value
    return made


@dataclass
class BoundedWaitConf(SlurmQueueConf):
    """conf/hydra/launcher/slurm.yaml's settings: submitit's, and how long a job may be over without its result."""

    _target_: str = "hydra_plugins.hwlab_slurm.SlurmSweepLauncher"
    lost_after_min: float = LOST_AFTER_MIN


class BoundedWaitLauncher(SlurmLauncher):
    """Submits the sweep's jobs as Hydra's submitit launcher does (one job array), then waits for each job's result
    or gives it up (`Patience`); a job given up returns NaN, as a failed variant does (pipeline/experiment.py)."""

    def __init__(self, lost_after_min: float = LOST_AFTER_MIN, **params: Any) -> None:
        super().__init__(**params)
        self.lost_after_s = float(lost_after_min) * 60  # checked before the sweep starts (callback.check_sweep)

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        one_voice_for_submitit()  # in the job's process
        return super().__call__(*args, **kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        one_voice_for_submitit()
        jobs = {initial_job_idx + i: list(overrides) for i, overrides in enumerate(job_overrides)}
        done = self.kept(jobs)
        left = {number: overrides for number, overrides in jobs.items() if number not in done}
        if left:
            done.update(zip(left, self.gather(self.submit(left), list(left.values()))))
        return [done[number] for number in jobs]

    def kept(self, jobs: Mapping[int, list[str]]) -> dict[int, JobReturn]:
        """The jobs whose run finished in an earlier run of this sweep (the same command, run again): kept, not
        queued again (pipeline/experiment.py keeps them too, under any launcher)."""
        import mlflow

        from pipeline.sweeps.callback import child_name
        from pipeline.sweeps.results import finished_runs, kept_line

        sweep = self.sweep_file()
        if "parent_run_id" not in sweep:
            return {}
        runs = finished_runs(mlflow.MlflowClient(), sweep["parent_run_id"])
        metric = f"test.{OmegaConf.select(self.config, 'data.test_sets.0')}.accuracy"  # what a job returns
        kept = {}
        for number, overrides in jobs.items():
            name = child_name(overrides, sweep["varied"])
            if name in runs:
                print(f"sweep: {kept_line(runs[name])}")
                kept[number] = returned(overrides, runs[name].metrics.get(metric, math.nan))
        return kept

    def sweep_file(self) -> dict[str, Any]:
        from pipeline.core.files import read_json
        from pipeline.sweeps.callback import SWEEP_FILE

        assert self.config is not None
        return read_json(Path(str(self.config.hydra.sweep.dir)) / SWEEP_FILE)

    def submit(self, jobs: Mapping[int, list[str]]) -> list[Any]:
        """As hydra_submitit_launcher's `launch` submits them: its settings as sbatch's, one job array; each job
        numbered as in the whole sweep (its folder: hydra.sweep.subdir)."""
        import submitit

        assert self.config is not None
        params = dict(self.params)
        executor = submitit.AutoExecutor(
            folder=params.pop("submitit_folder"), cluster="slurm", slurm_max_num_timeout=params.pop("max_num_timeout")
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        state = Singleton.get_state()
        arguments = [(o, "hydra.sweep.dir", n, f"job_id_for_{n}", state) for n, o in jobs.items()]
        return executor.map_array(self, *zip(*arguments))

    def gather(self, jobs: Sequence[Any], overrides: Sequence[list[str]]) -> list[JobReturn]:
        """Each job's result as it comes; a job over for the bound without one, given up."""
        results: dict[int, JobReturn] = {}
        patience, scheduler = Patience(self.lost_after_s), Scheduler()
        next_question = 0.0
        while len(results) < len(jobs):
            for i, job in enumerate(jobs):
                if i not in results and job.paths.result_pickle.exists():
                    results[i] = self.outcome(job, overrides[i])
            waiting = {job.job_id: i for i, job in enumerate(jobs) if i not in results}
            now = time.monotonic()
            if waiting and now >= next_question:
                states = scheduler.states({job.split("_")[0] for job in waiting})
                for job_id in patience.given_up(states, waiting, now):
                    i = waiting[job_id]
                    if not jobs[i].paths.result_pickle.exists():  # not in the second since it was looked for
                        state = states.get(job_id) or scheduler.unknown()
                        results[i] = self.given_up(job_id, overrides[i], cancelled_if_held(job_id, state))
                next_question = now + poll_seconds(self.lost_after_s)
            if len(results) < len(jobs):
                time.sleep(1)
        return [results[i] for i in range(len(jobs))]

    def outcome(self, job: Any, overrides: list[str]) -> JobReturn:
        """The job's own result; a job whose submitit wrapper failed outside Hydra's job is given up with why."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return job.results()[0]
        except (FailedJobError, UncompletedJobError) as err:
            lines = [line for line in str(err).splitlines() if line.strip() and not line.startswith("-")]
            return self.given_up(job.job_id, overrides, f"failed in submitit: {lines[-1] if lines else err}")

    def given_up(self, job_id: str, overrides: list[str], what: str) -> JobReturn:
        """The line naming the job and what SLURM said; its run, if left RUNNING, ended FAILED."""
        name, fate = self.mark_run(overrides, f"job {job_id}: {what}")
        print(f"sweep: job {job_id} ({name}): {what} — {fate}", file=sys.stderr, flush=True)
        return returned(overrides, math.nan)

    def mark_run(self, overrides: list[str], why: str) -> tuple[str, str]:
        """The job's name in the sweep and what became of its MLflow run (a search's jobs, whose runs are its
        trials, are named only)."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from pipeline.sweeps.callback import child_name
        from pipeline.sweeps.results import sweep_runs
        from pipeline.tracking.runs import END_TAG

        sweep = self.sweep_file()
        name = child_name(overrides, sweep["varied"])
        if "parent_run_id" not in sweep:
            return name, "its search goes on without it"

        client = mlflow.MlflowClient()
        try:
            found = [r for r in sweep_runs(client, sweep["parent_run_id"]) if r.name == name]
            if not found:
                return name, "it made no run"
            if found[-1].status != "RUNNING":
                return name, f"its run ended {found[-1].status}"
            client.set_tag(found[-1].run_id, END_TAG, f"sweep: {why}")
            client.set_terminated(found[-1].run_id, "FAILED")
        except MlflowException as err:
            return name, f"its run could not be marked FAILED: {err}"
        return name, "its run marked FAILED"
