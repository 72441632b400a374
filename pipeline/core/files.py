"""Atomic output writing: a stage that fails leaves the previous output (or none), never half a file."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import interrupt


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary name keeps the suffix so that libraries that choose a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    interrupt.hold()  # a signal after the file is made but before the `try` that removes it would leave it behind
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    except BaseException:
        interrupt.release()
        raise
    tmp_path = Path(tmp)
    try:  # from here on, a signal's exception (pipeline/core/interrupt.py) removes it too
        os.close(fd)
        interrupt.release()  # raises here the signal that came meanwhile, if one did
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 would make outputs private to one user
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Like np.savez_compressed, but the same arrays always give the same bytes.

    numpy stamps every member of the zip with the time of writing, so re-running a stage would change its
    output's hash and make DVC rerun everything downstream; here every member carries a fixed date."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
