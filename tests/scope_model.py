"""A tiny int8 model with a nested backbone and a fitted scope check, for tests (needs TensorFlow).

Built the way ``pneumo convert`` builds one (``inference_model``, the int8
converter, ``add_scope``), on few films, so the out-of-scope path runs on a real
interpreter and a real card in seconds. Its weights are untrained (seeded): the check
needs a model's features, not a good classifier.
"""

from __future__ import annotations

from pathlib import Path

SIZE = 64
SMALL = {"MAX_TRAIN": 160, "MAX_VAL": 80, "COPIES": 60, "AUGMENTS": 3, "MAX_CHECK_COPIES": 40}


def build_scope_model(folder: Path, train_dir: Path, fullres_dir: Path) -> tuple[Path, dict]:
    """The .tflite path (with its card, scope section included) and add_scope's report."""
    import keras
    from keras import layers

    from pneumo_edge.convert import scope_fit
    from pneumo_edge.convert.pipeline import representative_dataset
    from pneumo_edge.convert.tflite import convert, feature_widths, inference_model
    from pneumo_edge.edge.card import write_card
    from pneumo_edge.edge.labelled.listing import list_films
    from pneumo_edge.edge.preprocess import PreprocessSpec
    from pneumo_edge.train.splits import sample_per_class, split_by_patient

    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = inputs
    for i, filters in enumerate((8, 16, 24, 32)):  # strides 2, 4, 8 (the early tap), 16
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"conv{i}")(x)
    backbone = keras.Model(inputs, x, name="tiny_backbone")
    film = keras.Input((SIZE, SIZE, 1), name="film")
    pooled = layers.GlobalAveragePooling2D(name="pool")(backbone(film))
    model = keras.Model(film, layers.Dense(1, activation="sigmoid", name="probability")(pooled), name="tiny")

    spec = PreprocessSpec(size=SIZE)
    films = sample_per_class(list_films(train_dir), 120, 0)
    train, val = split_by_patient(films, 0.35, 0)
    b1 = inference_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny_scope_int8.tflite"
    path.write_bytes(convert(b1, "int8", representative_dataset(train[:40], spec)))
    write_card(path, {"name": "tiny_scope", "variant": "int8", "preprocess": spec.to_dict(),
                      "labels": ["NORMAL", "PNEUMONIA"], "threshold": 0.5})
    saved = {name: getattr(scope_fit, name) for name in SMALL}
    try:
        for name, value in SMALL.items():
            setattr(scope_fit, name, value)
        report = scope_fit.add_scope(path, feature_widths(b1), (train, val), fullres=fullres_dir, seed=0)
    finally:
        for name, value in saved.items():
            setattr(scope_fit, name, value)
    return path, {"report": report, "val": val, "widths": feature_widths(b1)}
