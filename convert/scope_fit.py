"""Fit the out-of-scope check for one converted model: the card's ``scope`` section.

Runs inside ``pneumo convert``, once per converted file, on the features that
file itself outputs through the edge runtime, so the statistics are those of the
arithmetic the device runs (int8 or float32). numpy only. What is fit on what:

- PCA statistics per feature block (distance check): training films only.
- The multinomial discriminant: training films against named negatives (all the
  shared adult films with augmented copies, inverted and rotated copies of
  training films, non-chest images with augmented copies).
- Both cut-offs: the run's validation split (carved from ``train``), for a set
  share of in-scope refusals. ``test_dev`` is never used here.

Held-out refusal rates for adult and non-chest films come from grouped
cross-validation (each source film or image held out once), because every one of
them is in the final fit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from ..edge.films import Film, read_film
from ..edge.preprocess import resize_grey, scale_pixels
from ..edge.scope import IN_SCOPE, Block, ScopeCheck, block_inputs, encode, feature_blocks
from ..train import scope_sets

CLASSES = [IN_SCOPE, "adult", "inverted", "rotated", "non_chest"]
PCA_DIMS = 16  # per block; the card holds (PCA_DIMS + 1) x width floats per block
MAX_TRAIN = 1500  # training films for the PCA and the discriminant's in-scope class
MAX_VAL = 1000  # validation films for the cut-offs
COPIES = 400  # training films inverted, and again rotated by each quarter turn
AUGMENTS = 15  # augmented copies per adult or non-chest source
#: Share of validation films each part (distance, discriminant) may refuse, by default. At 0.01 the
#: default model refused 2.3% of test_dev; at 0.005, 1.0%, and every cross-validated adult and
#: non-chest film and every inverted or rotated copy still (docs/experiments.md).
REFUSAL = 0.005
FOLDS = 6


def _features(classifier, films, spec, *, layout) -> dict[str, np.ndarray]:
    """The scope features of each film, stacked per block: (n, width)."""
    rows = []
    for film in films:
        pixels = resize_grey(film.image, spec)
        rows.append(feature_blocks(classifier.invoke(scale_pixels(pixels, spec)), pixels, layout))
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def _read(films, spec) -> list[Film]:
    return [read_film(f.path, min_size=spec.size) for f in films]


def fit_blocks(train: dict[str, np.ndarray], dims: int = PCA_DIMS) -> dict[str, Block]:
    blocks = {}
    for name, x in train.items():
        x = x.astype(np.float64)
        mean = x.mean(axis=0)
        _, singular, axes = np.linalg.svd(x - mean, full_matrices=False)
        k = min(dims, len(singular))
        variance = np.maximum(singular[:k] ** 2 / (len(x) - 1), 1e-12)
        projection = (axes[:k] / np.sqrt(variance)[:, None]).astype(np.float32)
        block = Block(mean.astype(np.float32), projection, 1.0)
        residuals = np.array([block.coordinates(row.astype(np.float32))[1] for row in x])
        block.residual_scale = float(max(np.median(residuals), 1e-12))
        blocks[name] = block
    return blocks


def _rows(blocks, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n = len(next(iter(features.values())))
    pairs = [block_inputs(blocks, {k: v[i] for k, v in features.items()}) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, *, l2: float = 1e-3, steps: int = 1500,
                rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, classes weighted equally, by Adam on the full batch."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample_weight = (len(y) / (classes * np.maximum(counts, 1)))[y] / len(y)
    onehot = np.eye(classes)[y]
    w, b = np.zeros((classes, x.shape[1])), np.zeros(classes)
    moments = [np.zeros_like(w), np.zeros_like(b)], [np.zeros_like(w), np.zeros_like(b)]
    for step in range(1, steps + 1):
        # einsum, not @: these products are small, and a multi-threaded BLAS on a busy
        # machine spends 30 times longer handing them between threads than doing them.
        logits = np.einsum("nm,cm->nc", x, w) + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_weight[:, None]
        grads = [np.einsum("nc,nm->cm", g, x) + l2 * w, g.sum(axis=0)]
        for i, (param, grad) in enumerate(zip((w, b), grads)):
            moments[0][i] = 0.9 * moments[0][i] + 0.1 * grad
            moments[1][i] = 0.999 * moments[1][i] + 0.001 * grad ** 2
            param -= rate * (moments[0][i] / (1 - 0.9 ** step)) / (np.sqrt(moments[1][i] / (1 - 0.999 ** step)) + 1e-8)
    return w, b


def _softmax(x, w, b) -> np.ndarray:
    logits = x @ w.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@dataclass
class Fitted:
    """The distance check as fit on training films, and the films that set the cut-offs."""

    blocks: dict[str, Block]
    layout: dict[str, int]
    train_distances: np.ndarray  # (films, blocks)
    val_distances: np.ndarray
    val_x: np.ndarray  # the validation films' discriminant inputs


def build_section(fitted: Fitted, x: np.ndarray, y: np.ndarray, refusal: float = REFUSAL) -> dict:
    """The card's scope section from the fitted blocks and the labelled rows of the discriminant;
    each part's cut-off refuses ``refusal`` of the validation films."""
    scale = np.median(fitted.train_distances, axis=0)
    distance_cutoff = float(np.quantile(np.max(fitted.val_distances / scale, axis=1), 1 - refusal))
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    w, b = fit_softmax((x - mean) / std, y, len(CLASSES))
    val_out = 1 - _softmax((fitted.val_x - mean) / std, w, b)[:, 0]
    return {
        "outputs": fitted.layout,
        "blocks": {name: {"mean": encode(block.mean), "projection": encode(block.projection),
                          "residual_scale": block.residual_scale} for name, block in fitted.blocks.items()},
        "distance": {"scale": scale.tolist(), "cutoff": distance_cutoff,
                     "fit": f"PCA ({PCA_DIMS} axes) per block on training films; cut-off at "
                            f"{1 - refusal:.1%} of validation films"},
        "discriminant": {"classes": CLASSES, "input_mean": encode(mean), "input_scale": encode(std),
                         "weights": encode(w), "bias": encode(b),
                         "cutoff": float(np.quantile(val_out, 1 - refusal))},
    }


def fit_scope(classifier, layout: dict[str, int], films: tuple[list, list], *, fullres, seed: int = 0,
              refusal: float = REFUSAL) -> tuple[dict, dict]:
    """The card's scope section, and what was fit on and measured (for the convert report).

    ``films``: the run's (training, validation) films.
    """
    train_films, val_films = films
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    spec = classifier.spec
    train = [train_films[i] for i in sorted(rng.permutation(len(train_films))[:MAX_TRAIN])]
    val = [val_films[i] for i in sorted(rng.permutation(len(val_films))[:MAX_VAL])]
    train_in, val_in = _read(train, spec), _read(val, spec)
    copies = [train_in[i] for i in rng.permutation(len(train_in))[:COPIES * 2]]
    half = len(copies) // 2  # COPIES each, or half each of a run with fewer training films
    adult = scope_sets.adult_films(fullres)
    non_chest = scope_sets.non_chest_films()
    negatives = {  # kind -> (group, film) pairs; a group is held out whole in cross-validation
        "adult": [(g, f) for g, film in adult for f in [film, *scope_sets.augmented(film, AUGMENTS, rng)]],
        "inverted": [("inverted", scope_sets.inverted(f)) for f in copies[:half]],
        "rotated": [("rotated", scope_sets.rotated(f, 1 + i % 3)) for i, f in enumerate(copies[half:])],
        "non_chest": [(g, f) for g, film in non_chest for f in [film, *scope_sets.augmented(film, AUGMENTS, rng)]],
    }
    print(f"scope check: features of {len(train_in)} training, {len(val_in)} validation and "
          f"{sum(map(len, negatives.values()))} out-of-scope films", flush=True)
    train_features = _features(classifier, train_in, spec, layout=layout)
    blocks = fit_blocks(train_features)
    train_distances, train_x = _rows(blocks, train_features)
    val_distances, val_x = _rows(blocks, _features(classifier, val_in, spec, layout=layout))
    groups, kinds, neg_distances, neg_x = [], [], [], []
    for kind, pairs in negatives.items():
        distances, rows = _rows(blocks, _features(classifier, [f for _, f in pairs], spec, layout=layout))
        neg_distances.append(distances)
        neg_x.append(rows)
        groups += [g for g, _ in pairs]
        kinds += [CLASSES.index(kind)] * len(pairs)
    x = np.concatenate([train_x, *neg_x])
    distances = np.concatenate([train_distances, *neg_distances])
    y = np.array([0] * len(train_x) + kinds)
    groups = np.array([""] * len(train_x) + groups)
    fitted = Fitted(blocks, layout, train_distances, val_distances, val_x)
    section = build_section(fitted, x, y, refusal)
    section["fit"] = {"training_films": len(train_in), "validation_films": len(val_in),
                      "negatives": {kind: len(pairs) for kind, pairs in negatives.items()},
                      "adult_sources": len(adult), "non_chest_sources": len(non_chest),
                      "augments_per_source": AUGMENTS, "validation_refusal_per_part": refusal}
    held_out = {kind: _cross_validated(fitted, (distances, x, y, groups), [g for g, _ in pairs_of], seed=seed,
                                       refusal=refusal)
                for kind, pairs_of in (("adult", adult), ("non_chest", non_chest))}
    report = {"fit": section["fit"], "held_out_cross_validated": held_out,
              "fit_seconds": round(time.monotonic() - started, 1)}
    return section, report


def _cross_validated(fitted: Fitted, rows: tuple, sources: list[str], *, seed: int, refusal: float) -> dict:
    """Refusal of each source film (unaugmented), with a check fit without it and its copies.

    ``rows``: every fit row's (block distances, discriminant inputs, class, source group).
    """
    distances, x, y, groups = rows
    order = np.random.default_rng(seed).permutation(len(sources))
    refused = 0
    first_rows = {g: int(np.flatnonzero(groups == g)[0]) for g in sources}  # the original comes first
    for fold in np.array_split(order, min(FOLDS, len(sources))):
        held = {sources[i] for i in fold}
        keep = ~np.isin(groups, list(held))
        check = ScopeCheck(build_section(fitted, x[keep], y[keep], refusal))
        for g in held:
            row = first_rows[g]
            distance = float(np.max(distances[row] / check.distance_scale))
            refused += not check.decide_scores(distance, x[row]).in_scope
    return {"films": len(sources), "refused": refused, "rate": refused / len(sources),
            "folds": min(FOLDS, len(sources))}


MAX_CHECK_COPIES = 300  # validation films copied (inverted, rotated) for the report


def add_scope(model_path, layout: dict[str, int], films: tuple[list, list], *, fullres, test_dev_films=None,
              seed: int = 0, refusal: float = REFUSAL) -> dict:
    """Fit the scope check for the model at ``model_path``, write it into its card, and measure it.

    The returned report gives the in-scope refusal rate on validation (where the
    cut-offs were set) and on ``test_dev`` (films from elsewhere, measured only), and
    the refusal rate on each out-of-scope check set.
    """
    from ..edge.card import read_card, write_card
    from ..edge.classifier import Classifier, Options

    section, report = fit_scope(Classifier(Options(model=model_path)), layout, films, fullres=fullres, seed=seed,
                                refusal=refusal)
    val_films = films[1]
    card = read_card(model_path)
    card["scope"] = section
    write_card(model_path, card)
    classifier = Classifier(Options(model=model_path, allow_out_of_scope=True))
    val = _read(val_films[:MAX_VAL], classifier.spec)
    rates = {"validation (in scope)": scope_sets.measure(classifier, val)}
    if test_dev_films:
        rates["test_dev (in scope, measured only)"] = scope_sets.measure(
            classifier, _read(test_dev_films, classifier.spec))
    for name, copies in scope_sets.check_sets(val[:MAX_CHECK_COPIES], None, with_non_chest=False):
        rates[f"{name} (validation copies)"] = scope_sets.measure(classifier, copies)
    for kind, figure in report.pop("held_out_cross_validated").items():
        rates[f"{kind} (held out, cross-validated)"] = figure
    report["refusal"] = rates
    report["card_scope_bytes"] = len(json.dumps(section))
    return report
