"""What the out-of-scope check costs beside the interpreter call, on a model with a scope section.

    python benchmarks/scope_cost.py MODEL.tflite --films ../shared/data/chest_xray/train --out benchmarks/scope_cost.md

Times, per film and as medians over repeats: one interpreter call (``Classifier.invoke``), and the
scope check after it (``feature_blocks`` + ``ScopeCheck.decide``: the thumbnail, the projections,
the discriminant). Goal: well under 1 ms beyond the invoke.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

from edge_goals import median_ms  # beside this script

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.films import read_film
from pneumo_edge.edge.preprocess import resize_grey, scale_pixels
from pneumo_edge.edge.scope import feature_blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--films", required=True, help="a folder of films (the first 20 found are used)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default=None, help="also write the figures to this Markdown file")
    args = parser.parse_args()
    classifier = Classifier(Options(model=args.model))
    if classifier.scope is None:
        raise SystemExit(f"{args.model}: its card has no scope section")
    paths = sorted(p for p in Path(args.films).rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))[:20]
    invoke, check = [], []
    for path in paths:
        pixels = resize_grey(read_film(path).image, classifier.spec)
        tensor = scale_pixels(pixels, classifier.spec)
        outputs = classifier.invoke(tensor)
        invoke.append(median_ms(lambda t=tensor: classifier.invoke(t), args.repeats))
        check.append(median_ms(lambda o=outputs, p=pixels: classifier.scope.decide(
            feature_blocks(o, p, classifier.scope.layout)), args.repeats))
    lines = [f"# Scope check cost: {Path(args.model).name}", "",
             f"`python benchmarks/scope_cost.py {args.model} --films {args.films} --repeats {args.repeats}`", "",
             f"{platform.machine()}, {platform.python_version()}, {classifier.runtime.name} "
             f"{classifier.runtime.version}; {len(paths)} films, median of {args.repeats} repeats each", "",
             "| step | median ms per film (median over films) | max over films |", "| --- | --- | --- |",
             f"| interpreter call | {statistics.median(invoke):.3f} | {max(invoke):.3f} |",
             f"| scope check after it | {statistics.median(check):.3f} | {max(check):.3f} |"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
