"""A run's datasets: the digest by which MLflow knows the images and labels the run used."""

from __future__ import annotations

import numpy as np

from pipeline.tracking.runs import content_digest
from tests.helpers.synthetic import synthetic_dataset


def test_content_digest_tells_apart_any_change_to_images_labels_or_shape():
    ds = synthetic_dataset(10, 200, 0, seed=1)
    x, y = ds.x_train, ds.y_train
    digest = content_digest(x, y)
    assert len(digest) == 12 and digest == content_digest(x.copy(), y.copy())
    last_pixel = x.copy()
    last_pixel[-1, -1, -1] ^= 1  # beyond the first 10,000 values, which are all that MLflow's own digest reads
    assert content_digest(last_pixel, y) != digest
    relabelled = y.copy()
    relabelled[-1] = (relabelled[-1] + 1) % 10
    assert content_digest(x, relabelled) != digest
    assert content_digest(x.reshape(200, 784), y) != digest
    assert content_digest(x[:100], y[:100]) != digest
    assert content_digest(x[::2], y[::2]) == content_digest(np.ascontiguousarray(x[::2]), y[::2])
