"""A test that would hang fails instead: a real SIGALRM after a few seconds interrupts whatever blocks (the open of a
FIFO with no writer, a read) and raises in the test's main thread."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Hung(Exception):
    pass


@contextmanager
def fails_after(seconds: float) -> Iterator[None]:
    def hung(signum, frame):
        raise Hung(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
