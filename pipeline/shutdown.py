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

    Call it first thing in a `__main__` block: exit handlers run last-registered first, so this one runs after
    every handler registered later (MLflow's, logging's), which still run and still flush what they hold."""
    atexit.register(gc.freeze)
