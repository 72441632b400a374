"""The stage processes skip the interpreter's last garbage collection, and every exit handler still runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A cycle that only the cyclic collector frees; its finaliser leaves a mark when that collector reaches it.
SCRIPT = """
import atexit, os, sys
from pipeline.shutdown import skip_final_collection
if sys.argv[2] == "skip":
    skip_final_collection()
atexit.register(lambda: open(os.path.join(sys.argv[1], "handler"), "w").close())
mark = os.path.join(sys.argv[1], "collected")
class Cycle:
    def __init__(self):
        self.me = self
    def __del__(self, open=open, mark=mark):
        open(mark, "w").close()
Cycle()
"""


@pytest.mark.parametrize("mode", ["skip", "default"])
def test_exit_skips_the_last_collection_but_not_the_exit_handlers(tmp_path, mode):
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode], cwd=ROOT, check=True)
    assert (tmp_path / "handler").exists()
    assert (tmp_path / "collected").exists() == (mode == "default")
