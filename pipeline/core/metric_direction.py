"""Which way a metric is better: one rule for the training's best epoch (the checkpoint, the early stop, the summary)
and for a sweep's best variant and champion."""

from __future__ import annotations

LOWER_IS_BETTER = ("loss", "ece")  # errors; every other score (accuracy, macro_f1, top5_accuracy…) is better higher


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of `metric` is better, by whichever name it goes: a score (`loss`), Keras's name for
    it on the held-out images (`val_loss`), or a run's metric on a test set (`test.mnist.loss`)."""
    return metric.rpartition(".")[2].removeprefix("val_") not in LOWER_IS_BETTER


def keras_mode(metric: str) -> str:
    """The same rule as Keras's callbacks take it: left at `auto`, each would guess from the name by its own."""
    return "max" if higher_is_better(metric) else "min"
