"""Memory of ``pneumo score --workers N``: the parent's and each worker's resident set, from /proc.

    python benchmarks/score_memory.py --films ../shared/data/chest_xray/train --count 400 --workers 2 \\
        --label after --out benchmarks/score_memory

Links ``--count`` films into a temporary folder, runs the real command on them in a fresh
process, and samples ``VmRSS`` of the parent and of its worker processes every 10 ms while the
workers score (``VmHWM``, the peak, is read too). Each run is appended to ``OUT.json`` under
``--label`` with the commit it ran on, and ``OUT.md`` is rewritten from all runs kept there, so a
"before" and an "after" run sit side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIB = 1024


def status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/PID/status`` field in KiB (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def measure(films: list[Path], workers: int | None) -> dict:
    """One run of ``pneumo score`` on ``films``; the parent's and workers' RSS while workers ran."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "films"
        folder.mkdir()
        for film in films:
            (folder / film.name).symlink_to(film)
        command = [str(Path(sys.executable).parent / "pneumo"), "score", str(folder), "--out", f"{tmp}/r.csv"]
        command += ["--workers", str(workers)] if workers else []
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        parent, worker_rss, worker_peak, seen = [], {}, {}, set()
        while process.poll() is None:
            kids = [pid for pid in children(process.pid) if is_worker(pid)]
            if kids:
                rss = status_kib(process.pid, "VmRSS")
                parent.append(rss) if rss else None
            for pid in kids:
                seen.add(pid)
                rss, peak = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
                if rss:
                    worker_rss[pid] = max(worker_rss.get(pid, 0), rss)
                    worker_peak[pid] = max(worker_peak.get(pid, 0), peak or 0)
            time.sleep(0.01)
        err = process.stderr.read()
        elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"pneumo score failed ({process.returncode}):\n{err}")
    said = [line for line in err.splitlines() if "worker(s)" in line or line.startswith("scored ")]
    return {"films": len(films), "workers_seen": len(seen), "seconds": round(elapsed, 2),
            "parent_rss_mib_median": round(statistics.median(parent) / KIB, 1) if parent else None,
            "parent_rss_mib_max": round(max(parent) / KIB, 1) if parent else None,
            "parent_samples": len(parent),
            "worker_rss_mib_max": [round(v / KIB, 1) for v in worker_rss.values()],
            "worker_hwm_mib": [round(v / KIB, 1) for v in worker_peak.values()],
            "said": said}


#: What the parent of a pool still holds, stage by stage: a fresh interpreter importing each in turn.
IMPORT_STAGES = {"python alone": "pass", "+ numpy": "import numpy", "+ Pillow": "import PIL.Image",
                 "+ the modules the parent of pneumo score imports": "from pneumo_edge.edge.commands import "
                 "score, score_pool, score_row, score_walk, results_file, progress; "
                 "from pneumo_edge.edge import model_info"}


def imports_rss() -> dict[str, float]:
    """VmRSS (MiB) of a fresh interpreter after each of IMPORT_STAGES, cumulatively."""
    done, out = [], {}
    for name, statement in IMPORT_STAGES.items():
        done.append(statement)
        code = "; ".join(done) + "; print(open('/proc/self/status').read())"
        status = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        out[name] = round(int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
                          / KIB, 1)
    return out


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def markdown(runs: list[dict]) -> str:
    lines = ["# `pneumo score --workers N`: parent and worker memory", "",
             "Resident set (VmRSS from /proc, sampled every 10 ms while the workers ran) of the parent process "
             "and the largest of each worker; VmHWM is the worker's peak. One row per kept run; each was made by "
             "the command in its row. The seconds vary with the machine's load (this machine's 2 cores are shared with "
             "a training run); the memory does not.", "",
             "| run | commit | workers | films | s | parent RSS MiB (median) | parent RSS MiB (max) "
             "| worker RSS MiB (max) | worker VmHWM MiB | command |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        lines.append(f"| {run['label']} | {run['commit']} | {run['workers'] or 'default'} "
                     f"({run['workers_seen']} seen) | {run['films']} | {run['seconds']} "
                     f"| {run['parent_rss_mib_median']} | {run['parent_rss_mib_max']} "
                     f"| {', '.join(map(str, run['worker_rss_mib_max']))} "
                     f"| {', '.join(map(str, run['worker_hwm_mib']))} | `{run['command']}` |")
    latest = runs[-1].get("imports_rss_mib")
    if latest:
        lines += ["", "What a parent without an interpreter still holds (VmRSS MiB of a fresh interpreter, "
                  "importing in turn, at the latest run):", ""]
        lines += [f"- {name}: {mib}" for name, mib in latest.items()]
    lines += ["", "What each run's command said:", ""]
    lines += [f"- {run['label']}: " + " / ".join(run["said"]) for run in runs]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--films", required=True, help="a folder of films (searched recursively)")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--workers", type=int, default=None, help="default: the command's own default")
    parser.add_argument("--label", required=True, help="the run's name in the table (before, after)")
    parser.add_argument("--out", required=True, help="OUT.json keeps every run; OUT.md is written from them")
    args = parser.parse_args()
    films = sorted(p.resolve() for p in Path(args.films).rglob("*.jpeg"))[: args.count]
    run = {"label": args.label, "commit": commit(), "workers": args.workers, **measure(films, args.workers),
           "command": "python " + shlex.join([os.path.relpath(__file__), *sys.argv[1:]]),
           "imports_rss_mib": imports_rss()}
    out = Path(args.out)
    kept = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else []
    kept = [r for r in kept if r["label"] != args.label] + [run]
    out.with_suffix(".json").write_text(json.dumps(kept, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(kept))
    print(markdown(kept))


if __name__ == "__main__":
    main()
