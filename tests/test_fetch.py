"""Fetching raw data: MNIST from an ordered list of sources, EMNIST from the mirror or NIST's archive over HTTP
(a loopback server standing in for NIST), verified, resumed after a dropped connection, never overwriting a file
that is already there."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest
import yaml

from pipeline.data import checksums
from pipeline.data.archive import fetch_archive
from pipeline.data.datasets import save_dataset
from pipeline.data.download import SourcesExhausted, fetch_verified, first_that_works, partial_path, resume_offset
from pipeline.data.mirror import mnist_sources
from pipeline.data.sources import parse_datasets
from pipeline.fetch import MNIST_FILES, Origins, fetch_emnist, fetch_mnist, verified_content
from pipeline.ingest import ingest_dataset, load_mnist
from tests.helpers.idx import write_idx
from tests.helpers.repos import REPO
from tests.helpers.servers import FileServer

KNOWN = checksums.KNOWN_SHA256
DATASETS = parse_datasets(yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["ingest"]["datasets"])
REFUSED = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once


def test_mirror_comes_first_then_configured_sources():
    assert mnist_sources(["https://a/"], {"HWLAB_DATA_MIRROR": "/m"}) == ["/m/mnist", "https://a/"]
    assert mnist_sources(["https://a/"], {}) == ["https://a/"]


def test_resume_offset_needs_the_range_it_asked_for():
    assert resume_offset(206, "bytes 100-999/1000", 100) == 100
    assert resume_offset(200, None, 100) == 0  # the server ignored the range: the whole file comes again
    with pytest.raises(Exception, match="asked for bytes from 100"):
        resume_offset(206, "bytes 0-999/1000", 100)


def test_fetches_real_mnist_past_failing_sources(mirror, tmp_path, capsys):
    """An empty folder and a refused URL are passed over; the mirror's files verify and are stored plain."""
    raw = tmp_path / "raw"
    fetch_mnist(raw, [str(tmp_path / "empty"), REFUSED, str(mirror / "mnist")], KNOWN, timeout=5)
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    ds = load_mnist(raw, KNOWN)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert np.bincount(ds.y_test).tolist()[:3] == [980, 1135, 1032]  # MNIST's published test class counts
    assert "sha256 verified" in capsys.readouterr().out


def test_mnist_over_http_gives_the_same_raw_files_as_the_mirror(mirror, tmp_path):
    """The mirror's train images were recompressed (other .gz bytes): the stored content is the same anyway."""
    with FileServer(mirror) as server:
        fetch_mnist(tmp_path / "http", [server.url("mnist/")], KNOWN, timeout=10)
    fetch_mnist(tmp_path / "mirror", [str(mirror / "mnist")], KNOWN, timeout=10)
    assert [r.path for r in server.requests] == [f"/mnist/{name}.gz" for name in MNIST_FILES]
    for name in MNIST_FILES:
        assert (tmp_path / "http" / name).read_bytes() == (tmp_path / "mirror" / name).read_bytes(), name


def test_a_file_already_in_raw_is_verified_and_kept_as_it_is(mirror, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    mine = raw / "t10k-labels-idx1-ubyte.gz"
    shutil.copy(mirror / "mnist" / mine.name, mine)
    before = mine.stat().st_mtime_ns
    fetch_mnist(raw, [str(mirror / "mnist")], KNOWN, timeout=5)
    assert mine.stat().st_mtime_ns == before and mine.read_bytes() == (mirror / "mnist" / mine.name).read_bytes()
    assert not (raw / "t10k-labels-idx1-ubyte").exists()  # no second copy beside it


def test_a_corrupt_file_in_raw_stops_fetch_and_stays(mirror, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    content = bytearray(gzip.decompress((mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    content[100] ^= 1
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(content))
    with pytest.raises(checksums.ChecksumError, match=r"t10k-labels-idx1-ubyte: SHA-256 .* delete it"):
        fetch_mnist(raw, [str(mirror / "mnist")], KNOWN, timeout=5)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == bytes(content)


def test_accepts_recompressed_and_decompressed_copies(mirror, tmp_path):
    """The content is what is verified, not the .gz bytes: a raw (decompressed) file in a mirror is accepted."""
    name = "t10k-labels-idx1-ubyte"
    (tmp_path / name).write_bytes(gzip.decompress((mirror / "mnist" / f"{name}.gz").read_bytes()))
    content, source = fetch_verified(f"{name}.gz", [str(tmp_path)], verified_content(name, KNOWN))
    assert source == str(tmp_path) and len(content) == 10008


def test_checksum_mismatch_is_reported_per_source_and_nothing_returned(mirror, tmp_path):
    name = "t10k-labels-idx1-ubyte"
    content = bytearray(gzip.decompress((mirror / "mnist" / f"{name}.gz").read_bytes()))
    content[100] ^= 1  # one flipped bit: still a valid IDX file, but not MNIST's
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / f"{name}.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(SourcesExhausted) as err:
        fetch_verified(f"{name}.gz", [str(bad), str(tmp_path / "missing")], verified_content(name, KNOWN))
    message = str(err.value)
    assert f"{bad}/{name}.gz: SHA-256 of the decompressed content is" in message
    assert f"{tmp_path / 'missing'}/{name}.gz" in message and "does not exist" in message


def test_every_source_failing_lists_them_all(tmp_path):
    with pytest.raises(
        SourcesExhausted, match=r"(?s)t10k-labels-idx1-ubyte.gz: every source failed:.*127.0.0.1:9.*empty"
    ):
        fetch_verified(
            "t10k-labels-idx1-ubyte.gz",
            [REFUSED, str(tmp_path / "empty")],
            verified_content("t10k-labels-idx1-ubyte", KNOWN),
            timeout=5,
        )


def failing_but(good: str | None):
    """An attempt that raises FileNotFoundError for every source but `good`, recording each source it is given."""
    tried = []

    def attempt(source: str) -> str:
        tried.append(source)
        if source != good:
            raise FileNotFoundError(f"no {source} here")
        return source.upper()

    return attempt, tried


def test_the_first_source_that_works_is_used_and_those_after_it_are_not_tried():
    attempt, tried = failing_but("b")
    assert first_that_works("f.gz", ["a", "b", "c"], attempt) == "B"
    assert tried == ["a", "b"]


def test_when_every_source_fails_one_error_lists_each_with_its_reason():
    attempt, _ = failing_but(None)
    with pytest.raises(SourcesExhausted) as err:
        first_that_works("f.gz", ["a", "b"], attempt, where=lambda s: f"{s}/f.gz")
    assert str(err.value) == "f.gz: every source failed:\n  a/f.gz: no a here\n  b/f.gz: no b here"
    with pytest.raises(SourcesExhausted) as err:
        first_that_works("f.gz", [], attempt)
    assert str(err.value) == "f.gz: every source failed:\n  (no sources configured)"


def test_the_archive_lists_each_url_that_failed_or_says_none_was_configured(tmp_path):
    with pytest.raises(SourcesExhausted) as err:
        fetch_archive([f"{REFUSED}gzip.zip"], tmp_path / "gzip.zip", "0" * 32, timeout=5)
    assert str(err.value).startswith(f"gzip.zip: every source failed:\n  {REFUSED}gzip.zip: <urlopen error")
    with pytest.raises(SourcesExhausted) as err:
        fetch_archive([], tmp_path / "gzip.zip", "0" * 32, timeout=5)
    assert str(err.value) == "gzip.zip: every source failed:\n  (no archive configured in fetch.emnist.archives)"


def test_verify_known_unknown_and_wrong():
    known = {"f": checksums.sha256(b"abc")}
    assert checksums.verify("f", b"abc", "here", known) == known["f"]
    assert checksums.verify("g", b"abc", "here", known) is None
    with pytest.raises(checksums.ChecksumError, match="here: SHA-256"):
        checksums.verify("f", b"abd", "here", known)


# NIST's archive, served from 127.0.0.1 (conftest's official_site).


def archive_fetch(server: FileServer, md5: str, tmp_path, raw_name: str = "raw", mirror=None) -> dict:
    return fetch_emnist(
        DATASETS,
        Origins(tmp_path / raw_name, mirror),
        [server.url("EMNIST/gzip.zip")],
        tmp_path / "downloads" / "gzip.zip",
        md5,
        KNOWN,
        timeout=10,
    )


def test_archive_download_extracts_only_what_the_datasets_need(official_site, mirror, tmp_path):
    """The archive (which, like the mirror, lacks the digits and balanced images) is downloaded once, the files of
    each dataset's first complete source are extracted, the archive is deleted; the raw files and the prepared
    datasets are the same, byte for byte, as from the mirror."""
    root, md5 = official_site
    with FileServer(root) as server:
        chosen = archive_fetch(server, md5, tmp_path)
    assert [(r.path, r.range, r.status) for r in server.requests] == [("/EMNIST/gzip.zip", None, 200)]
    assert {name: s.split for name, s in chosen.items()} == {"emnist_digits": "byclass", "emnist_balanced": "bymerge"}
    raw = tmp_path / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        f"emnist-{split}-{f}"
        for split in ("byclass", "bymerge")
        for f in ("mapping.txt", "test-images-idx3-ubyte", "test-labels-idx1-ubyte")
    )
    assert list((tmp_path / "downloads").iterdir()) == []  # neither the archive nor a partial file is kept

    fetch_emnist(
        DATASETS,
        Origins(tmp_path / "from_mirror", mirror / "emnist"),
        [REFUSED],
        tmp_path / "unused",
        md5,
        KNOWN,
        timeout=5,
    )
    for f in raw.iterdir():
        assert f.read_bytes() == (tmp_path / "from_mirror" / f.name).read_bytes(), f.name
    for name, sources in DATASETS.items():
        for folder in ("raw", "from_mirror"):
            save_dataset(tmp_path / f"{folder}.npz", ingest_dataset(name, tmp_path / folder, sources, KNOWN))
        assert (tmp_path / "raw.npz").read_bytes() == (tmp_path / "from_mirror.npz").read_bytes(), name


def test_an_interrupted_download_resumes_where_it_stopped(official_site, tmp_path):
    root, md5 = official_site
    size = (root / "EMNIST" / "gzip.zip").stat().st_size
    cut = 10 << 20
    with FileServer(root, drop_after=cut) as server:
        with pytest.raises(FileNotFoundError, match=r"(?s)gzip.zip: every source failed:.*connection dropped"):
            archive_fetch(server, md5, tmp_path)
        part = partial_path(tmp_path / "downloads" / "gzip.zip")
        assert part.stat().st_size == cut and not (tmp_path / "raw").exists()
        archive_fetch(server, md5, tmp_path)
    first, second = server.requests
    assert (first.range, first.sent) == (None, cut)
    assert (second.range, second.status, second.sent) == (f"bytes={cut}-", 206, size - cut)
    assert len(list((tmp_path / "raw").iterdir())) == 6 and not part.exists()


def test_an_archive_with_the_wrong_checksum_is_rejected_and_nothing_written(official_site, tmp_path):
    root, _ = official_site
    with FileServer(root) as server, pytest.raises(FileNotFoundError) as err:
        archive_fetch(server, "0" * 32, tmp_path)
    assert "MD5 of the download is" in str(err.value) and "expected 00000000" in str(err.value)
    assert not (tmp_path / "raw").exists() and list((tmp_path / "downloads").iterdir()) == []


def test_no_obtainable_source_names_every_source_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        fetch_emnist(
            DATASETS,
            Origins(tmp_path / "raw", None),
            [REFUSED + "gzip.zip"],
            tmp_path / "gzip.zip",
            "0" * 32,
            KNOWN,
            timeout=5,
        )
    message = str(err.value)
    assert "emnist_digits: no configured source can be had" in message
    assert "EMNIST byclass test, classes 0-9: missing emnist-byclass-mapping.txt" in message
    assert f"{REFUSED}gzip.zip: " in message and "HWLAB_DATA_MIRROR" in message


def test_a_split_put_into_raw_by_hand_is_used_and_left_alone(mirror, tmp_path):
    """NIST's official balanced split, copied in by hand (tiny stand-ins here): fetch uses it, adds no bymerge
    files for that dataset, and changes nothing of what the user put there."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(mirror / "emnist" / "emnist-balanced-mapping.txt", raw)
    for part in ("train", "test"):
        write_idx(raw / f"emnist-balanced-{part}-images-idx3-ubyte.gz", np.zeros((47, 28, 28), np.uint8))
        write_idx(raw / f"emnist-balanced-{part}-labels-idx1-ubyte.gz", np.arange(47, dtype=np.uint8))
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir()}
    known = {k: v for k, v in KNOWN.items() if not k.startswith("emnist-balanced-") or k.endswith("mapping.txt")}
    chosen = fetch_emnist(
        DATASETS, Origins(raw, mirror / "emnist"), [REFUSED], tmp_path / "gzip.zip", "0" * 32, known, timeout=5
    )
    assert chosen["emnist_balanced"].split == "balanced"
    assert not any(p.name.startswith("emnist-bymerge") for p in raw.iterdir())
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in raw.iterdir() if p.name in before} == before
    ds = ingest_dataset("emnist_balanced", raw, DATASETS["emnist_balanced"], known)
    assert len(ds.x_train) == 47 and ds.source == "EMNIST balanced train+test"
    assert os.listdir(tmp_path) == ["raw"]  # nothing downloaded: every dataset had a complete source
