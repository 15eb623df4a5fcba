"""``pneumo score --engine ray`` against ``--engine local --workers 2`` on the same full-size films.

    python benchmarks/ray_engine.py --films ../shared/data/fullres --count 1000 --rounds 3 --out benchmarks/ray_engine

Makes ``--count`` films in a temporary folder by copying the full-size PNGs round-robin
(never into the repository), then runs each engine as the user would, a fresh ``pneumo
score`` process into a new CSV, taking turns round by round. Per run, from outside the
process: wall time; time to the first row; the steady rate, from when the results file holds
a tenth of the rows to the last (a poll of its line count every 50 ms); Ray's start-up, from its own
``Ray ...: started on this machine in X s`` line; and peak memory of the whole process tree
(the driver, Ray's GCS, raylet, agents and actor workers), sampled from /proc every 0.2 s as
the sum of RSS (shared pages, such as Ray's object store, counted in every process mapping
them) and the sum of PSS (shared pages divided among them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PNEUMO = [sys.executable, "-m", "pneumo_edge.edge.cli", "score"]
ENGINES = {"local --workers 2": ["--engine", "local", "--workers", "2"], "ray": ["--engine", "ray"]}


def make_films(source: Path, folder: Path, count: int) -> list[Path]:
    originals = sorted(p for p in source.iterdir() if p.suffix.lower() == ".png")
    if not originals:
        raise SystemExit(f"no PNG films in {source}")
    folder.mkdir(parents=True)
    for i in range(count):
        shutil.copyfile(originals[i % len(originals)], folder / f"{i:05d}_{originals[i % len(originals)].name}")
    return originals


def tree(root: int) -> list[int]:
    """``root`` and every process descended from it, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) once it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", rollup, re.M))
    return int(values.get("Rss", 0)), int(values.get("Pss", 0))


def run(engine: str, films: Path, out: Path, count: int) -> dict:
    command = PNEUMO + [str(films), "--out", str(out), *ENGINES[engine]]
    log = out.with_suffix(".log")  # a file, not a pipe: the closing summary names every unscored film
    started = time.monotonic()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle)
    peak = {"rss_kb": 0, "pss_kb": 0, "driver_rss_kb": 0, "processes": 0}
    rows: list[tuple[float, int]] = []
    done = threading.Event()

    def sample_memory() -> None:
        while not done.is_set():
            pids = tree(process.pid)
            sizes = [memory_kb(pid) for pid in pids]
            peak["rss_kb"] = max(peak["rss_kb"], sum(s[0] for s in sizes))
            peak["pss_kb"] = max(peak["pss_kb"], sum(s[1] for s in sizes))
            peak["driver_rss_kb"] = max(peak["driver_rss_kb"], memory_kb(process.pid)[0])
            peak["processes"] = max(peak["processes"], len(pids))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    while process.poll() is None:
        if out.exists():
            lines = out.read_bytes().count(b"\n") - 1
            if lines > 0 and (not rows or lines != rows[-1][1]):
                rows.append((time.monotonic(), lines))
        time.sleep(0.05)
    ended = time.monotonic()
    done.set()
    sampler.join()
    err = log.read_text()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{err}")
    written = out.read_bytes().count(b"\n") - 1
    if written != count:
        raise SystemExit(f"{engine}: {written} rows for {count} films")
    rows.append((ended, written))
    first_at = rows[0][0]
    # steady: from the first poll with a tenth of the rows written to the end, past start-up and ramp-up
    # (the ray engine's rows arrive a block of 32 at a time, so its first block says little)
    steady_at, steady_rows = next((t, n) for t, n in rows if n >= count / 10)
    startup = re.search(r"started on this machine in ([\d.]+) s", err)
    return {"engine": engine, "command": " ".join(command), "wall_s": round(ended - started, 2),
            "films_per_s_wall": round(count / (ended - started), 1),
            "first_row_after_s": round(first_at - started, 2),
            "films_per_s_steady": round((written - steady_rows) / max(ended - steady_at, 1e-9), 1),
            "ray_startup_s": float(startup[1]) if startup else None,
            "peak_rss_mb": round(peak["rss_kb"] / 1024), "peak_pss_mb": round(peak["pss_kb"] / 1024),
            "peak_driver_rss_mb": round(peak["driver_rss_kb"] / 1024), "peak_processes": peak["processes"],
            "summary": next((line for line in err.splitlines() if line.startswith("scored ")), "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--films", required=True, help="folder of full-size PNG films to copy round-robin")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each engine, taking turns")
    parser.add_argument("--out", required=True, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pneumo-ray-bench-") as temp:
        films = Path(temp) / "films"
        originals = make_films(Path(args.films), films, args.count)
        runs = []
        for round_ in range(args.rounds):
            for engine in ENGINES:
                result = run(engine, films, Path(temp) / f"{engine.split()[0]}-{round_}.csv", args.count)
                print(json.dumps(result), flush=True)
                runs.append(result)
    report = {"measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": "python benchmarks/ray_engine.py " + " ".join(sys.argv[1:]),
              "films": {"count": args.count, "copied_from": [p.name for p in originals]},
              "machine": {"cpus": os.cpu_count(), "processor": _processor(), "python": platform.python_version(),
                          "load_before": [round(x, 2) for x in load_before],
                          "load_after": [round(x, 2) for x in os.getloadavg()]},
              "versions": _versions(), "runs": runs}
    Path(args.out + ".json").write_text(json.dumps(report, indent=2) + "\n")
    Path(args.out + ".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    def median(engine: str, key: str) -> float:
        return statistics.median(r[key] for r in report["runs"] if r["engine"] == engine)

    machine, cpus = report["machine"], report["machine"]["cpus"]
    lines = ["# `pneumo score --engine ray` against `--engine local --workers 2`", "",
             f"Measured {report['measured']} with:", "", "```", report["command"], "```", "",
             f"{report['films']['count']} full-size films: copies of the {len(report['films']['copied_from'])} PNGs "
             f"of `fullres`, round-robin. {machine['processor']}, {cpus} cores, Python {machine['python']}; "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
             + f". Load average (1, 5, 15 min) before {machine['load_before']}, after {machine['load_after']}.", "",
             "Each run is a fresh `pneumo score` process into a new CSV; the engines take turns.", "",
             "| run | engine | wall s | films/s (wall) | first row after s | films/s (steady) | Ray start-up s "
             "| peak RSS MB (tree) | peak PSS MB (tree) | driver peak RSS MB | processes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, r in enumerate(report["runs"]):
        lines.append(f"| {i + 1} | {r['engine']} | {r['wall_s']} | {r['films_per_s_wall']} | {r['first_row_after_s']} "
                     f"| {r['films_per_s_steady']} | {r['ray_startup_s'] if r['ray_startup_s'] is not None else '-'} "
                     f"| {r['peak_rss_mb']} | {r['peak_pss_mb']} | {r['peak_driver_rss_mb']} | {r['peak_processes']} |")
    lines += ["", "Medians over the rounds:", ""]
    for engine in ENGINES:
        lines.append(f"- {engine}: {median(engine, 'films_per_s_steady')} films/s steady "
                     f"({median(engine, 'films_per_s_steady') / cpus:.1f} per core), "
                     f"{median(engine, 'films_per_s_wall')} films/s wall, first row after "
                     f"{median(engine, 'first_row_after_s')} s, peak PSS {median(engine, 'peak_pss_mb')} MB")
    lines += ["", "Steady: from a tenth of the rows in the results file to the last. Wall: the whole command, "
              "model load and (ray) Ray's start-up and actor start included. RSS counts shared pages in every "
              "process that maps them; PSS divides them.", ""]
    return "\n".join(lines)


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _versions() -> dict:
    from importlib import metadata

    found = {}
    for name in ("pneumo-edge", "ray", "pyarrow", "ai-edge-litert", "numpy", "Pillow"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


if __name__ == "__main__":
    main()
