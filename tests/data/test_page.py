"""Finding the ink on a photographed page, on synthetic pages whose ink is known: a ring and a bar drawn on paper
under the lights and shadows of a phone photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.data.page import MIN_CONTRAST, BlankPage, dark_ink, find_ink, paper

SHAPE = (160, 160)


def strokes(shape: tuple[int, int] = SHAPE, centre: tuple[int, int] = (80, 80), size: int = 30) -> np.ndarray:
    """Where the ink is: a ring and a bar beside it, like a hand-written 0 and 1, about 5 pixels wide."""
    mask = np.zeros(shape, np.uint8)
    cy, cx = centre
    cv2.ellipse(mask, (cx - size // 2, cy), (size // 2, size), 0, 0, 360, 1, 5)
    cv2.line(mask, (cx + size, cy - size), (cx + size, cy + size), 1, 5)
    return mask.astype(bool)


def photo(ink: np.ndarray, paper_level: float, ink_level: float, light=None, noise=0.0, seed=0) -> np.ndarray:
    """A grayscale photo: ink on paper, times the light falling on it, plus the camera's noise."""
    page = np.where(ink, ink_level, paper_level).astype(np.float32)
    if light is not None:
        page = page * light
    return np.clip(page + np.random.default_rng(seed).normal(0, noise, page.shape), 0, 255).astype(np.float32)


def ramp(shape=SHAPE, low=0.5, high=1.0, axis=1) -> np.ndarray:
    return np.broadcast_to(np.linspace(low, high, shape[axis]), shape) if axis == 1 else ramp(shape, low, high).T


def shadow(shape=SHAPE, depth=0.5, row=60) -> np.ndarray:
    """Everything below `row` in shadow, `depth` darker."""
    light = np.ones(shape, np.float32)
    light[row:] = 1 - depth
    return light


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize(
    "paper_level, ink_level, light",
    [
        (255, 0, None),  # black on white
        (175, 45, None),  # grey paper
        (205, 140, None),  # pencil: low contrast
        (240, 25, ramp()),  # light falling across the page: paper 120 to 240
        (235, 25, shadow(depth=0.55)),  # a shadow's edge through the ink
    ],
    ids=["white", "grey", "pencil", "uneven", "shadow"],
)
def test_the_ink_is_found_on_every_paper_and_under_every_light(paper_level, ink_level, light):
    ink = strokes()
    found = find_ink(photo(ink, paper_level, ink_level, light, noise=3))
    assert overlap(found.mask, ink) > 0.8
    assert found.contrast >= MIN_CONTRAST


def test_the_paper_is_estimated_to_the_edges_under_light_falling_across_it():
    light = ramp(low=0.5, high=1.0, axis=0)
    estimate = paper(photo(strokes(), 240, 25, light))
    np.testing.assert_allclose(estimate, 240 * light, rtol=0.02)  # the edges too: no shade taken for ink


def test_light_ink_on_a_dark_background_is_turned_dark_on_light():
    ink = strokes()
    chalk = photo(ink, 30, 230)
    assert dark_ink(chalk)[~ink].mean() > 200
    assert dark_ink(photo(ink, 230, 30))[~ink].mean() > 200  # dark ink is left as it is


def test_dark_ink_in_a_shadow_over_most_of_the_page_is_still_dark_ink():
    """The median pixel is in the shadow, darker than the midpoint of ink and lit paper: still dark ink."""
    page = photo(strokes(centre=(110, 80)), 235, 25, shadow(depth=0.5, row=30))
    assert np.array_equal(dark_ink(page), page)


@pytest.mark.parametrize(
    "light, noise",
    [(None, 0.0), (None, 3.0), (ramp(), 3.0), (shadow(), 3.0), (None, 12.0)],
    ids=["flat", "noise", "uneven", "shadow", "heavy-noise"],
)
def test_a_page_without_ink_is_refused_as_blank(light, noise):
    with pytest.raises(BlankPage, match=r"blank: no ink stands out from the paper \(contrast [\d.]+, at least"):
        find_ink(photo(np.zeros(SHAPE, bool), 200, 0, light, noise))


def test_ink_barely_darker_than_the_paper_noise_is_refused():
    ink = strokes()
    with pytest.raises(BlankPage):
        find_ink(photo(ink, 200, 192, noise=4))  # 4% darker, under 2% noise


def test_ruled_lines_and_a_strip_of_table_are_not_ink():
    ink = strokes()
    page = photo(ink, 245, 30, noise=2)
    page[::30] = 180  # ruled lines, lighter than the ink
    page[:, :2] = 120  # the page's margin line, running its whole height
    page[:, -20:] = 60  # the table beside the page
    found = find_ink(page)
    assert overlap(found.mask, ink) > 0.8
    assert not found.mask[:, -20:].any() and not found.mask[:, :2].any()


def test_a_large_photo_is_worked_on_at_a_bounded_size():
    ink = cv2.resize(strokes().astype(np.uint8), (3000, 3000), interpolation=cv2.INTER_NEAREST).astype(bool)
    found = find_ink(photo(ink, 230, 30))
    assert max(found.mask.shape) == 1024


def test_ink_touching_a_line_across_the_page_keeps_the_ink_and_drops_the_line():
    ink = strokes()
    page = photo(ink, 245, 30, noise=2)
    page[:, 45:47] = 60  # a dark margin line through the ring: one shape with the ink, were it not for its length
    found = find_ink(page)
    assert not found.mask[:10, 45:47].any() and not found.mask[-10:, 45:47].any()
    assert overlap(found.mask, ink & ~np.isin(np.arange(SHAPE[1]), [45, 46])) > 0.8


def test_a_shadow_over_a_corner_is_paper_not_ink():
    """A corner's shadow narrower than the first closing's square: the second, sized by the strokes, keeps it."""
    ink = strokes(centre=(100, 90))
    rows, cols = np.indices(SHAPE)
    light = np.where(rows + cols < 70, 0.45, 1.0)  # a triangle of shadow in the top left corner
    found = find_ink(photo(ink, 235, 25, light, noise=3))
    assert overlap(found.mask, ink) > 0.8
    assert not found.mask[:30, :30].any()


def test_a_character_touching_the_edges_of_a_tight_crop_is_ink():
    """A drawing cropped to its ink: a diagonal one pixel wide from corner to corner, and a bar along the top edge for
    a quarter of it. Neither is an edge of the page or a ruled line (the corner pixels, mirrored into themselves, may
    be lost)."""
    drawing = np.full((28, 28), 255.0)
    ink = np.zeros((28, 28), bool)
    ink[np.arange(28), np.arange(28)] = True
    ink[0, 10:17] = True
    drawing[ink] = 0
    found = find_ink(drawing).mask
    assert found[0, 10:17].all() and found[np.arange(1, 27), np.arange(1, 27)].all()
    assert not (found & ~ink).any()
