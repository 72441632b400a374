"""The test suite's own first process: `pytest -n` loads the root conftest.py in a process that runs no test, so
what it imports at the top is paid before any worker starts (7 s for TensorFlow, Keras and MLflow on the AMD EPYC
with AVX512_BF16), on every `make test-fast`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.repos import REPO

HEAVY = ("tensorflow", "keras", "mlflow")


@pytest.mark.slow  # a Python process of its own: the only way to see what an import loads
def test_the_root_conftest_loads_neither_tensorflow_nor_keras_nor_mlflow():
    probe = f"import sys, tests.conftest; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not loaded, f"tests/conftest.py imports {loaded} when loaded: import them where a fixture uses them"
