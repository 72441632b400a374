"""MNIST-style preprocessing on synthetic shapes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.page import BlankPage
from pipeline.data.preprocess import centre_of_mass, mnist_style


def canvas(h: int, w: int, background: int) -> np.ndarray:
    return np.full((h, w), background, np.uint8)


def test_off_centre_blob_lands_with_its_centre_of_mass_in_the_middle():
    img = canvas(300, 400, 255)
    img[20:80, 300:340] = 0  # dark ink, top right, on white paper
    out = mnist_style(Image.fromarray(img))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    cy, cx = centre_of_mass(out.astype(float))
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75


def test_longer_side_is_20_pixels_and_aspect_is_kept():
    img = canvas(100, 100, 0)
    img[10:90, 40:60] = 255  # 80 tall, 20 wide: 4:1, light on dark
    out = mnist_style(Image.fromarray(img))
    rows, cols = np.flatnonzero(out.max(axis=1) > 64), np.flatnonzero(out.max(axis=0) > 64)
    assert rows[-1] - rows[0] + 1 == 20
    assert 4 <= cols[-1] - cols[0] + 1 <= 6


def test_dark_on_light_is_inverted_and_light_on_dark_is_not():
    ink = canvas(50, 50, 0)
    ink[10:40, 20:30] = 255
    a = mnist_style(Image.fromarray(ink))
    b = mnist_style(Image.fromarray(255 - ink))
    np.testing.assert_array_equal(a, b)
    assert a[0, 0] == 0 and a.max() == 255


def test_colour_and_transparent_images():
    rgb = np.zeros((60, 60, 3), np.uint8) + 255
    rgb[15:45, 25:35] = (200, 20, 20)  # red ink on white
    assert mnist_style(Image.fromarray(rgb)).max() > 200
    rgba = np.zeros((60, 60, 4), np.uint8)  # transparent paper, opaque black ink
    rgba[15:45, 25:35] = (0, 0, 0, 255)
    out = mnist_style(Image.fromarray(rgba, "RGBA"))
    assert out[0, 0] == 0 and out.max() == 255


@pytest.mark.parametrize("level", [0, 128, 255])
def test_blank_image_is_an_error(level):
    with pytest.raises(BlankPage, match="no ink stands out from the paper"):
        mnist_style(Image.fromarray(canvas(40, 40, level)))
