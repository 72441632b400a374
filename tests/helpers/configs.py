"""The configuration as the tests read it: one option file of conf/, and conf/ composed with the fast setting
shrunk to seconds."""

from __future__ import annotations

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests.helpers.repos import REPO


def conf(group: str, name: str) -> dict:
    """One option file of a config group (conf/<group>/<name>.yaml), the single source of truth, as a dict."""
    return yaml.safe_load((REPO / "conf" / group / f"{name}.yaml").read_text())


def tiny_config(overrides: list[str] = ()) -> DictConfig:
    """conf/ composed through Hydra as the stages see it, with the fast setting shrunk to seconds."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "experiment=fast",
                "data.train_limit=null",
                "evaluate.limit=null",
                "train.batch_size=32",
                "report.max_misclassified=12",
                "label_issues.max_shown=12",
                "report.grid_size=8",
                *overrides,
            ],
        )
