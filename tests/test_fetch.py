"""Fetching MNIST from an ordered list of sources, verified by checksum of the decompressed content."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading

import numpy as np
import pytest

from pipeline import checksums
from pipeline.download import SourcesExhausted, fetch_verified
from pipeline.fetch import FILES, fetch_mnist, verified_loader
from pipeline.mirror import mnist_sources


def test_mirror_comes_first_then_configured_sources():
    assert mnist_sources(["https://a/"], {"HWLAB_DATA_MIRROR": "/m"}) == ["/m/mnist", "https://a/"]
    assert mnist_sources(["https://a/"], {}) == ["https://a/"]


def test_fetches_real_mnist_past_failing_sources(mirror, tmp_path, capsys):
    """An empty folder and a refused URL are passed over; the mirror's files verify and parse."""
    refused = "http://127.0.0.1:9/mnist/"
    ds = fetch_mnist([str(tmp_path / "empty"), refused, str(mirror / "mnist")], timeout=5)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert np.bincount(ds.y_test).tolist()[:3] == [980, 1135, 1032]  # MNIST's published test class counts
    assert ds.class_names == tuple("0123456789")
    assert "sha256 verified" in capsys.readouterr().out


def test_downloads_over_http(mirror):
    """The URL path for real: a loopback HTTP server serving the mirror's files."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror / "mnist"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            labels, source = fetch_verified(FILES["y_train"], [url], verified_loader(FILES["y_train"]), timeout=10)
        finally:
            server.shutdown()
    assert source == url and len(labels) == 60000


def test_accepts_recompressed_and_decompressed_copies(mirror, tmp_path):
    """The content is what is verified, not the .gz bytes: a raw (decompressed) file in a mirror is accepted."""
    name = FILES["y_test"]
    (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress((mirror / "mnist" / name).read_bytes()))
    labels, source = fetch_verified(name, [str(tmp_path)], verified_loader(name))
    assert source == str(tmp_path) and len(labels) == 10000


def test_checksum_mismatch_is_reported_per_source_and_nothing_returned(mirror, tmp_path):
    name = FILES["y_test"]
    content = bytearray(gzip.decompress((mirror / "mnist" / name).read_bytes()))
    content[100] ^= 1  # one flipped bit: still a valid IDX file, but not MNIST's
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / name).write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(SourcesExhausted) as err:
        fetch_verified(name, [str(bad), str(tmp_path / "missing")], verified_loader(name))
    message = str(err.value)
    assert f"{bad}/{name}: SHA-256 of the decompressed content is" in message
    assert f"{tmp_path / 'missing'}/{name}" in message and "does not exist" in message


def test_every_source_failing_lists_them_all(tmp_path):
    with pytest.raises(SourcesExhausted, match=r"(?s)t10k-labels-idx1-ubyte.gz: every source failed:.*127.0.0.1:9.*empty"):
        fetch_verified(FILES["y_test"], ["http://127.0.0.1:9/", str(tmp_path / "empty")],
                       verified_loader(FILES["y_test"]), timeout=5)


def test_verify_known_unknown_and_wrong():
    known = {"f": checksums.sha256(b"abc")}
    assert checksums.verify("f", b"abc", "here", known) == known["f"]
    assert checksums.verify("g", b"abc", "here", known) is None
    with pytest.raises(checksums.ChecksumError, match="here: SHA-256"):
        checksums.verify("f", b"abd", "here", known)
