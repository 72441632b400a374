"""Where the project is: the one module that finds the repository and its `conf/` from where the code lies.

The stages run in the repository (DVC and the README's commands start them there), but the tools are run from
anywhere (`python -m pipeline.predict` in a folder of images), and they still read the project's configuration.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # pipeline/core/paths.py -> the repository
CONF = ROOT / "conf"  # Hydra's configuration: the defaults list, its groups, and the settings tools default to
