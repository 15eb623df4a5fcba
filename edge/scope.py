"""Is this film what the model was made for? The out-of-scope check, on the device.

The model answers only for frontal chest films of children. After the quality
gate and before a label, every film is checked here and is either in scope or
out of scope with a reason a clinic worker understands, and a score.

Three checks, cheapest first:

1. The DICOM header, where a film has one: an adult's age, a body part other
   than the chest, or a lateral view refuse at once.
2. A distance check for what the training films do not look like: per feature
   block (the int8 model's pooled final features, its pooled early features,
   and a 16 x 16 thumbnail of the model's input), a PCA-whitened (Mahalanobis)
   distance plus the residual outside the PCA subspace, fit on training films.
3. A linear (multinomial logistic) discriminant for what the device must refuse,
   fit on named negatives (adult films, inverted and rotated copies of training
   films, grey images that are not chests); its most likely class names the reason.

The statistics, weights and cut-offs come from ``pneumo convert``
(:mod:`pneumo_edge.convert.scope_fit`) and travel in the model card's ``scope``
section. Everything here is numpy: a few small matrix products per film.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import numpy as np

from .errors import FilmError

IN_SCOPE = "in_scope"
OUT_OF_SCOPE = "out_of_scope"
UNCHECKED = "unchecked"

THUMBNAIL_SIDE = 16
ADULT_AGE_YEARS = 18

#: The discriminant's classes and what a clinic worker is told for each.
REASONS = {
    "adult": "does not look like a child's frontal chest film",
    "inverted": "looks inverted (a negative): check the scanner's or viewer's grey-scale setting",
    "rotated": "looks rotated: turn the film upright (head at the top) and try again",
    "non_chest": "does not look like a chest film",
}
UNLIKE_TRAINING = "does not look like a child's frontal chest film"


class OutOfScope(FilmError):
    """A film the model was not made for, refused before a label is given."""

    code = "out_of_scope"

    def __init__(self, decision: Decision):
        super().__init__(f"out of scope: {decision.reason}"
                         + (f" (scope score {decision.score:.2f})" if decision.score is not None else ""),
                         hint="the model answers only for frontal chest films of children")
        self.decision = decision


@dataclass(frozen=True)
class Decision:
    in_scope: bool
    reason: str | None = None
    score: float | None = None  # 0 typical of the training films, >= 1 refused
    check: str = "model"  # model, dicom, or none

    @property
    def status(self) -> str:
        """The results file's ``scope`` column."""
        if self.check == "none":
            return UNCHECKED
        return IN_SCOPE if self.in_scope else f"{OUT_OF_SCOPE}: {self.reason}"

    def as_dict(self) -> dict:
        return {"in_scope": self.in_scope, "reason": self.reason,
                "score": None if self.score is None else round(self.score, 4), "check": self.check}


NOT_CHECKED = Decision(True, "this model's card has no scope section", None, "none")


def encode(array: np.ndarray) -> dict:
    """A float array as JSON: float32 little-endian bytes in base64 (compact and exact)."""
    array = np.asarray(array, dtype="<f4")
    return {"shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode(data: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["base64"]), dtype="<f4").reshape(data["shape"]).astype(np.float32)


def thumbnail(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """The model's uint8 input (H, W) as a (side * side,) block mean in [0, 1].

    The block sums are whole numbers, exact in any order: summing rows first and then
    columns, in integers, gives the float32 mean over both axes bit for bit, in a third
    of the time of numpy's reduction over two short axes. A block of at most 257 pixels
    sums in 16 bits (257 x 255 < 2 ** 16), which halves the time again.
    """
    height, width = pixels.shape
    rows, cols = height // side, width // side
    dtype = np.uint16 if rows * cols * 255 < 2 ** 16 else np.int64
    sums = pixels[:rows * side, :cols * side].reshape(side, rows, cols * side).sum(axis=1, dtype=dtype)
    sums = sums.reshape(side, side, cols).sum(axis=2, dtype=dtype)
    return (sums.astype(np.float32) / np.float32(rows * cols)).reshape(-1) / np.float32(255)


def feature_blocks(outputs: dict[str, np.ndarray], pixels: np.ndarray, layout: dict[str, int]) -> dict:
    """The named feature vectors for one film: the model's extra outputs, and the thumbnail.

    ``layout`` maps block name to the width of its model output (the card's
    ``scope.outputs``); the runtime's outputs are told apart by width.
    """
    by_width = {value.size: value.reshape(-1) for key, value in outputs.items() if key.startswith("features")}
    blocks = {name: by_width[width] for name, width in layout.items()}
    blocks["thumbnail"] = thumbnail(pixels)
    return blocks


@dataclass
class Block:
    """One feature block's training statistics: its mean and its PCA axes, whitened."""

    mean: np.ndarray
    projection: np.ndarray  # (k, d): principal axes divided by their standard deviations
    residual_scale: float  # typical squared residual outside the subspace on training films

    def coordinates(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        centred = x - self.mean
        z = self.projection @ centred
        residual = float(centred @ centred) - float(z @ (self._variances * z))
        return z, max(residual, 0.0) / self.residual_scale

    def __post_init__(self):
        # |x - mean|^2 inside the subspace is sum(variance_i * z_i^2): keep the variances.
        self._variances = 1.0 / np.maximum(np.sum(self.projection ** 2, axis=1), 1e-30)


def block_inputs(blocks: dict[str, Block], features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per block distances (mean squared whitened coordinate + residual), and the discriminant's inputs."""
    distances, inputs = [], []
    for name, block in blocks.items():
        z, residual = block.coordinates(np.asarray(features[name], dtype=np.float32))
        distance = float(z @ z) / len(z) + residual
        distances.append(distance)
        inputs.extend([z, [np.log1p(residual), np.log1p(distance)]])
    return np.array(distances, dtype=np.float64), np.concatenate(inputs).astype(np.float64)


class ScopeCheck:
    """The card's ``scope`` section, loaded once per model."""

    def __init__(self, section: dict):
        self.section = section
        self.layout = {name: int(width) for name, width in section["outputs"].items()}
        self.blocks = {name: Block(decode(b["mean"]), decode(b["projection"]), float(b["residual_scale"]))
                       for name, b in section["blocks"].items()}
        distance = section["distance"]
        self.distance_scale = np.array(distance["scale"], dtype=np.float64)
        self.distance_cutoff = float(distance["cutoff"])
        lda = section["discriminant"]
        self.classes = list(lda["classes"])
        self.input_mean, self.input_scale = decode(lda["input_mean"]), decode(lda["input_scale"])
        self.weights, self.bias = decode(lda["weights"]), decode(lda["bias"])
        self.discriminant_cutoff = float(lda["cutoff"])
        self.adult_age = float(section.get("dicom", {}).get("adult_age_years", ADULT_AGE_YEARS))

    def decide(self, features: dict[str, np.ndarray]) -> Decision:
        distances, inputs = block_inputs(self.blocks, features)
        return self.decide_scores(float(np.max(distances / self.distance_scale)), inputs)

    def decide_scores(self, distance: float, inputs: np.ndarray) -> Decision:
        """From the distance score (the largest block distance over its typical value) and the
        discriminant's inputs. The score is the larger of the two over its cut-off: >= 1 is refused."""
        logits = self.weights @ ((inputs - self.input_mean) / self.input_scale) + self.bias
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        out_probability = 1.0 - float(probabilities[self.classes.index(IN_SCOPE)])
        score = max(distance / self.distance_cutoff, out_probability / self.discriminant_cutoff)
        if score < 1.0:
            return Decision(True, None, score)
        likeliest = max((c for c in self.classes if c != IN_SCOPE), key=lambda c: probabilities[self.classes.index(c)])
        named = out_probability >= self.discriminant_cutoff
        return Decision(False, REASONS[likeliest] if named else UNLIKE_TRAINING, score)


def dicom_decision(tags: dict, adult_age: float = ADULT_AGE_YEARS) -> Decision | None:
    """A refusal from what the DICOM header says, or None when it says nothing against the film."""
    part = str(tags.get("BodyPartExamined") or "").strip().upper()
    if part and part not in ("CHEST", "THORAX", "LUNG", "CHEST_TO_PELVIS"):
        return Decision(False, f"the DICOM header says the body part is {part.lower()}, not the chest", None, "dicom")
    view = str(tags.get("ViewPosition") or "").strip().upper()
    if view in ("LL", "RL", "LATERAL", "LAT", "LLD", "RLD"):
        return Decision(False, f"the DICOM header says this is a lateral view ({view}); "
                               "the model reads frontal films only", None, "dicom")
    age = age_in_years(tags.get("PatientAge"))
    if age is not None and age >= adult_age:
        return Decision(False, f"the DICOM header gives the patient's age as {age:g} years: "
                               "the model is for children's films", None, "dicom")
    return None


def age_in_years(value) -> float | None:
    """DICOM Age String ("004Y", "018M", "006W", "010D"; a bare number read as years) to years."""
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(value or ""), flags=re.IGNORECASE)
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2).upper() or "Y"
    return number / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[unit]
