"""The image grid the report draws its correct and incorrect predictions with, on its edge: a grid with nothing in
it. The figures of a whole report: tests/test_report.py."""

from __future__ import annotations

import numpy as np

from pipeline.figures import plots


def test_an_image_grid_of_no_images_says_none():
    """As the report's grid of mistakes does for a model that makes none on a test set."""
    fig = plots.image_grid(np.zeros((0, 28, 28), np.uint8), [], "incorrect predictions")
    assert [t.get_text() for t in fig.texts] == ["none", "incorrect predictions"]  # what is shown, and the title
    assert not any(ax.images for ax in fig.axes)
    plots.close(fig)


def test_an_image_grid_captions_each_image_in_its_colour():
    images = np.zeros((3, 28, 28), np.uint8)
    fig = plots.image_grid(images, ["7", "1", "4→9"], "predictions", cols=2, colours=["green", "green", "red"])
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == ["7", "1", "4→9"] and len(fig.axes) == 4  # 2 rows of 2
    assert drawn[2].title.get_color() == "red" and [t.get_text() for t in fig.texts] == ["predictions"]
    plots.close(fig)
