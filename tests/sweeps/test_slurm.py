"""The pure parts of a sweep's SLURM launcher: what SLURM says of a job, read from sacct and squeue, and when a job
that is over without its result is given up. The launcher itself runs against a real cluster in
tests/system/test_slurm.py."""

from __future__ import annotations

import pytest

from pipeline.sweeps.slurm import JobState, Patience, from_sacct, from_squeue, merged, poll_seconds

SACCT = """JobID|State|ExitCode
12_0|CANCELLED by 1000|0:15
12_0.batch|CANCELLED|0:15
12_1|COMPLETED|0:0
12_[2-3]|PENDING|0:0
13|FAILED|1:0
"""


def test_sacct_says_each_job_its_state_and_exit_code():
    states = from_sacct(SACCT)
    assert states["12_0"] == JobState("CANCELLED", "CANCELLED by 1000 (exit code 0:15)")
    assert states["12_1"] == JobState("COMPLETED", "COMPLETED")
    assert states["12_2"].coming and states["12_3"].coming  # an array's tasks not yet started: one line
    assert states["13"] == JobState("FAILED", "FAILED (exit code 1:0)")
    assert "12_0.batch" not in states  # a job's steps are not jobs


def test_squeue_says_each_job_its_state_and_reason():
    states = from_squeue("12_0|CANCELLED|None\n12_1|RUNNING|None\n12_2|PENDING|BeginTime\n13|FAILED|NonZeroExitCode\n")
    assert states["12_0"] == JobState("CANCELLED", "CANCELLED")
    assert states["12_2"] == JobState("PENDING", "PENDING (BeginTime)") and states["12_2"].coming
    assert states["13"].said == "FAILED (NonZeroExitCode)" and not states["13"].coming
    assert from_squeue("") == {}


@pytest.mark.parametrize(
    "state", ["COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"]
)
def test_a_job_that_ended_is_over(state):
    assert not JobState(state, state).coming


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING"])
def test_a_queued_running_or_requeued_job_may_still_come(state):
    assert JobState(state, state).coming


@pytest.mark.parametrize(
    "line",
    [
        "12_2|PENDING|JobHeldUser",  # scontrol hold
        "12_2|PENDING|JobHeldAdmin",
        "12_2|PENDING|launch failed requeued held",  # SLURM's own, after a launch that failed
        "12_2|REQUEUE_HOLD|JobHeldUser",  # scontrol requeuehold
        "12_2|SPECIAL_EXIT|None",
    ],
)
def test_a_held_job_is_over_until_someone_releases_it(line):
    state = from_squeue(line)["12_2"]
    assert state.held and state.queued and not state.coming
    patience = Patience(60)
    assert patience.given_up({"12_2": state}, ["12_2"], 0) == []
    assert patience.given_up({"12_2": state}, ["12_2"], 60) == ["12_2"]


def test_squeue_says_why_a_job_waits_and_sacct_how_one_ended():
    queue = from_squeue("12_0|FAILED|NonZeroExitCode\n12_2|PENDING|JobHeldUser\n12_3|PENDING|BeginTime\n")
    accounts = from_sacct(SACCT)  # 12_0 cancelled, 12_1 completed, 12_2 and 12_3 pending, 13 failed
    states = merged(queue, accounts)
    assert states["12_0"].said == "CANCELLED by 1000 (exit code 0:15)"  # ended: sacct's, with its exit code
    assert states["12_1"].said == "COMPLETED"  # no longer in the queue: sacct's
    assert states["12_2"].held and states["12_3"].said == "PENDING (BeginTime)"  # waiting: squeue's, with why
    assert merged(queue, {}) == queue  # no accounting: squeue's alone
    assert merged({}, accounts) == accounts


def test_a_job_over_for_the_bound_is_given_up_and_one_requeued_meanwhile_is_not():
    patience = Patience(60)
    running = {"12_0": JobState("RUNNING", "RUNNING"), "12_1": JobState("RUNNING", "RUNNING")}
    assert patience.given_up(running, ["12_0", "12_1"], 0) == []
    ended = {"12_0": JobState("CANCELLED", "CANCELLED"), "12_1": JobState("FAILED", "FAILED")}
    assert patience.given_up(ended, ["12_0", "12_1"], 100) == []  # over since now
    assert patience.given_up(ended, ["12_0", "12_1"], 159) == []
    requeued = {"12_0": JobState("CANCELLED", "CANCELLED"), "12_1": JobState("PENDING", "PENDING (BeginTime)")}
    assert patience.given_up(requeued, ["12_0", "12_1"], 160) == ["12_0"]
    assert patience.given_up(ended, ["12_1"], 200) == []  # its clock started again when it ended again
    assert patience.given_up(ended, ["12_1"], 260) == ["12_1"]


def test_a_job_slurm_no_longer_knows_is_over():
    patience = Patience(60)
    assert patience.given_up({}, ["12_0"], 0) == []
    assert patience.given_up({}, ["12_0"], 60) == ["12_0"]


def test_slurm_is_asked_a_few_times_within_the_bound_and_not_more_than_twice_a_minute():
    assert poll_seconds(15) == 3
    assert poll_seconds(300) == 30
    assert poll_seconds(1) == 1
