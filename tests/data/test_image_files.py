"""Reading untrusted image files: only regular files are opened, only PNG, JPEG, BMP and GIF are decoded (by their
content, whatever their name), and 16-bit grayscale is scaled to 8 bits rather than clipped. On real FIFOs, sockets,
devices and files."""

from __future__ import annotations

import os
import socket
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from pipeline.data import image_files
from pipeline.data.image_files import MAX_SIDE, expand, load_image, read_image
from tests.helpers.deadlines import fails_after


def glyph() -> np.ndarray:
    """Dark ink on white paper."""
    image = np.full((60, 40), 255, np.uint8)
    image[10:-10, 8:14] = 0
    image[10:16, 8:-6] = 0
    return image


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would wait for a writer for ever
    with fails_after(5), pytest.raises(ValueError, match=r"^a FIFO, not a regular file; not opened — give image"):
        load_image(tmp_path / "pipe.png")


def test_a_socket_a_device_and_a_folder_are_refused(tmp_path):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "socket.png"))
        with pytest.raises(ValueError, match=r"^a socket, not a regular file"):
            load_image(tmp_path / "socket.png")
    with fails_after(5), pytest.raises(ValueError, match=r"^a character device, not a regular file"):
        load_image(Path("/dev/zero"))  # which would be read for ever
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"^a folder, not a regular file"):
        load_image(tmp_path / "folder.png")


def test_a_link_to_a_regular_file_is_read_and_one_to_a_fifo_is_not(tmp_path):
    Image.fromarray(glyph()).save(tmp_path / "digit.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "digit.png")
    np.testing.assert_array_equal(load_image(tmp_path / "link.png"), load_image(tmp_path / "digit.png"))
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "pipe.png").symlink_to(tmp_path / "pipe")
    with fails_after(5), pytest.raises(ValueError, match=r"^a FIFO, not a regular file"):
        load_image(tmp_path / "pipe.png")


def test_a_folders_listing_keeps_a_fifo_with_an_image_name_to_be_refused_by_name(tmp_path):
    """So that it is one line on stderr, as any image that cannot be read, rather than silently left out."""
    Image.fromarray(glyph()).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert expand([str(tmp_path)]) == ([tmp_path / "a.png", tmp_path / "b.png"], [])
    assert stat.S_ISFIFO((tmp_path / "b.png").stat().st_mode)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 4 4 moveto 24 24 lineto stroke\nshowpage\n%%EOF\n"


@pytest.fixture
def ghostscript(tmp_path, monkeypatch) -> Path:
    """A `gs` first on PATH, which leaves a file behind when anything runs it; the file it would leave."""
    ran = tmp_path / "gs-ran"
    gs = tmp_path / "bin" / "gs"
    gs.parent.mkdir()
    gs.write_text(f'#!/bin/sh\necho "$@" >> {ran}\n')  # and succeeds, as Ghostscript would
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{gs.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow's cache of where Ghostscript is: look again
    return ran


def test_an_eps_file_named_png_is_refused_by_its_content_and_ghostscript_never_runs(tmp_path, ghostscript):
    (tmp_path / "drawing.png").write_bytes(EPS)
    with pytest.raises(ValueError, match=r"^not a readable image: not PNG, JPEG, BMP or GIF by its content"):
        load_image(tmp_path / "drawing.png")
    assert not ghostscript.exists()


@pytest.mark.parametrize("name", ["tiff.png", "webp.jpg", "ico.bmp"])
def test_other_formats_pillow_knows_are_refused_whatever_their_name(name, tmp_path):
    fmt = name.split(".")[0].upper()
    Image.fromarray(glyph()).convert("RGB").save(tmp_path / name, format=fmt)
    with pytest.raises(ValueError, match=r"^not a readable image: not PNG, JPEG, BMP or GIF by its content"):
        load_image(tmp_path / name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF"])
def test_the_promised_formats_are_read_whatever_their_name(fmt, tmp_path):
    Image.fromarray(glyph()).save(tmp_path / "digit.image", format=fmt)
    assert load_image(tmp_path / "digit.image").max() == 255


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    """The issue's image (paper 50000, ink 10000 of 65535) read as its 8-bit version is, and a full-range one exactly
    as its 8-bit original."""
    paper_and_ink = np.where(glyph() == 0, 10000, 50000).astype(np.uint16)
    Image.fromarray(paper_and_ink).save(tmp_path / "deep.png")
    Image.fromarray(np.rint(paper_and_ink / 257).astype(np.uint8)).save(tmp_path / "shallow.png")
    with Image.open(tmp_path / "deep.png") as deep:
        assert deep.mode.startswith("I")  # Pillow's 16-bit grayscale: what this test is about
    deep, shallow = load_image(tmp_path / "deep.png"), load_image(tmp_path / "shallow.png")
    assert np.abs(deep.astype(int) - shallow).max() <= 1
    Image.fromarray(glyph().astype(np.uint16) * 257).save(tmp_path / "full.png")
    Image.fromarray(glyph()).save(tmp_path / "original.png")
    np.testing.assert_array_equal(load_image(tmp_path / "full.png"), load_image(tmp_path / "original.png"))


# Malformed and extreme files (#30): each is a ValueError in Pillow's own words, which predict makes that file's one
# line; none ends the batch.


def test_a_malformed_exif_chunk_is_refused_in_pillows_words(tmp_path):
    """Pillow raises SyntaxError, not an OSError, on it: predict used to end in that traceback."""
    Image.fromarray(glyph()).save(tmp_path / "photo.png", exif=b"garbage!")  # an eXIf chunk that is not TIFF
    with pytest.raises(ValueError) as refused:
        load_image(tmp_path / "photo.png")
    assert str(refused.value) == "not a readable image (its EXIF data: not a TIFF file (header b'garbage!' not valid))"


def test_a_corrupt_exif_block_pillow_reads_past_is_read_without_a_warning(tmp_path):
    """Pillow warns of it ("Corrupt EXIF data"), two lines on stderr that belong to no file; the image is read."""
    Image.fromarray(glyph()).save(tmp_path / "photo.png", exif=b"MM\x00\x2a\x00\x00\x00\x08\xff\xff")  # 65535 tags
    Image.fromarray(glyph()).save(tmp_path / "plain.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = load_image(tmp_path / "photo.png")
    assert [str(w.message) for w in caught] == []
    np.testing.assert_array_equal(image, load_image(tmp_path / "plain.png"))


@pytest.mark.parametrize("size", [(MAX_SIDE + 1, 1), (1, MAX_SIDE + 1), (50_000_000, 1)])
def test_a_side_over_the_limit_is_refused_from_the_header(size, tmp_path):
    """Under the pixel limit, but scaling 50,000,000 x 1 down took 4 s and a gigabyte, then raised MemoryError."""
    width, height = size
    stripes = Image.frombytes("1", size, b"\x55" * ((width + 7) // 8 * height))  # ink in every other pixel
    stripes.save(tmp_path / "stripes.png")  # 6 kB at 50,000,000 x 1
    with pytest.raises(ValueError) as refused:
        load_image(tmp_path / "stripes.png")
    assert str(refused.value) == (
        f"{width:,} x {height:,} pixels, a side over the limit of {MAX_SIDE:,}; not decoded — crop it"
    )


def test_a_side_at_the_limit_is_read(tmp_path):
    """Decoded whole (what a stripe one pixel high holds is another matter: the page model finds no ink in it)."""
    Image.frombytes("1", (MAX_SIDE, 1), b"\x55" * (MAX_SIDE // 8)).save(tmp_path / "stripes.png")
    assert np.asarray(read_image(tmp_path / "stripes.png")).shape == (1, MAX_SIDE)


def test_pillows_reason_for_an_unreadable_image_is_kept(tmp_path):
    """It was "not a readable image (OSError)"."""
    Image.fromarray(glyph()).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"^not a readable image \(image file is truncated\)$"):
        load_image(tmp_path / "half.png")


def test_any_failure_while_preparing_an_image_is_its_valueerror(tmp_path, monkeypatch):
    """What the recipe raises beyond its own ValueErrors (a MemoryError on an image no limit foresaw) is the image's
    fault too, not the batch's."""
    Image.fromarray(glyph()).save(tmp_path / "digit.png")

    def out_of_memory(image):
        raise MemoryError

    monkeypatch.setattr(image_files, "mnist_style", out_of_memory)
    with pytest.raises(ValueError, match=r"^could not be made 28x28 \(MemoryError\)$") as refused:
        load_image(tmp_path / "digit.png")
    assert isinstance(refused.value.__cause__, MemoryError)  # for --verbose's traceback


def test_a_name_too_long_for_the_file_system_is_its_own_line(tmp_path):
    long = tmp_path / ("a" * 300 + ".png")
    Image.fromarray(glyph()).save(tmp_path / "digit.png")
    assert expand([str(long), str(tmp_path / "digit.png")]) == (
        [tmp_path / "digit.png"],
        [(long, "cannot be read (File name too long)")],
    )
    with pytest.raises(ValueError, match=r"^cannot be opened \(File name too long\)$"):
        load_image(long)


def test_a_folder_without_images_says_what_it_holds(tmp_path):
    """It used to give nothing, silently: with no other input, "no image could be classified" named no folder."""
    held = tmp_path / "held"
    (held / "2024").mkdir(parents=True)
    (held / "2025").mkdir()
    (held / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    Image.fromarray(glyph()).save(tmp_path / "digit.png")
    inputs = [str(held), str(tmp_path / "empty"), str(tmp_path / "digit.png")]
    looks_for = (
        "a folder's images are its .bmp, .gif, .jpeg, .jpg and .png files; predict does not look into subfolders"
    )
    assert expand(inputs) == (
        [tmp_path / "digit.png"],
        [
            (held, f"no image to classify: it holds 2 subfolders and 1 other file ({looks_for})"),
            (tmp_path / "empty", "no image to classify: the folder is empty"),
        ],
    )
