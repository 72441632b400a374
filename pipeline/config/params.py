"""params.yaml as DVC's Hydra integration writes it: `conf/` composed, with optional overrides."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dvc.utils.hydra import compose_and_dump


def composed_params(conf_dir: Path, overrides: list[str]) -> str:
    """The text DVC would write to params.yaml for these overrides."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(conf_dir.parent), overrides)
        return out.read_text(encoding="utf-8")
