"""How a launcher's job ends on a signal: in submitit's process, one line and 128 + the signal's number (nobody
above would report it); anywhere else the exception goes on to whoever started the job. The real signal to a real
SLURM job: tests/system/test_slurm.py. And how a signal waits while writes that belong together are made."""

from __future__ import annotations

import os
import signal

import pytest

from pipeline.core import interrupt
from pipeline.core.interrupt import Interrupted, job_stops_on_signals


def test_in_a_submitit_job_an_interruption_is_one_line_and_exit_status_143(default_handlers, monkeypatch, capsys):
    monkeypatch.setattr(interrupt, "main_module", lambda: interrupt.SUBMITIT_JOB)
    with pytest.raises(SystemExit) as ended, job_stops_on_signals("experiment"):
        raise Interrupted(signal.SIGTERM)
    assert ended.value.code == 143
    assert capsys.readouterr().err.splitlines() == [f"experiment: interrupted by SIGTERM; {interrupt.STAGE_AFTERMATH}"]


def test_elsewhere_the_interruption_goes_on_to_whoever_started_the_job(default_handlers, capsys):
    assert interrupt.main_module() != interrupt.SUBMITIT_JOB  # pytest's own
    with pytest.raises(Interrupted), job_stops_on_signals("experiment"):
        raise Interrupted(signal.SIGTERM)
    assert capsys.readouterr().err == ""


def test_a_signal_while_held_waits_for_the_outermost_release(default_handlers):
    """An end-of-epoch backup holds signals and writes files, each of which holds them too: the inner release must
    not let the signal cut the backup in two."""
    interrupt.raise_on_signals()
    interrupt.hold()
    with interrupt.held():
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped:
        interrupt.release()
    assert stopped.value.signum == signal.SIGTERM
    interrupt.release()  # one more than held: nothing
