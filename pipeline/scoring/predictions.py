"""One test set's predictions as the report reads them: the model's probabilities, with the test set's images, and
the counts drawn from them (the confusion matrix, the mistakes by confidence, the most confused pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.datasets import Dataset, display
from pipeline.scoring import metrics


@dataclass(frozen=True)
class Predictions:
    """One test set's predictions (predictions/<test set>.npz) with its images, and the counts drawn from them."""

    name: str
    dataset: Dataset
    images: np.ndarray  # the evaluated images: the first len(y) of the test set (evaluate.limit)
    y: np.ndarray  # their true classes
    probs: np.ndarray  # the model's probability of every class, one row per image
    pred: np.ndarray  # the predicted class (the most probable)
    confidence: np.ndarray  # its probability
    cm: np.ndarray  # confusion matrix: row = true class, column = predicted class
    mistakes: np.ndarray  # indices of the misclassified images, the most confident mistake first
    pairs: list[tuple[int, int, int]]  # the most confused (true, predicted, count), largest count first

    @classmethod
    def of(cls, name: str, ds: Dataset, probs: np.ndarray, y: np.ndarray, confused_pairs: int) -> Predictions:
        """From evaluate's probabilities and true classes; `confused_pairs`: how many pairs to keep."""
        pred = probs.argmax(axis=1)
        cm = metrics.confusion_matrix(y, pred, ds.num_classes)
        return cls(
            name=name,
            dataset=ds,
            images=ds.x_test[: len(y)],
            y=y,
            probs=probs,
            pred=pred,
            confidence=probs.max(axis=1),
            cm=cm,
            mistakes=metrics.misclassified_by_confidence(probs, y),
            pairs=metrics.most_confused_pairs(cm, confused_pairs),
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.class_names

    @property
    def title(self) -> str:
        return display(self.name)
