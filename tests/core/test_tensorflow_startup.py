"""TensorFlow's start-up lines never reach stderr: a real file descriptor 2 through the filter, then every entrypoint
in a fresh interpreter, where TensorFlow really starts."""

from __future__ import annotations

import os

import pytest

from pipeline.core.tensorflow_startup import without_log_lines
from tests.helpers.imports import pipeline_modules
from tests.helpers.repos import entrypoint

CHATTER = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796186229.252496    3028 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1796186229.253434    3028 cudart_stub.cc:31] Could not find cuda drivers on your machine\n",
    b"W0000 00:00:1796186229.253434    3028 some.cc:1] a warning\n",
    b"E0000 00:00:1796186235.387458    3028 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
]


def test_log_lines_are_dropped_and_everything_else_passes_as_written(capfd):
    with without_log_lines():
        for line in CHATTER[:2]:
            os.write(2, line)
        os.write(2, b"UserWarning: ours, between them\n")
        for line in CHATTER[2:]:
            os.write(2, line)
        os.write(2, b"F0000 00:00:1.0 1 cpu_feature_guard.cc:1] fatal: this CPU lacks AVX\n")
        os.write(2, b"no newline at the end")
    os.write(2, b"\nafter: " + CHATTER[1])  # stderr is itself again
    assert capfd.readouterr().err == (
        "UserWarning: ours, between them\n"
        "F0000 00:00:1.0 1 cpu_feature_guard.cc:1] fatal: this CPU lacks AVX\n"
        "no newline at the end\n"
        f"after: {CHATTER[1].decode()}"
    )


ENTRYPOINTS = sorted(m for m, path in pipeline_modules().items() if m.count(".") == 1 and path.name != "__init__.py")


@pytest.mark.slow  # a real interpreter that loads TensorFlow
def test_no_entrypoint_prints_tensorflows_start_up_lines(tmp_path):
    """Every entrypoint imported in turn, then tensorflow, in one interpreter: TensorFlow starts (with the first that
    loads it) behind pipeline/__init__.py's hook, which any entrypoint's import runs first, and each entrypoint's own
    import prints nothing. The line after each import says which one printed what comes before it; one interpreter
    for all of them, not one each: each would load TensorFlow again, seconds apiece, to show the same hook at work."""
    script = "import importlib, os\n" + "".join(
        f"importlib.import_module({name!r}); os.write(2, b'imported {name}\\n')\n" for name in ENTRYPOINTS
    )
    result = entrypoint(["-c", script + "import tensorflow"], tmp_path)
    assert result.returncode == 0
    assert result.stderr == "".join(f"imported {name}\n" for name in ENTRYPOINTS)


@pytest.mark.slow  # a real interpreter that loads TensorFlow
def test_tf_cpp_min_log_level_0_shows_them(tmp_path):
    """Which is also what shows that the test above can fail: here, TensorFlow does log at start-up."""
    result = entrypoint(["-c", "import pipeline, tensorflow"], tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0 and "I0000 " in result.stderr
