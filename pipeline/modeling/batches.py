"""The input pipeline for training and evaluation: numpy arrays in, batches of float32 images out.

Keras's own adapter for numpy arrays feeds the model through tf.data with autotuned, shared thread pools. On a
2-core machine those threads compete with the two compute threads, and throughput drops by up to half at
random, from one epoch or predict call to the next (bench/RESULTS.md). One private input thread, no
autotuning and a two-batch prefetch keep the compute threads fed and the timings steady.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def batches(
    x: np.ndarray, y: np.ndarray | None = None, *, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """Batches of (images, labels), or of images when `y` is None; reshuffled every epoch if a seed is given.

    Images stay uint8 in memory (a quarter of float32) and are cast on the way in; the model scales them."""
    data = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if y is None:
        data = data.map(lambda images: tf.cast(images, tf.float32))
    else:
        data = data.map(lambda images, labels: (tf.cast(images, tf.float32), labels))
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.autotune.enabled = False
    return data.prefetch(2).with_options(options)
