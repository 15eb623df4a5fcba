"""``pneumo predict FILE...``: one line per film for people, or JSON for programs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_model_arguments, options_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="films: JPEG, PNG, TIFF, BMP or DICOM")
    parser.add_argument("--json", action="store_true", help="one JSON object per film, on its own line")
    parser.add_argument("--heatmap", metavar="DIR", default=None, help="write a heatmap overlay PNG per film here")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .classifier import Classifier
    from .errors import FilmError
    from .heatmap import save_overlay

    classifier = Classifier(options_from(args))
    failures = 0
    for name in args.files:
        record = {"path": name}
        try:
            prediction = classifier.predict(name)
        except FilmError as exc:
            failures += 1
            record.update(error=str(exc), error_code=exc.code, model=classifier.id)
            print(json.dumps(record) if args.json else f"{name}: ERROR {exc.code}: {exc}",
                  file=sys.stdout if args.json else sys.stderr, flush=True)
            continue
        record.update(prediction.as_dict(), backend=classifier.backend)
        if args.heatmap and prediction.cam is not None:
            record["heatmap"] = str(save_overlay(prediction.film.image, prediction.cam, Path(args.heatmap),
                                                 Path(name).name))
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print(f"{name}: {prediction.label} p={prediction.probability:.3f} (threshold "
                  f"{prediction.threshold:.3f}) model {prediction.model} {prediction.timings_ms['total']:.0f} ms"
                  + (f" heatmap {record['heatmap']}" if "heatmap" in record else ""), flush=True)
    return 1 if failures else 0
