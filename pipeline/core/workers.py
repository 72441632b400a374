"""A second process to hand work to while this one does the rest, or this process itself where a second one
should not be started."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor


class InProcess(Executor):
    """Runs each call at once, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def second_process() -> Executor:
    """One freshly spawned worker process; not inside a sweep's worker process, which runs the work itself: the
    cores are already shared out there (and joblib's workers cannot start processes the standard way)."""
    if multiprocessing.parent_process() is None:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return InProcess()
