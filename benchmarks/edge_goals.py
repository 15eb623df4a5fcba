"""Measure the edge runtime's speed and memory goals (issue 4) and print the figures.

    python benchmarks/edge_goals.py --films ../shared/data --out benchmarks/edge_goals.md

Goals: process start to first answer < 1 s; end to end for a full-size film <= 1.25 x
(decode + one interpreter call); a 12 MP JPEG decoded and preprocessed >= 10 x faster than a
full decode, RGB conversion and resize; --workers 2 >= 1.7 x the throughput of one; peak
resident memory of predict < 150 MB. Timings are medians over repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.films import read_film
from pneumo_edge.edge.preprocess import to_tensor


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def cold_start(film: Path, repeats: int) -> tuple[float, float]:
    """Median wall time of `pneumo predict FILM` in a fresh process, and the largest peak RSS (MB)."""
    times, rss = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-m", "pneumo_edge.edge.cli", "predict", "--allow-out-of-scope", str(film)],
                       check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
        rss.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return statistics.median(times), max(rss)


def score_rate(folder: Path, workers: int, out: Path) -> float:
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pneumo_edge.edge.cli", "score", str(folder), "--out", str(out),
                    "--workers", str(workers)], check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    return sum(1 for _ in open(out)) - 1, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", default="../shared/data", help="the shared data folder")
    parser.add_argument("--out", default=None, help="write the results as Markdown here")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    data = Path(args.films)
    fullres = sorted((data / "fullres").glob("*.png"))
    film = fullres[0]
    classifier = Classifier(Options(allow_out_of_scope=True))  # adult films: timed, scope check included
    rows = []

    start_ms, peak_mb = cold_start(film, max(3, args.repeats // 3))
    rows.append(("process start to first answer (pneumo predict, full-size PNG)", f"{start_ms:.0f} ms", "< 1000 ms",
                 start_ms < 1000))
    rows.append(("peak resident memory of pneumo predict", f"{peak_mb:.0f} MB", "< 150 MB", peak_mb < 150))

    tensor = to_tensor(read_film(film, classifier.spec.size).image, classifier.spec)
    decode = median_ms(lambda: read_film(film, classifier.spec.size), args.repeats)
    invoke = median_ms(lambda: classifier.invoke(tensor), args.repeats)
    e2e = median_ms(lambda: classifier.predict(film), args.repeats)
    ratio = e2e / (decode + invoke)
    rows.append(("end to end, 1024 px PNG / (decode + one invoke)",
                 f"{e2e:.1f} / ({decode:.1f} + {invoke:.1f}) ms = {ratio:.2f}", "<= 1.25", ratio <= 1.25))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "phone_12mp.jpeg"
        Image.open(film).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=90)
        side = classifier.spec.size

        def usual():
            array = np.asarray(Image.open(big).convert("RGB").resize((side, side)), dtype=np.float32)
            return array / 255.0

        fast = median_ms(lambda: to_tensor(read_film(big, side).image, classifier.spec), args.repeats)
        slow = median_ms(usual, max(3, args.repeats // 3))
        rows.append(("12 MP JPEG: usual decode+RGB+resize / ours (draft decode + preprocess)",
                     f"{slow:.0f} / {fast:.1f} ms = {slow / fast:.1f} x", ">= 10 x", slow / fast >= 10))

        folder = tmp / "batch"
        folder.mkdir()
        # Enough films that start-up (the parent's and its workers' imports and model loads, about
        # 0.7 s) is amortised, as it is overnight: at 720 films, once one worker scored 72 films/s,
        # start-up held two workers to 1.61x one; at 2,160, three runs gave 1.64x to 1.72x.
        for i in range(90):
            for path in fullres:
                shutil.copy(path, folder / f"{i}_{path.name}")
        n1, t1 = score_rate(folder, 1, tmp / "w1.csv")
        n2, t2 = score_rate(folder, 2, tmp / "w2.csv")
        gain = (n2 / t2) / (n1 / t1)
        rows.append((f"pneumo score, {n1} full-size films: --workers 2 / --workers 1 throughput",
                     f"{n2 / t2:.1f} / {n1 / t1:.1f} films/s = {gain:.2f} x", ">= 1.7 x", gain >= 1.7))

    lines = [f"# Edge runtime goals on {platform.node() or 'this machine'}", "",
             f"`python benchmarks/edge_goals.py --films {args.films}{' --out ' + args.out if args.out else ''}`"
             f" ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
             f"{platform.platform()}; {classifier.runtime.name} {classifier.runtime.version}; "
             f"model {classifier.id})", "",
             "| measure | figure | goal | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {figure} | {goal} | {'yes' if met else 'NO'} |" for name, figure, goal, met in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
