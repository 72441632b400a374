"""Line coverage in the processes a test starts, for those whose code runs nowhere else: the tracking servers (the
team's rules, pipeline/tracking/team_app.py, run in their workers), `make member` (pipeline/team.py) and the SLURM
sweeps (pipeline/sweeps/slurm.py and the search's callback run in the sweep's own process). Not every process:
coverage's tracer makes a TensorFlow stage about a quarter slower (every process measured: the suite 3 min 14 s
longer, docs/development.md#coverage), and Hydra takes a tracer for a debugger, whose user gets whole tracebacks
where ours get one line."""

from __future__ import annotations

import coverage

PROCESS_CONFIG = "COVERAGE_PROCESS_CONFIG"  # read by coverage's start-up hook in every Python process of the venv


def followed() -> dict[str, str]:
    """What to add to a process's environment for coverage to measure it too, with this process's settings and into
    its data (combined at the end), when this test process is measured: `make test`, not `make test-fast`. The same
    setting coverage's own `patch = subprocess` passes to every process."""
    current = coverage.Coverage.current()
    return {} if current is None else {PROCESS_CONFIG: current.config.serialize()}


def slurm_jobs_unmeasured() -> list[str]:
    """The sweep's override that keeps its SLURM jobs out of coverage when the sweep is measured (`followed`): sbatch
    passes the sweep's environment on to its jobs, trainings whose code the in-process tests measure, and submitit
    runs the launcher's `setup` lines in each job's script first."""
    return [f'hydra.launcher.setup=["unset {PROCESS_CONFIG}"]'] if coverage.Coverage.current() else []
