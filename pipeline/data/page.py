"""The ink on a photographed page: the paper estimated and taken away, then ink told from paper by the image itself.

A phone photo of a digit is mostly paper whose level varies slowly (grey paper, light falling across it, a shadow's
edge, vignetting); the ink is thin strokes darker than the paper around them. So the paper is estimated by a grey-level
closing with a square wider than any stroke (it fills in thin dark strokes and keeps large shapes, a shadow's edge
among them), and each pixel's darkness is measured against it, 1 - pixel / paper, which light falling across the page
does not change. Ink is then told from paper by Otsu's threshold, chosen within the digit's own neighbourhood, where
ink is a sizeable share of the pixels (over a whole page it is too few for Otsu's method). Shapes that lie along an
edge of the photo (the table beside the page) or run straight across nearly all of it (a ruled line, the page's
margin line) are not ink.

OpenCV (the headless wheel) does the image processing: its morphology with a square is fast at any size, and its Otsu
threshold and connected components are what this would otherwise write by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORKING_SIDE = 1024  # a photo is first shrunk to this longer side: enough for a 28x28 input, bounded time
PAPER_SQUARE = 1 / 3  # the first closing's square, as a share of the shorter side: wider than any stroke
STROKES = 3  # the second closing's square, in stroke widths: wide enough to fill a stroke, small enough to keep shadows
MIN_CONTRAST = 8.5  # ink's darkness over the paper's noise below which a page counts as blank (docs/tracking.md)
NOISE_FLOOR = 0.01  # the paper's noise is taken as at least 1% darkness, so a noiseless image needs real ink
FAINTEST = 0.4  # ink is at least this share of the darkest ink's darkness: a pale ruled line under black ink is not
SPECKLES_FROM = 100  # a photo's shorter side is at least this: a smaller image is a drawing, without noise specks
SPANS = 0.9  # a straight line across this share of the photo's width or height is ruled, not written


class BlankPage(ValueError):
    """No ink stands out from the paper."""


@dataclass(frozen=True)
class Ink:
    """A page's ink: `darkness` (0 = paper, 1 = black), the `mask` of ink pixels, and how far it stood out."""

    darkness: np.ndarray
    mask: np.ndarray
    contrast: float


def dark_ink(gray: np.ndarray) -> np.ndarray:
    """The image with its ink dark, inverted when the ink is light (chalk, or an MNIST image). Ink is the minority
    of the pixels, so it stands further from the local mean than the paper does: the image less a wide blur reaches
    further below zero than above where the ink is dark (a shadow's edge reaches as far either way)."""
    smooth = cv2.GaussianBlur(gray, (5, 5), 0)
    wide = max(3, min(gray.shape) // 2)
    detail = smooth - cv2.blur(gray, (wide, wide), borderType=cv2.BORDER_REFLECT)  # a box: any width, same cost
    return 255.0 - gray if detail.max() > -detail.min() else gray


def working_size(gray: np.ndarray) -> np.ndarray:
    """The image shrunk to WORKING_SIDE on its longer side, if it is larger (by area, which keeps thin strokes)."""
    h, w = gray.shape
    scale = WORKING_SIDE / max(h, w)
    if scale >= 1:
        return gray
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def widest_square(shape: tuple[int, ...]) -> int:
    """The first closing's square side: PAPER_SQUARE of the shorter side, odd, at least 3."""
    return max(3, int(min(shape) * PAPER_SQUARE) | 1)


def paper(gray: np.ndarray, side: int | None = None) -> np.ndarray:
    """The paper's level at every pixel: a closing with a square `side` pixels wide (default, and at most: a third of
    the shorter side). Beyond its edges the image is continued by odd reflection about the paper at the edge, so that
    light falling off towards an edge goes on falling (a plain mirror would make the paper there too light, and
    its shade ink), while ink touching an edge mirrors into light, which a closing leaves alone."""
    widest = widest_square(gray.shape)
    side = max(3, min(side or widest, widest) | 1)
    pad = side // 2 + 1
    extended = np.pad(edges_as_paper(gray), pad, mode="reflect", reflect_type="odd")
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    return cv2.morphologyEx(extended, cv2.MORPH_CLOSE, square)[pad:-pad, pad:-pad]


def edges_as_paper(gray: np.ndarray) -> np.ndarray:
    """The image with its outermost rows and columns replaced by their paper: each closed along its length with the
    widest square's side (continued past its ends by odd reflection, as the image is)."""
    side = widest_square(gray.shape)
    along = cv2.getStructuringElement(cv2.MORPH_RECT, (side, 1))
    pad = side // 2 + 1

    def closed(lines: np.ndarray) -> np.ndarray:  # rows, each closed on its own
        extended = np.pad(lines, ((0, 0), (pad, pad)), mode="reflect", reflect_type="odd")
        return cv2.morphologyEx(extended, cv2.MORPH_CLOSE, along)[:, pad:-pad]

    out = gray.copy()
    out[[0, -1], :] = closed(gray[[0, -1], :])
    out[:, [0, -1]] = closed(np.ascontiguousarray(out[:, [0, -1]].T)).T
    return out


def stroke_width(mask: np.ndarray) -> float:
    """How wide the widest strokes of a mask are: twice the distance to the paper along their middles (the pixels
    farthest from the paper in their neighbourhood), of the widest tenth."""
    inside = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)  # paper beyond the edges
    middle = (inside > 0) & (inside >= cv2.dilate(inside, np.ones((3, 3), np.uint8)))
    return 2 * float(np.percentile(inside[middle], 90)) if middle.any() else 0.0


def darkness(gray: np.ndarray, page: np.ndarray) -> np.ndarray:
    """1 - pixel / paper, clipped to 0-1: the same for ink in shadow and in full light (0 on black paper)."""
    return np.clip((page - gray) / np.maximum(page, 1.0), 0.0, 1.0).astype(np.float32)


def noise(dark: np.ndarray) -> float:
    """The paper's noise: the robust standard deviation of the darkness (the paper is most of the pixels)."""
    median = np.median(dark)
    return max(NOISE_FLOOR, 1.4826 * float(np.median(np.abs(dark - median))))


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of darkness values 0-1."""
    as_bytes = np.clip(np.rint(values * 255), 0, 255).astype(np.uint8).reshape(-1, 1)
    level, _ = cv2.threshold(as_bytes, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return level / 255.0


def along_edges(labels: np.ndarray, count: int) -> np.ndarray:
    """Which labelled shapes lie along an edge of the photo for half its length or more (the table beside the page,
    the page's own edge): a character in a tight crop touches an edge at a few pixels, not along it."""
    h, w = labels.shape
    edges = [(labels[0], w), (labels[-1], w), (labels[:, 0], h), (labels[:, -1], h)]
    along = np.zeros(count, bool)
    for edge, length in edges:
        along |= np.bincount(edge, minlength=count) >= length / 2
    return along


def straight_lines(mask: np.ndarray) -> np.ndarray:
    """The pixels of a mask on straight lines across nearly all the photo (ruled lines, a margin line), which may
    touch the ink and would otherwise take it with them."""
    h, w = mask.shape
    as_bytes = mask.astype(np.uint8)
    across = cv2.morphologyEx(as_bytes, cv2.MORPH_OPEN, np.ones((1, max(1, int(SPANS * w))), np.uint8))
    down = cv2.morphologyEx(as_bytes, cv2.MORPH_OPEN, np.ones((max(1, int(SPANS * h)), 1), np.uint8))
    return (across | down).astype(bool)


def ink_shapes(mask: np.ndarray, min_share: float) -> np.ndarray:
    """The mask without edges, lines and specks: shapes smaller than `min_share` of the largest are dropped."""
    mask = mask & ~straight_lines(mask)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = np.where(along_edges(labels, count), 0, stats[:, cv2.CC_STAT_AREA])
    areas[0] = 0  # label 0 is the paper
    keep = (areas > 0) & (areas >= min_share * areas.max())
    return keep[labels]


def around(mask: np.ndarray, margin: float = 0.25) -> tuple[slice, slice]:
    """The mask's bounding box, widened by `margin` of its size on every side (clipped to the image)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    dy = int((rows[-1] - rows[0] + 1) * margin) + 2
    dx = int((cols[-1] - cols[0] + 1) * margin) + 2
    return (
        slice(max(0, rows[0] - dy), min(mask.shape[0], rows[-1] + dy + 1)),
        slice(max(0, cols[0] - dx), min(mask.shape[1], cols[-1] + dx + 1)),
    )


def despeckled(dark: np.ndarray) -> np.ndarray:
    """Darkness with specks of a photo's noise (a pixel or two) gone: a 3x3 median. Not in an image smaller than
    SPECKLES_FROM, which is a drawing rather than a photo, and may have strokes a pixel wide."""
    if min(dark.shape) < SPECKLES_FROM:
        return dark
    return cv2.medianBlur(np.clip(np.rint(dark * 255), 0, 255).astype(np.uint8), 3) / 255.0


def strongest(smooth: np.ndarray) -> np.ndarray:
    """The strongest ink, at half the darkest's darkness or more, without lines, edges and specks."""
    if smooth.max() <= 0:
        return np.zeros(smooth.shape, bool)
    return ink_shapes(smooth >= smooth.max() / 2, min_share=0.05)


def page_darkness(gray: np.ndarray) -> np.ndarray:
    """Each pixel's darkness against the paper, in two passes: a square wider than any stroke finds the strokes, then
    one `STROKES` times as wide as they are measures them, so that a shadow smaller than the first square is paper."""
    first = darkness(gray, paper(gray))
    return darkness(gray, paper(gray, round(STROKES * stroke_width(strongest(despeckled(first))))))


def find_ink(gray: np.ndarray) -> Ink:
    """The ink of a grayscale photo (float 0-255, any size): raises BlankPage when none stands out."""
    gray = dark_ink(working_size(gray.astype(np.float32)))
    dark = page_darkness(gray)
    smooth = despeckled(dark)
    strong = strongest(smooth)  # where the character is
    if not strong.any():
        raise BlankPage(blank_reason(0.0))
    region = around(strong)  # Otsu's threshold where ink is a good share of the pixels, never under FAINTEST
    level = max(otsu(smooth[region]), FAINTEST * smooth.max())
    mask = np.zeros_like(strong)
    mask[region] = smooth[region] > level
    mask = ink_shapes(mask, min_share=0.02)
    contrast = float(np.median(smooth[mask])) / noise(dark) if mask.any() else 0.0
    if contrast < MIN_CONTRAST:
        raise BlankPage(blank_reason(contrast))
    return Ink(darkness=dark, mask=mask, contrast=contrast)


def blank_reason(contrast: float) -> str:
    return (
        f"blank: no ink stands out from the paper (contrast {contrast:.1f}, at least {MIN_CONTRAST:g} needed) — "
        "photograph the character closer, in even light, darker on lighter paper"
    )
