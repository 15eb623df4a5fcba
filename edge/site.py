"""Site calibration: a clinic's own operating threshold for one model, kept in a small JSON file.

Screening programmes set the operating point per site from a labelled local sample,
because films from another hospital, scanner or population score differently from the
validation split the model card's threshold was chosen on. ``pneumo calibrate`` writes
the file (:func:`calibration`, :func:`write_site`); ``predict``, ``score``, ``serve`` and
``capture`` load it with ``--site`` or ``PNEUMO_SITE`` (:func:`load_site`), and the
:class:`~.classifier.Classifier` then decides with its threshold instead of the card's.

A site file belongs to one model: its int8 file, identified by sha256. The Edge TPU
build of that model is the same model (its card names the int8 file it was compiled
from), so a site file made on the CPU also serves the Edge TPU, and the other way round.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .card import model_id
from .errors import DataError

SITE_ENV = "PNEUMO_SITE"
KIND = "pneumo-site-calibration"
FORMAT_VERSION = 1
#: Below this many films of a class, the 95% interval of its rate is too wide to set
#: an operating point on (with 50 films and 48 found, sensitivity's interval is 0.87-0.99).
MIN_PER_CLASS = 50
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Site:
    """A loaded site file: where it came from, and the threshold it sets."""

    path: Path
    threshold: float
    record: dict

    def describe(self) -> dict:
        """What a page or a health check shows about the threshold in force."""
        sample = self.record["sample"]
        at = self.record["at_threshold"]
        return {"path": str(self.path), "created": self.record["created"],
                "target_sensitivity": self.record["target_sensitivity"],
                "films": sample["NORMAL"] + sample["PNEUMONIA"],
                "sensitivity": at["sensitivity"], "specificity": at["specificity"]}


def threshold_source(site: Site | None) -> str:
    """Where the threshold in force came from, in words."""
    return f"site file {site.path}" if site else "model card"


def model_lineage(card: dict) -> str:
    """The sha256 of the model a card belongs to: its own, or for an Edge TPU build the int8 file's."""
    return (card.get("compiled_from") or {}).get("sha256") or card["sha256"]


def wilson_interval(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; sound near 0 and 1, where the normal interval is not."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At 0 or n successes the bound is exactly 0 or 1; rounding would put it just inside.
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def _rates(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    from .labelled.metrics import confusion

    counts = confusion(y, scores, threshold)
    tp, fn, tn, fp = counts["tp"], counts["fn"], counts["tn"], counts["fp"]
    return {"threshold": threshold,
            "sensitivity": tp / (tp + fn), "sensitivity_ci95": list(wilson_interval(tp, tp + fn)),
            "specificity": tn / (tn + fp), "specificity_ci95": list(wilson_interval(tn, tn + fp)),
            **counts}


def calibration(y, scores, target: float, *, card: dict, refused: list[tuple[str, str]]) -> dict:
    """The site record for scored films ``y`` (0 NORMAL, 1 PNEUMONIA) and their ``scores``.

    The threshold is the highest that finds at least ``target`` of this sample's
    pneumonia films, so specificity is as high as it can be there.
    """
    from .labelled.metrics import bootstrap_auc_ci, roc_auc, threshold_for_sensitivity

    y, scores = np.asarray(y, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    counts = {"NORMAL": int((y == 0).sum()), "PNEUMONIA": int((y == 1).sum())}
    if not 0 < target <= 1:
        raise DataError(f"the target sensitivity must be above 0 and at most 1, not {target}", code="bad_target")
    missing = [label for label, n in counts.items() if n == 0]
    if missing:
        raise DataError(f"the scored sample has no {' or '.join(missing)} films ({counts['NORMAL']} NORMAL, "
                          f"{counts['PNEUMONIA']} PNEUMONIA scored); calibration needs films of both classes",
                          code="one_class")
    threshold = threshold_for_sensitivity(y, scores, target)
    reasons: dict[str, int] = {}
    for _, error in refused:
        code = error.split(":", 1)[0]
        reasons[code] = reasons.get(code, 0) + 1
    record = {"kind": KIND, "format": FORMAT_VERSION, "model": model_id(card), "model_sha256": model_lineage(card),
              "model_file": card.get("file"), "threshold": threshold, "target_sensitivity": target,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "sample": {**counts, "refused": len(refused), "refused_reasons": reasons,
                         "refused_films": [{"path": path, "error": error} for path, error in refused]},
              "at_threshold": _rates(y, scores, threshold),
              "roc_auc": roc_auc(y, scores), "roc_auc_ci95": list(bootstrap_auc_ci(y, scores)),
              "at_card_threshold": _rates(y, scores, float(card["threshold"])),
              "pneumo_edge": __version__}
    record["warnings"] = small_sample_warnings(record)
    return record


def small_sample_warnings(record: dict) -> list[str]:
    """One sentence per class with too few films for its rate's 95% interval to be useful."""
    at = record["at_threshold"]
    warnings = []
    for label, rate in (("PNEUMONIA", "sensitivity"), ("NORMAL", "specificity")):
        n = record["sample"][label]
        if n < MIN_PER_CLASS:
            low, high = at[f"{rate}_ci95"]
            warnings.append(f"only {n} {label} films: {rate} {at[rate]:.3f} has a 95% interval of "
                            f"{low:.3f}-{high:.3f}; a site sample needs at least {MIN_PER_CLASS} films of each class")
    return warnings


def write_site(path: str | Path, record: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_site(path: str | Path, card: dict) -> Site:
    """Read a site file and check that it was made for the model described by ``card``."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"no site file at {path}", code="no_site") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"site file {path} cannot be read as JSON: {exc}", code="bad_site") from None
    if not isinstance(record, dict) or record.get("kind") != KIND:
        raise DataError(f"{path} is not a site file (pneumo calibrate writes them)", code="bad_site")
    threshold = record.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise DataError(f"site file {path} has no threshold between 0 and 1", code="bad_site")
    if record.get("model_sha256") != model_lineage(card):
        raise DataError(f"site file {path} was calibrated for model {record.get('model')}, not {model_id(card)} "
                          "(the model in use); calibrate this model with pneumo calibrate, or load the model "
                          "the site file names", code="site_mismatch")
    return Site(path, float(threshold), record)


def site_path(args) -> str | None:
    """The site file a command was given: ``--site``, else ``PNEUMO_SITE``; None for commands without ``--site``."""
    if "site" not in args:
        return None
    return args.site or os.environ.get(SITE_ENV) or None
