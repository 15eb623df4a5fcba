"""``pneumo predict FILE...``: one line per film for people, or JSON for programs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_model_arguments, options_from

HELP = "score one or more films"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="films: JPEG, PNG, TIFF, BMP or DICOM")
    parser.add_argument("--json", action="store_true", help="one JSON object per film, on its own line")
    parser.add_argument("--heatmap", metavar="DIR", default=None,
                        help="write a heatmap overlay JPEG (with its legend) per film here")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..classifier import Classifier
    from ..errors import FilmError
    from ..heatmap import require_heatmap, save_overlay

    classifier = Classifier(options_from(args))
    if args.heatmap:
        require_heatmap(classifier)
    failures = 0
    for name in args.files:
        record = {"path": name}
        try:
            prediction = classifier.predict(name)
        except FilmError as exc:
            failures += 1
            print_error(name, record, exc, classifier=classifier, as_json=args.json)
            continue
        record.update(prediction.as_dict(), backend=classifier.backend)
        if args.heatmap and prediction.cam is not None:
            record["heatmap"] = str(save_overlay(prediction.film.image, prediction.cam, Path(args.heatmap),
                                                 name=Path(name).name))
        print_result(name, record, prediction, as_json=args.json)
    return 1 if failures else 0


def print_result(name: str, record: dict, prediction, *, as_json: bool) -> None:
    """One film's answer: a JSON line, or a line for people (with any files written for it)."""
    if as_json:
        print(json.dumps(record), flush=True)
        return
    marked = "" if prediction.scope.in_scope else f" [OUT OF SCOPE: {prediction.scope.reason}]"
    print(f"{name}: {prediction.label} p={prediction.probability:.3f} (threshold "
          f"{prediction.threshold:.3f} from {prediction.threshold_source}){marked} model {prediction.model} "
          f"{prediction.timings_ms['total']:.0f} ms"
          + "".join(f" {key} {record[key]}" for key in ("heatmap", "saved") if key in record), flush=True)


def print_error(name: str, record: dict, error, *, classifier, as_json: bool) -> None:
    """A film that could not be scored: a JSON line on stdout, or a line on stderr."""
    record.update(error=str(error), error_code=error.code, model=classifier.id)
    if as_json:
        print(json.dumps(record), flush=True)
    else:
        print(f"{name}: ERROR {error.code}: {error}" + (f" saved {record['saved']}" if "saved" in record else ""),
              file=sys.stderr, flush=True)
