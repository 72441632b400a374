"""conf/ is the source of truth: params.yaml must be exactly its composition, as DVC's Hydra integration writes it;
and the names conf/ answers to keep composing what they always did."""

from __future__ import annotations

import configparser

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pipeline.config.params import composed_params
from tests.helpers.repos import REPO


def test_params_yaml_is_the_composition_of_conf():
    expected = composed_params(REPO / "conf", [])
    actual = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert actual == expected, "params.yaml differs from conf/: run `python -m pipeline.compose` and commit it"


def test_dvc_composes_conf_with_hydra():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    assert config["hydra"]["enabled"] == "true"


def test_fast_setting_composes():
    fast = composed_params(REPO / "conf", ["experiment=fast"])
    assert "epochs: 1\n" in fast and "train_limit: 10000\n" in fast


def hydra_composed(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize("number", [f"{n:03d}" for n in range(5)])
def test_the_old_names_of_the_origin_setups_still_work(number):
    """`experiment=seed003` was promised to keep working when the origin projects' setups were renamed: each
    seedNNN is originNNN, and not merely the default."""
    old, new = hydra_composed([f"experiment=seed{number}"]), hydra_composed([f"experiment=origin{number}"])
    assert old == new != hydra_composed([])
