"""``pneumo capture``: photograph a film with the Raspberry Pi camera and score it.

Prints the same line per film as ``pneumo predict`` (or JSON with ``--json``).
``--save DIR`` keeps each frame as a PNG, also the ones the quality gate
refuses; ``pneumo predict`` on a saved frame gives the same answer.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from .options import add_model_arguments, options_from


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


HELP = "capture a film with the Raspberry Pi camera and score it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", default="picamera2",
                        help="picamera2 (camera 0), picamera2:N, or replay:DIR to replay the films in DIR "
                             "in name order (tests, demos)")
    parser.add_argument("--count", type=_positive, default=1, help="how many films to capture and score (default 1)")
    parser.add_argument("--save", metavar="DIR", default=None, help="save each captured frame here as PNG")
    parser.add_argument("--heatmap", metavar="DIR", default=None,
                        help="write a heatmap overlay JPEG (with its legend) per film here")
    parser.add_argument("--json", action="store_true", help="one JSON object per film, on its own line")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..classifier import Classifier
    from ..films.camera import open_camera
    from ..heatmap import require_heatmap

    failures = 0
    with open_camera(args.camera) as camera:  # first: a missing camera is found before the model loads
        classifier = Classifier(options_from(args))
        if args.heatmap:
            require_heatmap(classifier)
        for index in range(1, args.count + 1):
            failures += not _capture_one(camera, classifier, index, args=args)
    return 1 if failures else 0


def _capture_one(camera, classifier, index: int, *, args: argparse.Namespace) -> bool:
    """Capture, score and report one film; False when it could not be scored."""
    from ..errors import FilmError
    from ..films.camera import film_from_frame
    from ..heatmap import save_overlay
    from .predict import print_error, print_result

    started = time.perf_counter()
    frame = camera.capture()
    name = f"capture-{datetime.now():%Y%m%d-%H%M%S-%f}-{index}"
    capture_ms = (time.perf_counter() - started) * 1000
    record = {"capture": name}
    try:
        film = film_from_frame(frame)
        prediction = classifier.predict_film(film)
    except FilmError as exc:
        prediction, error = None, exc
    total_ms = (time.perf_counter() - started) * 1000
    if args.save:  # after timing: a 12 MP PNG takes longer to write than to score
        folder = Path(args.save)
        folder.mkdir(parents=True, exist_ok=True)
        record["saved"] = str(folder / f"{name}.png")
        frame.save(record["saved"], format="PNG")
    if prediction is None:
        print_error(name, record, error, classifier=classifier, as_json=args.json)
        return False
    prediction.timings_ms = {"capture": capture_ms, **prediction.timings_ms, "total": total_ms}
    record.update(prediction.as_dict(), backend=classifier.backend)
    if args.heatmap and prediction.cam is not None:
        record["heatmap"] = str(save_overlay(film.image, prediction.cam, Path(args.heatmap), name=name))
    print_result(name, record, prediction, as_json=args.json)
    return True
