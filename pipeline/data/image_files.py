"""Image files to classify: found in folders, read within a pixel limit, upright, and made like MNIST's images.

Any size, colour or grayscale, dark on light or light on dark: pipeline/data/preprocess.py makes each one the
28x28 input the models were trained on. What is read is untrusted, so: only a regular file is opened (a FIFO would
block for ever, a device or a socket too); only PNG, JPEG, BMP and GIF are decoded, recognised by their content
whatever the name says (Pillow knows dozens of formats, and hands EPS to Ghostscript, an outside program); and an
image over the pixel limit, or wider or taller than the side limit, is refused from its header (a small file can
unpack into gigabytes). Each refusal, and a file that cannot be read, decoded or prepared for whatever reason (Pillow
raises SyntaxError, struct.error, EOFError, MemoryError… on a malformed file), is a ValueError saying which, in
Pillow's words where Pillow found it: one file's fault, never the batch's.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.core.errors import first_line
from pipeline.data.preprocess import mnist_style

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}  # the files a folder is searched for
FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # the only Pillow plugins that see a file's content

MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # PIL's default limit, about 89 megapixels
# Neither side may be longer, whatever the pixel count: a 50,000,000 x 1 PNG is 48 kB and under MAX_PIXELS, but
# scaling it down took 4 s and a gigabyte, then raised MemoryError (10,000,000 x 1: 3 s and 0.6 GB). A 50-megapixel
# photo is 8,700 pixels wide; a 30,000 x 2,982 image, the longest under MAX_PIXELS, is prepared in 4 s, as a square
# one of as many pixels (2026-12-04, AMD EPYC).
MAX_SIDE = 30_000


def expand(paths: Sequence[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given and folders as their image files, sorted; and each input that gives none, with why — a
    folder that cannot be listed or holds no image, a name the file system refuses — for its own line: the other
    inputs go on. A file that is not there is kept, for its reading to say so."""
    files: list[Path] = []
    unlisted: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        try:
            is_folder = stat.S_ISDIR(p.stat().st_mode)
        except FileNotFoundError:
            is_folder = False
        except OSError as err:  # a name too long for the file system, a folder in its path that cannot be searched
            unlisted.append((p, f"cannot be read ({err.strerror or err})"))
            continue
        if not is_folder:
            files.append(p)
            continue
        try:
            with os.scandir(p) as listing:
                entries = list(listing)
        except OSError as err:
            unlisted.append((p, f"a folder that cannot be listed ({err.strerror or err})"))
            continue
        images = sorted(p / e.name for e in entries if Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
        if images:
            files += images
        else:
            unlisted.append((p, f"no image to classify: {contents(entries)}"))
    return files, unlisted


def contents(entries: Sequence[os.DirEntry]) -> str:
    """What a folder without images holds, and where predict looks: "it holds 3 subfolders and 2 other files (…)"."""
    if not entries:
        return "the folder is empty"
    folders = sum(is_folder(e) for e in entries)
    counts = [(folders, "subfolder"), (len(entries) - folders, "other file")]
    held = " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in counts if n)
    *others, last = sorted(IMAGE_SUFFIXES)
    suffixes = f"{', '.join(others)} and {last}"
    return f"it holds {held} (a folder's images are its {suffixes} files; predict does not look into subfolders)"


def is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link it cannot follow
        return False


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """PIL's decompression-bomb check against `max_pixels`, as an error (PIL only warns up to twice its limit).

    PIL checks an image's size from its header, when it is opened, before decoding any pixel."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def not_regular(mode: int) -> str | None:
    """What a file of this `st_mode` is, when it is not a regular file: "a FIFO", "a folder"…"""
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), None if stat.S_ISREG(mode) else "not a file")


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading, if it is a regular file (or a link to one); anything else is refused before it
    is opened, and checked again once open, should it have been swapped in between."""
    kind = not_regular(path.stat().st_mode)
    if kind is None:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # never waits for a FIFO's writer
        kind = not_regular(os.fstat(fd).st_mode)
        if kind is None:
            return os.fdopen(fd, "rb")
        os.close(fd)
    raise ValueError(f"{kind}, not a regular file; not opened — give image files")


def reason(err: BaseException) -> str:
    """Why, in the words of whoever raised it: the system's ("Permission denied"), Pillow's ("not a TIFF file
    (header b'garbage!' not valid)"), or the exception's name when it has none (MemoryError)."""
    return getattr(err, "strerror", None) or first_line(err)


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image in a file, decoded, upright as its EXIF orientation says; every fault a ValueError saying which."""
    try:
        file = open_regular(path)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as err:
        raise ValueError(f"cannot be opened ({reason(err)})") from err
    with file, pixel_limit(max_pixels), warnings.catch_warnings():
        # What Pillow reads past and warns of ("Corrupt EXIF data") is no line of ours: the image is classified.
        warnings.simplefilter("ignore", UserWarning)
        try:
            image = Image.open(file, formats=FORMATS)  # reads the header alone
            image.seek(0)  # a GIF's first frame
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(f"over the limit of {max_pixels:,} pixels (--max-pixels); not decoded") from None
        except UnidentifiedImageError:
            raise ValueError(
                "not a readable image: not PNG, JPEG, BMP or GIF by its content, whatever its name says; not "
                "decoded — save it as PNG"
            ) from None
        except Exception as err:  # whatever a malformed file makes Pillow raise: SyntaxError, struct.error…
            raise ValueError(f"not a readable image ({reason(err)})") from err
        if max(image.size) > MAX_SIDE:
            width, height = image.size
            raise ValueError(
                f"{width:,} x {height:,} pixels, a side over the limit of {MAX_SIDE:,}; not decoded — crop it"
            )
        try:
            image.load()
        except Exception as err:  # truncated, a broken chunk: OSError, SyntaxError, EOFError…
            raise ValueError(f"not a readable image ({reason(err)})") from err
        try:
            ImageOps.exif_transpose(image, in_place=True)  # phone cameras store the sensor's rows and a rotation
        except Exception as err:  # a malformed EXIF block
            raise ValueError(f"not a readable image (its EXIF data: {reason(err)})") from err
    return image


def load_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image in a file as a 28x28 MNIST-style array, upright as its EXIF orientation says."""
    image = read_image(path, max_pixels)
    try:
        return mnist_style(image)
    except ValueError:
        raise  # the recipe's own reason ("the image has no ink"), written for the user
    except Exception as err:  # anything else, MemoryError included, is this image's line too
        raise ValueError(f"could not be made 28x28 ({reason(err)})") from err
