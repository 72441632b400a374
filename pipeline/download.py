"""Getting one file from an ordered list of sources (URL prefixes or local directories), verified.

A source that fails (unreachable, missing file, corrupt data, checksum mismatch) is noted and the next one is
tried; when all fail, one error lists every source and why it failed.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from pipeline.idx import decompress, read_bytes

CHUNK = 1 << 16
T = TypeVar("T")


class SourcesExhausted(RuntimeError):
    """Every source failed for a file; the message lists them all with their reasons."""


def is_url(source: str) -> bool:
    return "://" in source


def download(url: str, timeout: float) -> bytes:
    """The bytes at `url`, with a progress bar on stderr."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False,
                  file=sys.stderr) as bar:
            while chunk := resp.read(CHUNK):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def fetch_verified(
    filename: str,
    sources: Sequence[str],
    load: Callable[[bytes, str], T],
    timeout: float = 30.0,
) -> tuple[T, str]:
    """`load(content, where)` of `filename` (a .gz name) from the first source whose content it accepts.

    `load` verifies and parses the decompressed content, raising ValueError when it is wrong.
    Returns (what load returned, the source used).
    """
    failures: list[str] = []
    for source in sources:
        where = f"{source.rstrip('/')}/{filename}"
        try:
            if is_url(source):
                raw = download(where, timeout)
                content = decompress(raw, where)
            else:
                content = read_local(Path(source), filename)
            return load(content, where), source
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append(f"  {where}: {err}")
    tried = "\n".join(failures) if failures else "  (no sources configured)"
    raise SourcesExhausted(f"{filename}: every source failed:\n{tried}")


def read_local(directory: Path, filename: str) -> bytes:
    """A local mirror may hold the file compressed (as published) or already decompressed."""
    gz = directory / filename
    plain = directory / filename.removesuffix(".gz")
    if not gz.is_file() and plain.is_file():
        return read_bytes(plain)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {directory} does not exist")
    return read_bytes(gz)
