"""The decorator that makes a stage's `main` a Hydra entrypoint: `conf/config.yaml` composed with the command line.

Where conf/ is comes from pipeline/core/paths.py, as an absolute path: no stage repeats `config_path="../conf"`.
Hydra still names the job, and so its output folders, after the module of the decorated function.
"""

from __future__ import annotations

import hydra

from pipeline.core.paths import CONF

hydra_main = hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
