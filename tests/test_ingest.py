"""Ingesting EMNIST: orientation, class selection, source choice and bad input, on files the tests write."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.data import checksums, idx
from pipeline.data.datasets import emnist_upright, keep_classes, load_dataset, parse_mapping, save_dataset
from pipeline.data.sources import Holdout, Source
from pipeline.ingest import ingest_dataset, load_mnist, load_source
from tests.helpers.idx import write_idx
from tests.helpers.repos import REPO

MAPPING_DIGITS = "".join(f"{i} {48 + i}\r\n" for i in range(10))  # NIST's file, byte for byte
MAPPING_BYCLASS = "".join(
    f"{i} {c}\r\n" for i, c in enumerate(list(range(48, 58)) + list(range(65, 91)) + list(range(97, 123)))
)


def glyph_f() -> np.ndarray:
    """An upright 'F': a stroke down the left, bars at the top and the middle — asymmetric under transposition."""
    g = np.zeros((28, 28), np.uint8)
    g[4:24, 6] = 255
    g[4, 6:20] = 255
    g[13, 6:16] = 255
    return g


def emnist_folder(tmp_path: Path, split: str, images: np.ndarray, labels: np.ndarray, mapping: str) -> Path:
    """A folder like NIST's download, holding one test split stored transposed as NIST stores it."""
    folder = tmp_path / "emnist"
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"emnist-{split}-test-images-idx3-ubyte.gz", images.transpose(0, 2, 1))
    write_idx(folder / f"emnist-{split}-test-labels-idx1-ubyte.gz", labels)
    (folder / f"emnist-{split}-mapping.txt").write_bytes(mapping.encode())
    return folder


def test_transposed_glyph_comes_out_upright(tmp_path):
    f = glyph_f()
    folder = emnist_folder(tmp_path, "byclass", np.stack([f, f]), np.array([15, 3], np.uint8), MAPPING_BYCLASS)
    ds = load_source(folder, Source("byclass", ("test",), False), {})
    np.testing.assert_array_equal(ds.x_test[0], f)
    assert ds.class_names[15] == "F" and len(ds.class_names) == 62
    assert ds.x_train.shape == (0, 28, 28)


def test_upright_is_a_transpose_not_a_flip():
    f = glyph_f()[None]
    assert not np.array_equal(emnist_upright(f), f)
    np.testing.assert_array_equal(emnist_upright(emnist_upright(f)), f)


def test_keep_digits_relabels_in_order():
    x = np.arange(5)[:, None, None] * np.ones((5, 28, 28), np.uint8)
    kept_x, kept_y, rows = keep_classes(x, np.array([3, 40, 0, 12, 9], np.uint8), list(range(10)))
    assert kept_y.tolist() == [3, 0, 9]
    assert kept_x[:, 0, 0].tolist() == [0, 2, 4]
    assert rows.tolist() == [0, 2, 4]


def row_marked(n: int) -> np.ndarray:
    """n upright images, image r carrying r + 1 at pixel (5, 0): where it lands tells a transposition apart."""
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 5, 0] = np.arange(1, n + 1)
    return images


def write_part(folder: Path, split: str, part: str, labels: np.ndarray) -> None:
    """One part of an EMNIST split as NIST stores it (transposed), its images marked by their row."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"emnist-{split}-{part}-images-idx3-ubyte.gz", row_marked(len(labels)).transpose(0, 2, 1))
    write_idx(folder / f"emnist-{split}-{part}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


def assert_rows_found(images: np.ndarray, rows: np.ndarray) -> None:
    """Each prepared image is the one at its recorded row of the official file, upright."""
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(images[:, 5, 0], rows + 1)


def test_mnist_rows_are_the_official_files_rows(tmp_path):
    for prefix, n in (("train", 7), ("t10k", 5)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", row_marked(n))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)
    ds = load_mnist(tmp_path, {})
    assert_rows_found(ds.x_train, ds.train_rows)
    assert_rows_found(ds.x_test, ds.test_rows)
    assert ds.train_rows.tolist() == list(range(7)) and ds.test_rows.tolist() == list(range(5))
    assert (ds.train_file, ds.test_file) == ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")


def test_digits_of_byclass_keep_their_rows_in_the_byclass_test_file(tmp_path):
    labels = np.array([12, 3, 40, 0, 61, 9, 9, 10], np.uint8)  # letters (10+) are dropped
    write_part(tmp_path, "byclass", "test", labels)
    (tmp_path / "emnist-byclass-mapping.txt").write_text(MAPPING_BYCLASS)
    ds = load_source(tmp_path, Source("byclass", ("test",), True), {})
    assert ds.test_rows.tolist() == [1, 3, 5, 6] and ds.y_test.tolist() == [3, 0, 9, 9]
    assert_rows_found(ds.x_test, ds.test_rows)
    assert ds.test_file == "emnist-byclass-test-images-idx3-ubyte"
    assert (ds.train_file, len(ds.train_rows)) == ("", 0)


def test_each_side_of_the_bymerge_stand_in_keeps_its_rows_in_the_one_file(tmp_path):
    labels = np.arange(60) % 3
    write_part(tmp_path, "bymerge", "test", labels)
    (tmp_path / "emnist-bymerge-mapping.txt").write_text("0 48\r\n1 49\r\n2 50\r\n")
    ds = load_source(tmp_path, Source("bymerge", ("test",), False, Holdout(0.2, 47)), {})
    assert (len(ds.train_rows), len(ds.test_rows)) == (48, 12)
    assert sorted(ds.train_rows.tolist() + ds.test_rows.tolist()) == list(range(60))
    assert_rows_found(ds.x_train, ds.train_rows)
    assert_rows_found(ds.x_test, ds.test_rows)
    np.testing.assert_array_equal(ds.y_test, labels[ds.test_rows])
    assert ds.train_file == ds.test_file == "emnist-bymerge-test-images-idx3-ubyte"


def test_official_split_files_give_their_own_rows_and_survive_saving(tmp_path):
    write_part(tmp_path, "digits", "train", np.arange(9) % 10)
    write_part(tmp_path, "digits", "test", np.arange(4) % 10)
    (tmp_path / "emnist-digits-mapping.txt").write_text(MAPPING_DIGITS)
    save_dataset(tmp_path / "d.npz", load_source(tmp_path, Source("digits", ("train", "test"), False), {}))
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.train_rows.tolist() == list(range(9)) and ds.test_rows.tolist() == list(range(4))
    assert_rows_found(ds.x_train, ds.train_rows)
    assert_rows_found(ds.x_test, ds.test_rows)
    assert ds.train_file == "emnist-digits-train-images-idx3-ubyte"
    assert ds.test_file == "emnist-digits-test-images-idx3-ubyte"


def test_mapping_file_with_crlf_and_bad_lines():
    assert parse_mapping("0 48\r\n1 65\r\n", "m.txt") == {0: "0", 1: "A"}
    with pytest.raises(ValueError, match="m.txt: line 2: expected"):
        parse_mapping("0 48\r\nbad\r\n", "m.txt")
    with pytest.raises(ValueError, match="m.txt: line 2: label 0 appears twice"):
        parse_mapping("0 48\r\n0 65\r\n", "m.txt")


def test_letters_split_labels_from_one_and_merged_cases(tmp_path):
    """NIST's letters split: labels 1-26, each class both cases; they become 0-25 named 'Aa'..'Zz'."""
    mapping = "".join(f"{i} {64 + i} {96 + i}\r\n" for i in range(1, 27))
    folder = emnist_folder(tmp_path, "letters", np.stack([glyph_f()] * 2), np.array([6, 26], np.uint8), mapping)
    ds = load_source(folder, Source("letters", ("test",), False), {})
    assert ds.y_test.tolist() == [5, 25]
    assert ds.class_names[5] == "Ff" and len(ds.class_names) == 26


def test_real_mapping_files_parse(mirror):
    for split, n in {"digits": 10, "mnist": 10, "balanced": 47, "bymerge": 47, "byclass": 62, "letters": 26}.items():
        path = mirror / "emnist" / f"emnist-{split}-mapping.txt"
        assert len(parse_mapping(path.read_text(), str(path))) == n, split


def test_first_complete_source_wins_and_absence_is_reported(tmp_path, capsys):
    labels = np.array([0, 1, 10, 2], np.uint8)
    folder = emnist_folder(tmp_path, "byclass", np.stack([glyph_f()] * 4), labels, MAPPING_BYCLASS)
    (folder / "emnist-digits-test-labels-idx1-ubyte.gz").write_bytes(b"")  # labels without images, like the mirror
    sources = [Source("digits", ("test",), False), Source("byclass", ("test",), True)]
    ds = ingest_dataset("emnist_digits", folder, sources, {})
    out = capsys.readouterr().out
    assert (
        "passed over EMNIST digits test (missing emnist-digits-mapping.txt, emnist-digits-test-images-idx3-ubyte)"
        in out
    )
    assert "using EMNIST byclass test, classes 0-9" in out
    assert ds.y_test.tolist() == [0, 1, 2] and ds.class_names == tuple("0123456789")
    assert ds.source.startswith("EMNIST byclass test, classes 0-9")


def test_no_complete_source_lists_each_and_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ingest_dataset("emnist_digits", tmp_path, [Source("digits", ("test",), False)], {})
    assert "emnist-digits-test-images-idx3-ubyte" in str(err.value) and "dvc repro fetch" in str(err.value)


def test_present_but_malformed_file_stops_rather_than_falling_back(tmp_path):
    folder = emnist_folder(tmp_path, "digits", np.stack([glyph_f()] * 3), np.zeros(2, np.uint8), "0 48\r\n")
    with pytest.raises(idx.IdxError, match="3 images but emnist-digits-test-labels-idx1-ubyte has 2 labels"):
        ingest_dataset("d", folder, [Source("digits", ("test",), False)], {})


def test_label_beyond_mapping(tmp_path):
    folder = emnist_folder(tmp_path, "digits", np.stack([glyph_f()]), np.array([7], np.uint8), "0 48\r\n")
    with pytest.raises(idx.IdxError, match=r"labels \[7\] are not in emnist-digits-mapping.txt"):
        load_source(folder, Source("digits", ("test",), False), {})


def test_known_checksum_mismatch_stops(tmp_path):
    folder = emnist_folder(tmp_path, "digits", np.stack([glyph_f()]), np.array([0], np.uint8), "0 48\r\n")
    known = {"emnist-digits-test-images-idx3-ubyte": "0" * 64}
    with pytest.raises(checksums.ChecksumError, match="emnist-digits-test-images-idx3-ubyte.gz: SHA-256"):
        load_source(folder, Source("digits", ("test",), False), known)


@pytest.mark.slow  # a real entrypoint process
def test_stage_on_bad_input_fails_clearly_and_leaves_previous_output(tmp_path):
    """The real entrypoint: a truncated file stops it with the file named, and the old output survives."""
    raw = tmp_path / "raw"
    folder = emnist_folder(raw, "digits", np.stack([glyph_f()] * 2), np.zeros(2, np.uint8), MAPPING_DIGITS)
    path = folder / "emnist-digits-test-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    sums = []  # tiny stand-ins for MNIST's files, declared known so that ingest gets past them
    (raw / "mnist").mkdir()
    for prefix in ("train", "t10k"):
        for kind, array in (("images-idx3", np.stack([glyph_f()])), ("labels-idx1", np.array([7], np.uint8))):
            name = f"{prefix}-{kind}-ubyte"
            write_idx(raw / "mnist" / name, array, compress=False)
            sums.append(f"+ingest.checksums.{name}={checksums.sha256((raw / 'mnist' / name).read_bytes())}")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "emnist_digits.npz").write_bytes(b"previous output")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.ingest",
            f"paths.raw={raw}",
            f"paths.prepared={prepared}",
            *sums,
            "hydra.run.dir=.",
            "hydra.output_subdir=null",
            "hydra/job_logging=stdout",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}: truncated: header says (2, 28, 28)" in result.stderr
    assert (prepared / "emnist_digits.npz").read_bytes() == b"previous output"
    assert sorted(p.name for p in prepared.iterdir()) == ["emnist_digits.npz", "mnist.npz"]


def test_real_emnist_digit_looks_like_mnist_digit_of_same_class(mirror):
    """Against the real data: each EMNIST digit class mean matches the MNIST mean of its own class better
    upright than transposed, so ingest turned NIST's images the right way."""
    emnist = load_source(mirror / "emnist", Source("byclass", ("test",), True), checksums.KNOWN_SHA256)
    mnist_x = idx.parse_images(idx.read_bytes(mirror / "mnist" / "t10k-images-idx3-ubyte.gz"), "mnist")
    mnist_y = idx.parse_labels(idx.read_bytes(mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"), "mnist")

    def class_means(x, y):
        return np.stack([x[y == d].mean(axis=0) for d in range(10)])

    def same_class_corr(a, b):
        return np.array([np.corrcoef(a[d].ravel(), b[d].ravel())[0, 1] for d in range(10)])

    m = class_means(mnist_x, mnist_y)
    e = class_means(emnist.x_test, emnist.y_test)
    upright, transposed = same_class_corr(m, e), same_class_corr(m, e.transpose(0, 2, 1))
    assert (upright > transposed).all(), (upright, transposed)
    assert upright.mean() > transposed.mean() + 0.2
