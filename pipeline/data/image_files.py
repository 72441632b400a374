"""Image files to classify: found in folders, read within a pixel limit, upright, and made like MNIST's images.

Any size, colour or grayscale, dark on light or light on dark: pipeline/data/preprocess.py makes each one the
28x28 input the models were trained on. An unreadable file, or one over the pixel limit (checked before decoding:
a small file can unpack into gigabytes), is a ValueError saying which.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.data.preprocess import mnist_style

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}

MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # PIL's default limit, about 89 megapixels


def expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; folders as their image files, sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(p)
    return files


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


def load_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image in a file as a 28x28 MNIST-style array, upright as its EXIF orientation says."""
    try:
        with pixel_limit(max_pixels), Image.open(path) as image:
            image.seek(0)  # a GIF's first frame
            ImageOps.exif_transpose(image, in_place=True)  # phone cameras store the sensor's rows and a rotation
            return mnist_style(image)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"over the limit of {max_pixels:,} pixels (--max-pixels); not decoded") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"not a readable image ({type(err).__name__})") from None
