"""A faster exit for the stage processes.

When the interpreter exits it runs a last garbage collection over every object still alive. After TensorFlow,
Keras and MLflow have been imported that is millions of objects, and it takes 1-2 s per process (2 s of the
evaluate stage's 20: bench/RESULTS.md) only to free memory that the operating system takes back anyway.
"""

from __future__ import annotations

import atexit
import gc


def skip_final_collection() -> None:
    """Freeze every object at exit so that the last collection has nothing to walk.

    Call it in a `__main__` block. Exit handlers run last-registered first, so the freeze runs before the handlers
    registered at import (logging's shutdown, MLflow's end of a run left open) and after those registered later
    (MLflow's queues for asynchronous logging, started on first use). The order does not matter: freezing only
    takes objects out of the cyclic collector's reach, so every handler still runs and flushes what it holds, and
    what it lets go of is still freed by reference counting (tests/core/test_shutdown.py). What is skipped is the
    finalisers of objects in reference cycles that are garbage at exit: the stages close files and runs in `with`
    blocks rather than leave them to a finaliser."""
    atexit.register(gc.freeze)
