"""Training: decode once with the edge preprocessing, augment, fit, keep the best by val AUC
(or the average of the last epochs' weights)."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..edge.errors import DataError
from ..edge.labelled import metrics
from ..edge.labelled.listing import LABELS, list_films
from ..edge.preprocess import SCALINGS, PreprocessSpec
from .config import TrainConfig
from .films_in_memory import load_pixels
from .splits import count_table, sample_per_class, split_by_patient

DEFAULT_SIZE = {"shallow": 64, "mobilenet": 224, "efficientnet_lite0": 224}
DEFAULT_LR = {"shallow": 1e-3, "mobilenet": 2e-3, "efficientnet_lite0": 5e-4}
SCALING = {"shallow": "unit", "mobilenet": "symmetric", "efficientnet_lite0": "lite"}


def weights_of(config: TrainConfig) -> str:
    """imagenet for EfficientNet-Lite0 (read offline), none otherwise, unless the config says."""
    return config.weights or ("imagenet" if config.arch == "efficientnet_lite0" else "none")


def run_spec(config: TrainConfig) -> PreprocessSpec:
    channels = config.channels or (3 if weights_of(config) == "imagenet" and config.arch == "mobilenet" else 1)
    return PreprocessSpec(size=config.size or DEFAULT_SIZE[config.arch], channels=channels,
                          scaling=SCALING[config.arch], normalise=config.normalise)


def make_dataset(pixels, labels, spec: PreprocessSpec, *, batch: int, seed: int, augment: str = "none"):
    """A tf.data pipeline; scaling repeats :func:`edge.preprocess.scale_pixels` exactly.
    ``augment`` other than "none" shuffles and augments (see :mod:`.augment`)."""
    import tensorflow as tf

    from .augment import acquisition, geometry, jpeg_recompress

    multiplier, offset = SCALINGS[spec.scaling]
    ds = tf.data.Dataset.from_tensor_slices((pixels[..., np.newaxis], labels))
    if augment != "none":
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if augment == "acquisition":
        ds = ds.map(lambda x, y: (jpeg_recompress(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch)
    aug = geometry(seed, zoom=0.15 if augment == "acquisition" else 0.1) if augment != "none" else None

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if aug is not None:
            x = tf.clip_by_value(aug(x, training=True), 0.0, 255.0)
        if augment == "acquisition":
            x = acquisition(x)
        x = x * multiplier + offset
        if spec.channels == 3:
            x = tf.repeat(x, 3, axis=-1)
        return x, y

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def split_films(config: TrainConfig):
    """The run's train and validation films; a missing or unlabelled folder fails here, before TensorFlow loads."""
    split_seed = split_seed_of(config)
    films = sample_per_class(list_films(config.data, config.split), config.limit, split_seed)
    if len({f.label for f in films}) < 2:
        raise DataError(f"training needs films of both classes ({', '.join(LABELS)}) in {config.data}",
                        code="one_class")
    return split_by_patient(films, config.val_fraction, split_seed)


def split_seed_of(config: TrainConfig) -> int:
    return config.seed if config.split_seed is None else config.split_seed


def train(config: TrainConfig) -> Path:
    """Fit ``config.arch`` on ``config.data`` and write the run folder ``config.out``; return it."""
    train_films, val_films = split_films(config)

    import keras
    import tensorflow as tf

    from .architectures import build
    from .callbacks import average_weights, make_callbacks
    from .plots import plot_history

    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = run_spec(config)
    print(count_table({"train": train_films, "val": val_films}), flush=True)

    x_train, y_train, train_films, skipped_train = load_pixels(train_films, spec, config.workers)
    x_val, y_val, val_films, skipped_val = load_pixels(val_films, spec, config.workers)
    skipped = skipped_train + skipped_val
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)

    counts = np.bincount(y_train.astype(int), minlength=2)
    class_weight = {i: float(len(y_train) / (2 * max(c, 1))) for i, c in enumerate(counts)}
    print(f"class weights: {class_weight}", flush=True)

    weights = weights_of(config)
    model = build(config.arch, spec.size, spec.channels, alpha=config.alpha,
                  weights=None if weights == "none" else weights, freeze_blocks=config.freeze_blocks)
    steps = int(np.ceil(len(y_train) / config.batch)) * config.epochs
    lr = keras.optimizers.schedules.CosineDecay(config.lr or DEFAULT_LR[config.arch], steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")])

    train_ds = make_dataset(x_train, y_train, spec, batch=config.batch, seed=config.seed, augment=config.augment)
    val_ds = make_dataset(x_val, y_val, spec, batch=config.batch, seed=config.seed)
    watch = None
    if config.watch:
        x_watch, y_watch, _, _ = load_pixels(list_films(config.watch), spec, config.workers)
        watch = (make_dataset(x_watch, y_watch, spec, batch=config.batch, seed=config.seed), y_watch)
    epoch_dir = out / "epochs" if config.keep_epochs else None
    if epoch_dir:
        epoch_dir.mkdir(exist_ok=True)
    snapshots = make_callbacks(config.average_last, watch=watch, epoch_dir=epoch_dir)
    best_path = out / "model.keras"
    callbacks = [snapshots, keras.callbacks.CSVLogger(out / "history.csv")]
    if not config.average_last:
        callbacks[1:1] = [
            keras.callbacks.ModelCheckpoint(best_path, monitor="val_auc", mode="max", save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience,
                                          restore_best_weights=True)]
    started = time.time()
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, class_weight=class_weight,
              callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    train_seconds = time.time() - started
    if config.average_last:
        model.set_weights(average_weights(snapshots.snapshots))
        model.save(best_path)

    best = keras.models.load_model(best_path)
    val_scores = best.predict(val_ds, verbose=0).reshape(-1)
    threshold = metrics.threshold_for_sensitivity(y_val, val_scores, config.target_sensitivity)
    val_metrics = metrics.summary(y_val, val_scores, threshold)
    val_metrics["target_sensitivity"] = config.target_sensitivity

    run = {
        "arch": config.arch, "alpha": config.alpha if config.arch == "mobilenet" else None,
        "weights": weights_of(config), "preprocess": spec.to_dict(),
        "recipe": {"augment": config.augment, "label_smoothing": config.label_smoothing,
                   "freeze_blocks": config.freeze_blocks if config.arch == "efficientnet_lite0" else None,
                   "average_last": config.average_last, "epochs": config.epochs, "batch": config.batch,
                   "lr": config.lr or DEFAULT_LR[config.arch]}, "labels": list(LABELS),
        "threshold": threshold, "target_sensitivity": config.target_sensitivity,
        "data": str(Path(config.data).resolve()), "split": config.split, "limit": config.limit,
        "val_fraction": config.val_fraction, "seed": config.seed, "split_seed": split_seed_of(config),
        "counts": {"train": {LABELS[i]: int(c) for i, c in enumerate(np.bincount(y_train.astype(int), minlength=2))},
                   "val": {LABELS[i]: int(c) for i, c in enumerate(np.bincount(y_val.astype(int), minlength=2))},
                   "train_patients": len({f.patient for f in train_films}),
                   "val_patients": len({f.patient for f in val_films})},
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "epochs_run": len(model.history.epoch) if model.history else None,
        "train_seconds": round(train_seconds, 1),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_run(out, run, val_metrics, val_films=val_films, val_scores=val_scores)
    plot_history(out / "history.csv", out)
    at = val_metrics["at_threshold"]
    print(f"validation: AUC {val_metrics['roc_auc']:.4f} (95% CI {val_metrics['roc_auc_ci95'][0]:.3f}-"
          f"{val_metrics['roc_auc_ci95'][1]:.3f}); at threshold {threshold:.3f}: sensitivity "
          f"{at['sensitivity']:.3f}, specificity {at['specificity']:.3f}, accuracy {at['accuracy']:.3f}")
    print(f"run written to {out} in {train_seconds / 60:.1f} min", flush=True)
    return out


def write_run(out: Path, run: dict, val_metrics: dict, *, val_films, val_scores) -> None:
    """run.json, val_metrics.json and val_predictions.csv: what convert and evaluate read back."""
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    (out / "val_metrics.json").write_text(json.dumps(val_metrics, indent=2) + "\n")
    with open(out / "val_predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "probability"])
        for film, score in zip(val_films, val_scores):
            writer.writerow([film.path, LABELS[film.label], f"{score:.6f}"])
