"""NIST's EMNIST archive (`gzip.zip`, 535.7 MB): downloaded resumably, verified by MD5, read member by member.

The archive holds every split as `gzip/emnist-<split>-<part>-<images|labels>-idx?-ubyte.gz` plus the mapping
files; fetch extracts only the members the configured datasets need, then deletes it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pipeline.data.checksums import ChecksumError
from pipeline.data.download import download_file, file_md5, first_that_works
from pipeline.data.idx import decompress


def fetch_archive(urls: Sequence[str], dest: Path, md5: str, timeout: float) -> Path:
    """`dest` holding the archive with the expected MD5, from the first URL that serves it.

    A partial download left by an earlier attempt is resumed; an archive with the wrong MD5 is deleted (it is
    our own download) so that the next attempt starts afresh."""

    def attempt(url: str) -> Path:
        if not dest.is_file():
            print(f"fetch: downloading {url} to {dest}", flush=True)
            download_file(url, dest, timeout)
        actual = file_md5(dest)
        if actual != md5:
            dest.unlink()
            raise ChecksumError(
                f"MD5 of the download is {actual}, expected {md5} (fetch.emnist.md5) — "
                f"corrupt or not NIST's archive; deleted it"
            )
        print(f"fetch: {dest.name} <- {url} (md5 verified)", flush=True)
        return dest

    return first_that_works(dest.name, urls, attempt, none_configured="no archive configured in fetch.emnist.archives")


def member_names(archive: Path) -> dict[str, str]:
    """{file name without .gz: member path} for every file in the archive, whatever folder it is in."""
    with zipfile.ZipFile(archive) as zf:
        return {PurePosixPath(m).name.removesuffix(".gz"): m for m in zf.namelist() if not m.endswith("/")}


def read_member(archive: Path, member: str) -> bytes:
    """A member's decompressed content."""
    with zipfile.ZipFile(archive) as zf:
        return decompress(zf.read(member), f"{archive}:{member}")
