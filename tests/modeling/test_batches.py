"""The input pipeline: every image once per epoch, float32, in a seeded order that changes between epochs."""

from __future__ import annotations

import numpy as np

from pipeline.modeling.batches import batches


def test_batches_cover_every_image_once_in_a_seeded_reshuffled_order():
    x = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28) % 251
    y = np.arange(10)
    data = batches(x, y, batch_size=4, shuffle_seed=3)
    epochs = [[(xb.numpy(), yb.numpy()) for xb, yb in data] for _ in range(2)]
    assert [len(yb) for _, yb in epochs[0]] == [4, 4, 2]
    orders = [np.concatenate([yb for _, yb in e]) for e in epochs]
    assert sorted(orders[0]) == list(range(10)) and sorted(orders[1]) == list(range(10))
    assert list(orders[0]) != list(orders[1])  # reshuffled each epoch
    again = np.concatenate([yb.numpy() for _, yb in batches(x, y, batch_size=4, shuffle_seed=3)])
    np.testing.assert_array_equal(again, orders[0])  # the same seed, the same order
    xb, yb = epochs[0][0]
    assert xb.dtype == np.float32
    np.testing.assert_array_equal(xb, x[yb].astype(np.float32))  # images stay with their labels


def test_images_only_batches_keep_their_order():
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    out = np.concatenate([b.numpy() for b in batches(x, batch_size=2)])
    np.testing.assert_array_equal(out, x.astype(np.float32))
