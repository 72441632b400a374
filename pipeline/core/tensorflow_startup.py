"""TensorFlow's start-up chatter kept off the terminal, so that a command's first line on stderr is its own.

While TensorFlow's C++ libraries load and look for devices they log a few lines to stderr (absl's "All log messages
before absl::InitializeLog() is called are written to STDERR", oneDNN's notice, CUDA probes on a machine without a
GPU): before every model error, every stage's first line. TF_CPP_MIN_LOG_LEVEL does not reach them, since the
libraries log through absl before anything can configure it, straight to file descriptor 2. So the first import of
tensorflow, wherever it comes from (keras, mlflow.tensorflow, a stage), runs with file descriptor 2 on a pipe whose
log lines are dropped; any other line (a Python warning, a fatal error's last words) passes on as it comes.
TF_CPP_MIN_LOG_LEVEL=0 or 1 in the environment shows them all; after start-up it is 2 unless set (errors show).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# absl's and TensorFlow's log lines of severity info, warning and error (I0000 00:00:… file.cc:31] …); F, fatal, stays.
LOG_LINE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called|[IWE]\d{4} )")


@contextmanager
def without_log_lines(fd: int = 2) -> Iterator[None]:
    """File descriptor `fd` goes through a pipe meanwhile: TensorFlow's log lines are dropped, the rest forwarded."""
    try:
        target = os.dup(fd)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    os.dup2(write_end, fd)
    os.close(write_end)

    def forward() -> None:
        with open(read_end, "rb") as lines:
            for line in lines:
                if not LOG_LINE.match(line):
                    os.write(target, line)
        os.close(target)

    # A thread, not a buffer read at the end: a fatal error's message reaches the terminal before the abort.
    thread = threading.Thread(target=forward, name="tensorflow-startup-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(target, fd)  # closes the pipe's last write end: the thread reads to its end, then stops
        thread.join(timeout=10)


class QuietLoader(importlib.abc.Loader):
    """tensorflow's own loader, run without its log lines; it puts the real loader back once done."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        with without_log_lines():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the device search, which logs the CUDA probes, now


class QuietStartup(importlib.abc.MetaPathFinder):
    """Finds tensorflow as Python would, once, and has it loaded by QuietLoader."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_startup() -> None:
    """For every entrypoint (pipeline/__init__.py runs it before any stage or tool imports anything): the first
    import of tensorflow in this process logs nothing, unless TF_CPP_MIN_LOG_LEVEL asks for info or warnings."""
    level = os.environ.setdefault(LEVEL, "2")
    if level in ("0", "1") or "tensorflow" in sys.modules or any(isinstance(f, QuietStartup) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, QuietStartup())
