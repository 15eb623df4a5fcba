"""``pneumo convert``: a trained run to float32 / int8 (/ float16) TFLite files with cards,
an Edge TPU build when the compiler is present, and a float-vs-int8 parity report."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from .. import edge
from ..edge.card import write_card
from ..edge.classifier import Classifier, Options
from ..edge.errors import DataError
from ..edge.films import read_film
from ..edge.labelled import metrics
from ..edge.labelled.listing import LABELS, list_films
from ..edge.labelled.scoring import score_labelled
from ..edge.preprocess import PreprocessSpec, resize_grey, scale_pixels
from ..train.run_folder import load_run, run_split
from ..train.splits import sample_per_class
from .config import ConvertConfig

MIN_CALIBRATION = 300


def acquisition_variant(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uint8 film as another scanner might give it: gamma 0.7-1.4, contrast 0.8-1.2 about
    the mean, sensor noise; so int8 ranges cover films from elsewhere, not only this hospital's."""
    x = 255.0 * (pixels / 255.0) ** rng.uniform(0.7, 1.4)
    x = (x - x.mean()) * rng.uniform(0.8, 1.2) + x.mean() + rng.normal(0, rng.uniform(0, 6), x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def representative_dataset(films, spec: PreprocessSpec, *, augmented: bool = False, seed: int = 0):
    """Calibration tensors: each film as the device preprocesses it, and with ``augmented`` one
    acquisition variant of it too."""
    rng = np.random.default_rng(seed)
    tensors = []
    for film in films:
        pixels = resize_grey(read_film(film.path, min_size=spec.size).image, spec)
        tensors.append(scale_pixels(pixels, spec))
        if augmented:
            tensors.append(scale_pixels(acquisition_variant(pixels, rng), spec))

    def generate():
        for tensor in tensors:
            yield [tensor[np.newaxis].astype(np.float32)]

    return generate


def base_card(run: dict, name: str, variant: str) -> dict:
    import tensorflow as tf

    return {
        "name": name, "version": edge.__version__, "variant": variant, "arch": run["arch"],
        "alpha": run.get("alpha"), "preprocess": run["preprocess"],
        "input": {"size": run["preprocess"]["size"], "channels": run["preprocess"]["channels"],
                  "dtype": "uint8" if variant.startswith("int8") else "float32",
                  "scaling": run["preprocess"]["scaling"], "batch": 1},
        "outputs": {"probability": "P(PNEUMONIA), sigmoid",
                    **({"cam": "class activation map (logit contributions), 7 x 7"} if run["arch"] != "shallow"
                       else {})},
        "labels": run["labels"], "threshold": run["threshold"],
        "target_sensitivity": run["target_sensitivity"],
        "training": {"data": Path(run["data"]).name, "counts": run["counts"], "val_fraction": run["val_fraction"],
                     "split_seed": run.get("split_seed", run["seed"]), "split": "by patient", "weights": run["weights"],
                     "epochs_run": run.get("epochs_run"), "recipe": run.get("recipe"),
                     "soup": [Path(r).name for r in run.get("soup", [])]},
        "versions": {"pneumo_edge": edge.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def finalise_card(path: Path, card: dict, val_films) -> tuple[np.ndarray, np.ndarray]:
    """Score validation through the edge runtime; set this variant's own threshold there."""
    write_card(path, card)
    y, scores, errors = score_labelled(Classifier(Options(model=path)), val_films)
    threshold = metrics.threshold_for_sensitivity(y, scores, card["target_sensitivity"])
    summary = metrics.summary(y, scores, threshold)
    card.update(threshold=threshold, validation={
        "n": summary["n"], "roc_auc": summary["roc_auc"], "roc_auc_ci95": summary["roc_auc_ci95"],
        "ece": summary["ece"], "at_threshold": summary["at_threshold"], "unscored": len(errors)})
    write_card(path, card)
    return y, scores


def parity(y, float_scores, int8_scores, *, float_threshold, int8_threshold) -> dict:
    float_auc, int8_auc = metrics.roc_auc(y, float_scores), metrics.roc_auc(y, int8_scores)
    return {"films": int(len(y)), "float32_auc": float_auc, "int8_auc": int8_auc,
            "auc_drop": float_auc - int8_auc,
            "decision_agreement": float(np.mean((float_scores >= float_threshold) == (int8_scores >= int8_threshold))),
            "decision_agreement_at_0.5": float(np.mean((float_scores >= 0.5) == (int8_scores >= 0.5))),
            "max_probability_difference": float(np.max(np.abs(float_scores - int8_scores))),
            "mean_probability_difference": float(np.mean(np.abs(float_scores - int8_scores)))}


def outside_training(path: Path, card: dict, films) -> tuple[np.ndarray, np.ndarray]:
    """Score a labelled set from outside the training split at the card's stored threshold and
    record it in the card; the threshold itself never comes from these films."""
    y, scores, errors = score_labelled(Classifier(Options(model=path)), films)
    summary = metrics.summary(y, scores, card["threshold"])
    card["outside_training"] = {
        "description": "films from outside the training split (measured only; nothing was fit on them)",
        "data": films[0].path.parent.parent.name if films else None, "n": summary["n"],
        "roc_auc": summary["roc_auc"], "roc_auc_ci95": summary["roc_auc_ci95"],
        "at_threshold": summary["at_threshold"], "unscored": len(errors)}
    write_card(path, card)
    return y, scores


def check_soup(model_path: Path, run: dict, soup: list[tuple[Path, dict]]) -> None:
    """Runs whose weights may be averaged: one architecture, preprocessing and validation split
    (so the souped model's threshold still comes from films none of them trained on)."""
    def split(r):
        return r["data"], r.get("split"), r.get("limit"), r["val_fraction"], r.get("split_seed", r["seed"])

    for path, other in soup:
        if (other["arch"], other["preprocess"], split(other)) != (run["arch"], run["preprocess"], split(run)):
            raise DataError(f"{path.parent} cannot be souped with {model_path.parent}: the architecture, "
                            "preprocessing and validation split (data, --split-seed) must be the same",
                            code="soup_mismatch")


def convert_run(config: ConvertConfig) -> dict:
    """float32 and int8 (and float16) TFLite with cards, parity and the Edge TPU checks; the report.

    The run folder and the calibration films are checked before TensorFlow loads.
    """
    if not 0 < config.scope_refusal < 0.5:
        raise DataError(f"--scope-refusal is a share of validation films between 0 and 0.5, not "
                        f"{config.scope_refusal}", code="bad_scope_refusal")
    model_path, run = load_run(Path(config.model))
    soup = [load_run(Path(other)) for other in config.soup or []]
    check_soup(model_path, run, soup)
    name = config.name or f"pneumo_{run['arch']}"
    spec = PreprocessSpec.from_dict(run["preprocess"])
    train_films, val_films = run_split(run)
    calib_source = list_films(config.calib)
    val_paths = {f.path.resolve() for f in val_films}
    calib_pool = [f for f in calib_source if f.path.resolve() not in val_paths]
    calib_films = sample_per_class(calib_pool, config.calib_count // len(LABELS), run["seed"])
    if len(calib_films) < MIN_CALIBRATION or len({f.label for f in calib_films}) < 2:
        raise DataError(f"calibration needs at least {MIN_CALIBRATION} films from both classes; "
                        f"{len(calib_films)} found outside the validation split", code="calibration")

    import keras

    from . import edgetpu, preflight
    from .scope_fit import add_scope
    from .tflite import convert, feature_widths, inference_model

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"calibrating int8 on {len(calib_films)} films ({sum(f.label for f in calib_films)} pneumonia)",
          flush=True)

    trained = keras.models.load_model(model_path)
    if soup:
        from ..train.callbacks import average_weights

        trained.set_weights(average_weights([trained.get_weights(),
                                             *(keras.models.load_model(path).get_weights() for path, _ in soup)]))
        run = {**run, "soup": [str(model_path.parent), *(str(path.parent) for path, _ in soup)]}
    model = inference_model(trained)
    variants = {"float32": convert(model, "float32"),
                "int8": convert(model, "int8", representative_dataset(calib_films, spec, augmented=config.calib_augment,
                                                                      seed=run["seed"]))}
    if config.float16:
        variants["float16"] = convert(model, "float16")

    check_films = list_films(config.check) if config.check else []
    report = {"name": name, "files": {}, "val_films": len(val_films),
              "calibration": {"films": len(calib_films), "augmented": config.calib_augment}}
    scores, check_scores = {}, {}
    for variant, data in variants.items():
        path = out / f"{name}_{variant}.tflite"
        path.write_bytes(data)
        card = base_card(run, name, variant)
        y, scores[variant] = finalise_card(path, card, val_films)
        line = f"val AUC {card['validation']['roc_auc']:.4f}"
        if check_films:
            y_check, check_scores[variant] = outside_training(path, card, check_films)
            line += f", {Path(config.check).name} AUC {card['outside_training']['roc_auc']:.4f}"
        report["files"][variant] = {"path": str(path), "bytes": len(data), "threshold": card["threshold"],
                                    "val_auc": card["validation"]["roc_auc"],
                                    "check_auc": card.get("outside_training", {}).get("roc_auc")}
        print(f"{path.name}: {len(data) / 1024:.0f} KiB, {line}, threshold {card['threshold']:.4f}", flush=True)

    int8_path = out / f"{name}_int8.tflite"
    if config.adult_films is None:
        print("no adult films given (--adult-films): the models get no out-of-scope check", flush=True)
        report["scope"] = None
    else:
        # Each file's check is fit on its own outputs: the float32 file's features are not the int8 file's.
        report["scope"] = {variant: add_scope(out / f"{name}_{variant}.tflite", feature_widths(model),
                                              (train_films, val_films), fullres=Path(config.adult_films),
                                              seed=run["seed"], test_dev_films=check_films,
                                              refusal=config.scope_refusal)
                           for variant in variants}
    thresholds = {"float_threshold": report["files"]["float32"]["threshold"],
                  "int8_threshold": report["files"]["int8"]["threshold"]}
    report["parity"] = parity(y, scores["float32"], scores["int8"], **thresholds)
    if check_films:
        report["check_parity"] = {"data": str(config.check), **parity(y_check, check_scores["float32"],
                                                                      check_scores["int8"], **thresholds)}
    report["edgetpu_preflight"] = preflight.check_model(int8_path).as_dict()
    report["edgetpu_compile"] = edgetpu.compile_if_available(int8_path, out, config.edgetpu_runtime)
    (out / f"{name}_convert_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
