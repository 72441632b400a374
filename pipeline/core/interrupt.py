"""Stopping cleanly: SIGINT (Ctrl-C) and SIGTERM (`kill`, a scheduler's pre-emption) become an exception.

Raised where the process is, the exception unwinds through the `with` blocks that own runs and files: the MLflow
run is ended KILLED with the reason in a tag, temporary files are removed, a training's backup stays for the next
run to resume from, and the entrypoint exits with 128 + the signal's number, as a shell reports a killed process.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
received: str | None = None  # the name of the signal that stopped this process, for exit handlers to report
_held = 0  # how many `hold`s are not yet released: inside writes that must not be cut in two
_pending: int | None = None


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM. A BaseException, like KeyboardInterrupt, so that the `except
    Exception` that keeps a sweep going past one failed variant does not swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def raise_on_signals() -> None:
    """From now on, SIGINT or SIGTERM raises Interrupted in the main thread; a second one stops the process at
    once, as the signal would by default (for a user who does not want to wait for the cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; a launcher's worker threads inherit the process's

    def handler(signum: int, frame: FrameType | None) -> None:
        global received, _pending
        received = signal.Signals(signum).name
        for s in SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        if _held > 0:
            _pending = signum
            return
        raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)


STAGE_AFTERMATH = (
    "its MLflow run is marked KILLED and nothing half-written is left. Run the same command (or `dvc repro`) again: "
    "an interrupted training resumes after its last completed epoch."
)


def stop_on_signals(main: Callable[[], T], stage: str, aftermath: str = STAGE_AFTERMATH) -> T:
    """Run an entrypoint's `main` with SIGINT and SIGTERM raising Interrupted, and return what it returns; on a
    signal, one line on stderr (`<stage>: interrupted by SIGTERM; <aftermath>`) and exit status 128 + the signal's
    number. What was interrupted has already cleaned up on the way out."""
    raise_on_signals()
    try:
        return main()
    except Interrupted as stop:
        exit_interrupted(stop, stage, aftermath)


def exit_interrupted(stop: Interrupted, stage: str, aftermath: str = STAGE_AFTERMATH) -> NoReturn:
    """`<stage>: interrupted by SIGTERM; <aftermath>` on stderr, and exit status 128 + the signal's number."""
    print(f"{stage}: {stop}; {aftermath}", file=sys.stderr, flush=True)
    sys.exit(stop.exit_status)


SUBMITIT_JOB = "submitit.core._submit"  # the module a submitit job's process runs (`python -m …`), SLURM's or local


def main_module() -> str | None:
    """The module this process was started with (`python -m <module>`), or None for a script or a REPL."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else None


@contextmanager
def job_stops_on_signals(stage: str, aftermath: str = STAGE_AFTERMATH) -> Iterator[None]:
    """A launcher's job: SIGINT and SIGTERM raise Interrupted from here on, also in a launcher's worker process,
    which does not run the stage module's `__main__`. In a submitit job (a SLURM job, or `hydra/launcher=local`)
    nobody above would report it: submitit's own process would print its traceback and exit 1, and SLURM and the
    user would see a crash. There it ends as `stop_on_signals` ends a stage: one line and 128 + the signal's number.
    Submitit's own pre-emption signal (USR2, `signal_delay_s` before the time limit) stays submitit's: it requeues
    the job itself, or ends it when it may not.

    Elsewhere the exception goes on to whoever started the job: the sweep's own process (Hydra's basic launcher),
    which reports it, or a joblib worker's parent, which receives it."""
    raise_on_signals()
    try:
        yield
    except Interrupted as stop:
        if main_module() != SUBMITIT_JOB:
            raise
        exit_interrupted(stop, stage, aftermath)


def hold() -> None:
    """From now until `release`, a signal waits: writes that belong together (a training's end-of-epoch backup)
    are not cut in two. Holds nest: the signal waits for the outermost one's release. Only the main thread's
    count: the handler raises in the main thread alone, so other threads' writes are never cut by it."""
    global _held
    if threading.current_thread() is threading.main_thread():
        _held += 1


def release() -> None:
    """Raise the signal that came while held, if one did and this ends the outermost hold."""
    global _held, _pending
    if threading.current_thread() is not threading.main_thread():
        return
    _held = max(_held - 1, 0)
    if _held == 0 and _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)


@contextmanager
def held() -> Iterator[None]:
    """`hold` for the block, `release` after it, also when it raises."""
    hold()
    try:
        yield
    finally:
        release()
