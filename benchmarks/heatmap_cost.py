"""What a heatmap costs beside the inference, per kind of film, interleaved in one run.

    python benchmarks/heatmap_cost.py --films ../shared/data --out benchmarks/heatmap_cost

The films are ``peers.py``'s five kinds, made from the shared films (224 px training
JPEGs, 1024 px PNGs of the full-size films, noisy 12 MP phone-like photos of those, 2500 x 2000
16-bit scans, JPEG Baseline DICOM files). For each film, in turn, with one interpreter thread:

- ``Classifier.predict``: its interpreter call (``invoke``) and its end-to-end time;
- the batch overlay of ``--heatmap``: :func:`~pneumo_edge.edge.heatmap.overlay` and its legend
  (compose), then the JPEG (encode), as ``save_overlay`` does them, without the disk write;
- the web answer through the real Flask application (``create_app``): the server's own
  ``timings_ms`` of a default answer (the map for the page to draw) and of ``overlay=1`` (a
  server-composed JPEG too); "without" is the same answer's server time less its heatmap step;
  the JSON encoding of the ``heatmap`` field, which happens after the server's clock stops, is
  timed on its own and added to the default's cost.

The scope check is set to score out-of-scope films (the full-size films are adults'), so every
film has a map. Medians and interquartile ranges come from ``pneumo_edge.edge.bench.measure``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from peers import KINDS, keep_run, make_films  # beside this script

from pneumo_edge.edge.bench.measure import summarize
from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.heatmap import encode_jpeg, overlay, with_legend
from pneumo_edge.edge.web.app import ServeConfig, create_app

SCHEMA = "pneumo-heatmap-cost/1"
STEPS = ("invoke", "predict_total", "compose", "encode", "compose_and_encode", "web_server_default",
         "web_heatmap_default", "web_heatmap_json", "web_server_without", "web_server_overlay",
         "web_heatmap_overlay")


def batch_overlay(classifier: Classifier, data: bytes) -> tuple[dict[str, float], int]:
    """One prediction and its batch overlay, timed by step (ms); and the JPEG's size in bytes."""
    prediction = classifier.predict(data)
    t0 = time.perf_counter()
    image = with_legend(overlay(prediction.film.image, prediction.cam))
    t1 = time.perf_counter()
    jpeg = encode_jpeg(image)
    t2 = time.perf_counter()
    return {"invoke": prediction.timings_ms["invoke"], "predict_total": prediction.timings_ms["total"],
            "compose": (t1 - t0) * 1000, "encode": (t2 - t1) * 1000,
            "compose_and_encode": (t2 - t0) * 1000}, len(jpeg)


def web_answers(client, data: bytes) -> dict[str, float]:
    """A default answer and an ``overlay=1`` answer of the same film, timed by the server (ms)."""
    def post(query: str) -> dict:
        response = client.post("/api/predict" + query, data={"file": (io.BytesIO(data), "film")},
                               content_type="multipart/form-data")
        if response.status_code != 200:
            raise SystemExit(f"the server refused a film: {response.get_json()}")
        return response.get_json()

    default, with_overlay = post(""), post("?overlay=1")
    t0 = time.perf_counter()
    json.dumps(default["heatmap"])
    json_ms = (time.perf_counter() - t0) * 1000
    server, heat = default["timings_ms"]["server"], default["timings_ms"]["heatmap"]
    return {"web_server_default": server, "web_heatmap_default": heat, "web_heatmap_json": json_ms,
            "web_server_without": server - heat, "web_server_overlay": with_overlay["timings_ms"]["server"],
            "web_heatmap_overlay": with_overlay["timings_ms"]["heatmap"]}


def measure(films: dict[str, list[Path]], rounds: int) -> dict:
    options = Options(threads=1, allow_out_of_scope=True)
    classifier = Classifier(options)
    client = create_app(ServeConfig(classifier=options)).test_client()
    samples = {kind: {step: [] for step in STEPS} for kind in films}
    sizes = {kind: [] for kind in films}
    datas = {kind: [path.read_bytes() for path in paths] for kind, paths in films.items()}
    for _ in range(rounds):
        for kind in films:  # every kind in every round: a change of load falls on all alike
            for data in datas[kind]:
                batch, size = batch_overlay(classifier, data)
                for step, ms in {**batch, **web_answers(client, data)}.items():
                    samples[kind][step].append(ms)
                sizes[kind].append(size)
    return {"kinds": {kind: {"label": KINDS[kind], "films": len(films[kind]),
                             "overlay_jpeg_bytes_median": sorted(sizes[kind])[len(sizes[kind]) // 2],
                             **{step: summarize(values) for step, values in samples[kind].items()}}
                      for kind in films}}


def markdown(result: dict) -> str:
    def cell(kind: dict, step: str) -> str:
        s = kind[step]
        return f"{s['p50']:.2f} ({s['p25']:.2f}-{s['p75']:.2f})"

    lines = ["# Heatmap cost beside the inference", "", f"`{result['command']}`", "",
             f"{result['created']}; {result['machine']['cpu_model']}, {result['machine']['usable_cores']} usable "
             f"cores; {result['machine'].get('runtime', '')} {result['machine'].get('runtime_version', '')}; "
             f"load average before {result['settings']['load_average_before']}, after "
             f"{result['settings']['load_average_after']}; {result['settings']['rounds']} rounds over the films, "
             "one interpreter thread. Median ms per film (p25-p75).", "",
             "## Batch overlays (`pneumo predict/score --heatmap`)", "",
             "| film | invoke | predict end to end | compose (overlay + legend) | JPEG encode | compose + encode "
             "| overlay JPEG bytes |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for kind in result["kinds"].values():
        lines.append(f"| {kind['label']} | {cell(kind, 'invoke')} | {cell(kind, 'predict_total')} "
                     f"| {cell(kind, 'compose')} | {cell(kind, 'encode')} | {cell(kind, 'compose_and_encode')} "
                     f"| {kind['overlay_jpeg_bytes_median']:,} |")
    lines += ["", "## A web prediction's server time (`POST /api/predict`)", "",
              "Default: the class activation map and its colour tables for the page to draw. Without: the same "
              "answer's server time less its heatmap step. The heatmap field's JSON encoding happens after the "
              "server's clock stops and is timed apart. `overlay=1`: a server-composed JPEG as well.", "",
              "| film | server, without heatmap | server, default | heatmap step, default | its JSON encoding "
              "| default cost (step + JSON) | server, overlay=1 | heatmap step, overlay=1 |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind in result["kinds"].values():
        cost = kind["web_heatmap_default"]["p50"] + kind["web_heatmap_json"]["p50"]
        lines.append(f"| {kind['label']} | {cell(kind, 'web_server_without')} | {cell(kind, 'web_server_default')} "
                     f"| {cell(kind, 'web_heatmap_default')} | {cell(kind, 'web_heatmap_json')} | {cost:.2f} "
                     f"| {cell(kind, 'web_server_overlay')} | {cell(kind, 'web_heatmap_overlay')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", default="../shared/data", help="the shared data folder")
    parser.add_argument("--count", type=int, default=12, help="films of each kind (default 12)")
    parser.add_argument("--rounds", type=int, default=5, help="times each film is measured (default 5)")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(make_films(Path(args.films), Path(tmp), args.count), args.rounds)
    keep_run("benchmarks/heatmap_cost.py", ["--films", args.films, "--count", str(args.count), "--rounds",
                                            str(args.rounds)],
             out=args.out, schema=SCHEMA, runtime=Classifier(Options()).runtime,
             settings={"rounds": args.rounds, "count": args.count}, load_before=load_before, measured=measured,
             render=markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
