"""The stage processes skip the interpreter's last garbage collection, and every exit handler still runs: ours,
MLflow's and logging's, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.repos import REPO

pytestmark = pytest.mark.slow  # every test here runs a real interpreter to its exit

# A cycle that only the cyclic collector frees; its finaliser leaves a mark when that collector reaches it.
SCRIPT = """
import atexit, os, sys
from pipeline.core.shutdown import skip_final_collection
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
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode], cwd=REPO, check=True)
    assert (tmp_path / "handler").exists()
    assert (tmp_path / "collected").exists() == (mode == "default")


# As in a stage: MLflow and logging register their exit handlers at import, before the freeze is registered.
STAGE_SCRIPT = """
import atexit, gc, logging.handlers, os, sys
import mlflow
from pipeline.core.shutdown import skip_final_collection
out = sys.argv[1]

def right_after_the_freeze():  # registered after MLflow's and logging's handlers, so it runs before them
    with open(os.path.join(out, "after_freeze"), "w") as f:
        f.write(f"frozen={gc.get_freeze_count() > 0} run_open={mlflow.active_run() is not None}")

atexit.register(right_after_the_freeze)
skip_final_collection()
# Records held in memory until logging's exit handler flushes them to the file.
log = logging.getLogger("stage")
log.addHandler(logging.handlers.MemoryHandler(100, target=logging.FileHandler(os.path.join(out, "stage.log"))))
log.warning("flushed at exit")
mlflow.set_tracking_uri("sqlite:///" + os.path.join(out, "mlflow.db"))
with open(os.path.join(out, "run_id"), "w") as f:
    f.write(mlflow.start_run().info.run_id)  # left open for MLflow's exit handler to end
"""


def test_mlflow_and_logging_exit_handlers_run_after_the_freeze_and_still_flush(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    subprocess.run(
        [sys.executable, "-c", STAGE_SCRIPT, str(tmp_path)], cwd=REPO, env=env, check=True, capture_output=True
    )
    assert (tmp_path / "after_freeze").read_text() == "frozen=True run_open=True"
    assert (tmp_path / "stage.log").read_text() == "flushed at exit\n"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run((tmp_path / "run_id").read_text()).info.status == "FINISHED"
