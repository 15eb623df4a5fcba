"""``pneumo calibrate DIR --out site.json``: set this clinic's threshold from a labelled local sample.

Scores the films through the same classifier as ``pneumo predict`` (same options,
same quality gate), picks the highest threshold that reaches the target sensitivity
on them, and writes the site file that ``--site`` / ``PNEUMO_SITE`` load (edge/site.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_model_arguments, options_from

HELP = "set a site's threshold from its own labelled films (a site file for --site)"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be above 0 and at most 1, e.g. 0.95")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DIR",
                        help="labelled films: a folder with NORMAL and PNEUMONIA sub-folders (any case), "
                             "or a CSV of path,label rows")
    parser.add_argument("--target-sensitivity", type=_fraction, default=0.95,
                        help="share of this sample's pneumonia films the threshold must flag (default 0.95)")
    parser.add_argument("--out", required=True, help="the site file to write, e.g. site.json")
    add_model_arguments(parser, site=False)


def run(args: argparse.Namespace) -> int:
    from ..classifier import Classifier
    from ..labelled.scoring import score_labelled
    from ..site import calibration, write_site

    films = labelled_sample(args.data)
    classifier = Classifier(options_from(args))
    print(f"pneumo calibrate: scoring {len(films)} films with {classifier.id} on {classifier.backend}",
          file=sys.stderr, flush=True)
    y, scores, refused = score_labelled(classifier, films)
    record = calibration(y, scores, args.target_sensitivity, card=classifier.card, refused=refused)
    record["sample"]["source"] = str(args.data)
    record["scored_with"] = {"backend": classifier.backend, "runtime": classifier.runtime.name,
                             "runtime_version": classifier.runtime.version, "kernels": classifier.options.kernels,
                             "quality_gate": classifier.options.quality_gate,
                             "allow_out_of_scope": classifier.options.allow_out_of_scope}
    path = write_site(args.out, record)
    print(report(record, path))
    for warning in record["warnings"]:
        print(f"pneumo calibrate: WARNING: {warning}", file=sys.stderr)
    return 0


def labelled_sample(source: str | Path) -> list:
    """The labelled films to calibrate on; a one-line error for a folder or CSV that holds one class or none."""
    from ..errors import DataError
    from ..labelled.listing import LABELS, list_films

    films = list_films(source)  # DataError: no such folder, no class folders, a bad CSV
    counts = [sum(f.label == i for f in films) for i in range(len(LABELS))]
    if not all(counts):
        raise DataError(f"{source} holds {counts[0]} NORMAL and {counts[1]} PNEUMONIA films; calibration needs "
                        "films of both classes", code="one_class" if any(counts) else "no_films")
    return films


def report(record: dict, path: Path) -> str:
    """What a person reads after calibrating: the threshold, and how it does on this sample."""
    sample, at, card = record["sample"], record["at_threshold"], record["at_card_threshold"]
    refused = ", ".join(f"{code} {n}" for code, n in sorted(sample["refused_reasons"].items()))

    def rates(block: dict) -> str:
        return (f"sensitivity {block['sensitivity']:.3f} ({block['sensitivity_ci95'][0]:.3f}-"
                f"{block['sensitivity_ci95'][1]:.3f}), specificity {block['specificity']:.3f} "
                f"({block['specificity_ci95'][0]:.3f}-{block['specificity_ci95'][1]:.3f})")

    return "\n".join([
        f"site file {path} for model {record['model']}",
        f"sample: {sample['NORMAL']} NORMAL, {sample['PNEUMONIA']} PNEUMONIA films scored; "
        f"{sample['refused']} refused" + (f" ({refused})" if refused else ""),
        f"ROC AUC {record['roc_auc']:.3f} ({record['roc_auc_ci95'][0]:.3f}-{record['roc_auc_ci95'][1]:.3f})",
        f"site threshold {at['threshold']:.4f} (target sensitivity {record['target_sensitivity']}): {rates(at)}",
        f"card threshold {card['threshold']:.4f}, on this sample: {rates(card)}",
        "95% intervals: Wilson for sensitivity and specificity, bootstrap for ROC AUC",
    ])
