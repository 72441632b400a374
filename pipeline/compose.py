"""Write params.yaml as DVC's Hydra integration does: `conf/` composed, with optional overrides.

`python -m pipeline.compose [override ...]`; the test suite fails when params.yaml and conf/ disagree.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from dvc.utils.hydra import compose_and_dump

from pipeline.core.paths import CONF, ROOT


def composed_params(conf_dir: Path, overrides: list[str]) -> str:
    """The text DVC would write to params.yaml for these overrides."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "params.yaml"
        compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(conf_dir.parent), overrides)
        return out.read_text(encoding="utf-8")


def main(argv: list[str]) -> None:
    (ROOT / "params.yaml").write_text(composed_params(CONF, argv), encoding="utf-8")
    print(f"wrote {ROOT / 'params.yaml'}" + (f" with {' '.join(argv)}" if argv else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
