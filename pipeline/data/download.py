"""Getting one file from an ordered list of sources (URL prefixes or local directories), verified.

A source that fails (unreachable, missing file, corrupt data, checksum mismatch) is noted and the next one is
tried; when all fail, one error lists every source and why it failed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from pipeline.core.errors import UserError
from pipeline.data.idx import decompress, read_bytes

CHUNK = 1 << 16
S = TypeVar("S")
T = TypeVar("T")


class SourcesExhausted(UserError, RuntimeError):
    """Every source failed for a file; the message lists them all with their reasons."""


# What a failing source raises: unreachable or refusing (URLError, OSError), dropped mid-transfer
# (HTTPException), or serving wrong content (ValueError, which checksum and IDX errors are).
SOURCE_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException, ValueError)


def is_url(source: str) -> bool:
    return "://" in source


def download(url: str, timeout: float) -> bytes:
    """The bytes at `url`, with a progress bar on stderr."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False, file=sys.stderr
        ) as bar:
            while chunk := resp.read(CHUNK):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of `dest` wait for the next attempt."""
    return dest.with_name(dest.name + ".part")


def resume_offset(status: int, content_range: str | None, have: int) -> int:
    """Where the body of a response to `Range: bytes=<have>-` starts: `have` when the server honoured the range
    (206 with a matching Content-Range), 0 when it sent the whole file (200)."""
    if status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
        if not match or int(match.group(1)) != have:
            raise http.client.HTTPException(f"asked for bytes from {have}, server sent range {content_range!r}")
        return have
    return 0


def download_file(url: str, dest: Path, timeout: float) -> Path:
    """Download `url` to `dest`, resuming an earlier attempt's partial file with an HTTP Range request.

    The bytes go to `dest.part` as they arrive, so a dropped connection or a killed process loses nothing: the
    next call asks only for the rest. `dest` appears only once the whole body has arrived."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:
            raise
        # The range starts at the end: an earlier attempt got every byte but was stopped before the rename.
        os.replace(part, dest)
        return dest
    with response:
        start = resume_offset(response.status, response.headers.get("Content-Range"), have)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with (
            open(part, "ab" if start else "wb") as out,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                file=sys.stderr,
                leave=False,
                mininterval=1.0,
            ) as bar,
        ):
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got != total:
        raise http.client.IncompleteRead(b"", total - got)
    os.replace(part, dest)
    return dest


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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

    def where(source: str) -> str:
        return f"{source.rstrip('/')}/{filename}"

    def attempt(source: str) -> tuple[T, str]:
        path = where(source)
        content = decompress(download(path, timeout), path) if is_url(source) else read_local(Path(source), filename)
        return load(content, path), source

    return first_that_works(filename, sources, attempt, where)


def first_that_works(
    what: str,
    sources: Sequence[S],
    attempt: Callable[[S], T],
    where: Callable[[S], str] = str,
    none_configured: str = "no sources configured",
) -> T:
    """`attempt(source)` of the first source for which it raises none of SOURCE_ERRORS; when every one does, a
    SourcesExhausted error for `what` that lists each source (as `where` names it) with why it failed."""
    failures = []
    for source in sources:
        try:
            return attempt(source)
        except SOURCE_ERRORS as err:
            failures.append(f"  {where(source)}: {describe(err)}")
    tried = "\n".join(failures) if failures else f"  ({none_configured})"
    raise SourcesExhausted(f"{what}: every source failed:\n{tried}")


def describe(err: Exception) -> str:
    """One line for a failed source; IncompleteRead's own text is only byte counts."""
    if isinstance(err, http.client.IncompleteRead):
        return f"connection dropped, {err.expected} bytes short (the next run resumes where it stopped)"
    return str(err) or type(err).__name__


def read_local(directory: Path, filename: str) -> bytes:
    """A local mirror may hold the file compressed (as published) or already decompressed."""
    gz = directory / filename
    plain = directory / filename.removesuffix(".gz")
    if not gz.is_file() and plain.is_file():
        return read_bytes(plain)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {directory} does not exist")
    return read_bytes(gz)
