"""conf/ is the source of truth: params.yaml must be exactly its composition, as DVC's Hydra integration writes it."""

from __future__ import annotations

import configparser

from pipeline.config.params import composed_params
from tests.conftest import REPO


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
