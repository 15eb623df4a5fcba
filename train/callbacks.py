"""Training callbacks: weight averaging over the last epochs, and a watched film set.

Epoch-to-epoch swings of AUC on films from elsewhere are as large as the gains
between recipes, so a run's final weights are the average of its last epochs'
weights (stochastic weight averaging) rather than one epoch picked by a saturated
validation AUC.
"""

from __future__ import annotations

import numpy as np

from ..edge.labelled import metrics


def average_weights(snapshots: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Element-wise mean of weight lists (integer weights, such as counters, from the last)."""
    return [np.mean(parts, axis=0).astype(parts[-1].dtype) if np.issubdtype(parts[-1].dtype, np.floating)
            else parts[-1] for parts in zip(*snapshots)]


def make_callbacks(keep_last: int, watch=None, epoch_dir=None):
    """Callbacks that keep the last ``keep_last`` epochs' weights (``.snapshots``) and, with
    ``watch`` = (x, y, dataset), log ``watch_auc`` each epoch: reported, never used to choose."""
    import keras

    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.snapshots = []

        def on_epoch_end(self, epoch, logs=None):
            if watch is not None:
                dataset, labels = watch
                scores = self.model.predict(dataset, verbose=0).reshape(-1)
                logs["watch_auc"] = metrics.roc_auc(labels, scores)
            if epoch_dir is not None:
                self.model.save_weights(epoch_dir / f"epoch_{epoch + 1:02d}.weights.h5")
            if keep_last > 0:
                self.snapshots = (self.snapshots + [self.model.get_weights()])[-keep_last:]

    return Snapshots()
