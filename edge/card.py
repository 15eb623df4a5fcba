"""The model card: a JSON sidecar that carries a model's input contract.

``model.tflite`` has its card at ``model.card.json``. The device reads from it the
preprocessing, labels, threshold and output layout, and refuses a model whose
sha256 does not match the card (a half-copied or swapped file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ModelError
from .preprocess import PreprocessSpec

CARD_SUFFIX = ".card.json"

INTENDED_USE = (
    "A screening aid that flags frontal chest X-ray films of children aged one to five "
    "for pneumonia, for review by a clinician. It is not a diagnosis."
)
LIMITATIONS = [
    "Trained only on pediatric (ages one to five) frontal (AP/PA) chest films from one "
    "hospital (Kermany et al., 2018); it has not been shown to work on adult films, "
    "lateral views, or other populations, scanners or film photographs.",
    "Two classes only (NORMAL, PNEUMONIA): other findings (effusion, mass, tuberculosis, "
    "devices) are not detected and may be scored either way.",
    "The operating threshold was chosen on a validation split for high sensitivity, so "
    "false positives are expected; a negative result does not rule pneumonia out.",
]


def card_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name[: -len(model_path.suffix)] + CARD_SUFFIX)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(model_path: str | Path, verify: bool = True) -> dict:
    """Load the card beside ``model_path``; with ``verify``, check the model's sha256."""
    path = card_path(model_path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no model card at {path}; every model needs its card "
                         "(pneumo convert writes it)", code="no_card") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"model card {path} is not valid JSON: {exc}", code="bad_card") from None
    for key in ("sha256", "preprocess", "labels", "threshold"):
        if key not in card:
            raise ModelError(f"model card {path} lacks {key!r}", code="bad_card")
    if verify:
        actual = sha256_file(model_path)
        if actual != card["sha256"]:
            raise ModelError(f"{Path(model_path).name}: sha256 {actual[:12]}... does not match its card "
                             f"({card['sha256'][:12]}...); the file is damaged or is not the model "
                             "the card describes", code="sha256_mismatch")
    return card


def write_card(model_path: str | Path, card: dict) -> Path:
    """Write ``card`` beside the model, filling in the file's sha256 and size."""
    model_path = Path(model_path)
    card = {"file": model_path.name, "sha256": sha256_file(model_path),
            "size_bytes": model_path.stat().st_size, **{k: v for k, v in card.items()
                                                        if k not in ("file", "sha256", "size_bytes")}}
    card.setdefault("intended_use", INTENDED_USE)
    card.setdefault("limitations", LIMITATIONS)
    path = card_path(model_path)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return path


def preprocess_spec(card: dict) -> PreprocessSpec:
    return PreprocessSpec.from_dict(card["preprocess"])


def model_id(card: dict) -> str:
    """Short identity for result rows: name, variant and the first hex of the sha256."""
    return f"{card.get('name', 'model')}-{card.get('variant', '?')}@{card['sha256'][:8]}"
