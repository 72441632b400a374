"""Turning any photo or drawing of one character into the 28x28 input the models were trained on.

The ink is found first (pipeline/data/page.py: the paper estimated and taken away, ink told from paper by Otsu's
threshold); then MNIST's recipe: light ink on a dark background, the ink's bounding box scaled so its longer side is 20 pixels
(aspect ratio kept), pasted into 28x28 so that its centre of mass is the centre. EMNIST images are stored
upright by our ingest stage, so a 47-class model takes the same orientation.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from pipeline.data.page import Ink, find_ink

BOX = 20
SIZE = 28


def to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL image (palette, RGBA, RGB, grayscale, 16-bit grayscale) as float grayscale 0-255; transparency
    becomes white paper."""
    if image.mode.startswith("I"):  # 16-bit grayscale, as a PNG stores it (Pillow's I;16, or I): scaled, since
        return np.asarray(image, dtype=np.float32) * (255 / 65535)  # convert("L") would clip it to 255
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


def glyph(ink: Ink) -> np.ndarray:
    """The ink cropped to its bounding box as MNIST draws it: 0 for paper, 255 for a full stroke, the stroke's soft
    edge kept (within a pixel of the ink) and the paper's noise elsewhere gone."""
    near = cv2.dilate(ink.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    full = float(np.percentile(ink.darkness[ink.mask], 90))
    values = np.where(near, np.clip(ink.darkness / full, 0.0, 1.0), 0.0) * 255.0
    rows, cols = np.flatnonzero(ink.mask.any(axis=1)), np.flatnonzero(ink.mask.any(axis=0))
    return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scale_longer_side(ink: np.ndarray, size: int = BOX) -> np.ndarray:
    h, w = ink.shape
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(ink.astype(np.float32), mode="F").resize(new, Image.Resampling.LANCZOS))


def centre_of_mass(ink: np.ndarray) -> tuple[float, float]:
    total = ink.sum()
    rows, cols = np.indices(ink.shape)
    return float((rows * ink).sum() / total), float((cols * ink).sum() / total)


def paste_centred(glyph: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Place `glyph` in a size x size canvas with its centre of mass at the canvas centre (clipped to fit)."""
    cy, cx = centre_of_mass(np.clip(glyph, 0, None))
    h, w = glyph.shape
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    canvas = np.zeros((size, size), dtype=np.float32)
    canvas[top : top + h, left : left + w] = glyph
    return canvas


def mnist_style(image: Image.Image) -> np.ndarray:
    """The whole recipe: a 28x28 uint8 array, white ink on black, as the models expect."""
    scaled = scale_longer_side(glyph(find_ink(to_gray(image))))
    return np.clip(np.rint(paste_centred(np.clip(scaled, 0, 255))), 0, 255).astype(np.uint8)
