"""params.yaml as DVC's Hydra integration writes it: `conf/` composed, with optional overrides."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dvc.utils.hydra import compose_and_dump
from hydra.errors import HydraException

from pipeline.core.errors import UserError


def composed_params(conf_dir: Path, overrides: list[str]) -> str:
    """The text DVC would write to params.yaml for these overrides. An override Hydra refuses (an unknown key or
    option, a malformed value) is a UserError with Hydra's message, which says what to write instead."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        try:
            compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(conf_dir.parent), overrides)
        except HydraException as err:
            raise UserError(str(err)) from err
        return out.read_text(encoding="utf-8")
