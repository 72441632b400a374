"""The local data mirror: an environment setting, because where the files come from does not change them.

`HWLAB_DATA_MIRROR` names a folder laid out like NIST's and LeCun's downloads: `mnist/` with MNIST's four
IDX files, `emnist/` with NIST's EMNIST files (the gzip/ folder of NIST's archive). fetch copies what it needs
from there into data/raw/, verified and decompressed, so the raw files DVC tracks are the same whatever their
source, and DVC need not track the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV_VAR = "HWLAB_DATA_MIRROR"


def mirror_root(environ: Mapping[str, str] = os.environ) -> Path | None:
    value = environ.get(ENV_VAR, "").strip()
    return Path(value) if value else None


def mnist_sources(configured: Sequence[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """The mirror's `mnist/` first when set, then the configured sources in order."""
    root = mirror_root(environ)
    return ([str(root / "mnist")] if root else []) + list(configured)
