"""Where the project is: the one module that knows the repository and its `conf/` (from where the code lies) and
the user's project (from where a command runs).

The stages run in the repository (DVC and the README's commands start them there), but the tools are run from
anywhere (`python -m pipeline.predict` in a folder of images), and they still read the project's configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # pipeline/core/paths.py -> the repository
CONF = ROOT / "conf"  # Hydra's configuration: the defaults list, its groups, and the settings tools default to


def project_root(environ: Mapping[str, str] = os.environ) -> Path:
    """The user's project at run time, where its data and MLflow store are: the current folder, or DVC_ROOT when DVC
    runs a queued experiment in a temporary copy (DVC then points it at the original, so that every run lands in
    one store). ROOT is where the code is: the same folder when the stages run, not when a tool runs elsewhere."""
    return Path(environ.get("DVC_ROOT") or ".").resolve()
