"""The second process the report hands its PDFs to, and the stand-in that runs the work in this process."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from pipeline.core.workers import InProcess, second_process


def test_in_process_runs_each_call_before_submit_returns():
    calls = []
    future = InProcess().submit(lambda x, y: calls.append((x, y)) or x + y, 2, y=3)
    assert calls == [(2, 3)] and future.done() and future.result() == 5


def test_a_process_that_is_no_worker_gets_a_second_process():
    # No process starts until work is submitted: this costs nothing.
    with second_process() as pool:
        assert isinstance(pool, ProcessPoolExecutor)
