"""Load the web server with concurrent film uploads on loopback, and report latency and errors.

    python benchmarks/load_web.py --films ../shared/data --out benchmarks/load_web.json

Starts ``pneumo serve`` on 127.0.0.1 (a free port; never any other address), then
``--clients`` threads each POST real films to /api/predict over a keep-alive
connection until ``--seconds`` have passed or ``--max-requests`` have been sent.
Films alternate between 1024 x 1024 PNGs (children's training films scaled up, as the tests'
hostile_films.fullsize_films makes them: the shared full-size films are adults', which the
default model refuses) and the 224 x 224 training JPEGs.
The server and the clients share the machine, as do any other jobs on it: the
machine's load average before and after is recorded beside the figures.
An error is any non-200 answer, a failed connection, or an answer whose
probability differs from the same model run in this process. Prints and writes
p50/p90/p99 latency, throughput and the error count, with the exact command.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.scope import OutOfScope

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the full-size children's films, shared with the tests
from hostile_films import fullsize_films  # noqa: E402

HOST = "127.0.0.1"  # loopback only, by design: this script must not load anyone else's server


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def pick_films(folder: Path, fullsize: Path, count: int) -> list[Path]:
    train = folder / "chest_xray" / "train"
    if not (train / "NORMAL").is_dir():
        raise SystemExit(f"no films under {folder} (expected chest_xray/train/*/*.jpeg)")
    large = sorted(fullsize_films(train, fullsize, count // 2).glob("*.png"))
    small = sorted((train / "NORMAL").glob("*.jpeg"))[count // 2: count // 2 + count // 4] + \
        sorted((train / "PNEUMONIA").glob("*.jpeg"))[count // 2: count // 2 + count // 4]
    return [f for pair in zip(large, small) for f in pair]


def start_server(serve_args: list[str]) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "pneumo_edge.edge.cli", "serve", "--host", HOST,
                                "--port", "0", *serve_args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if f"open http://{HOST}:" in line:
            return process, int(line.split(f"{HOST}:", 1)[1].split("/")[0])
    process.kill()
    raise SystemExit("pneumo serve did not start:\n" + "".join(seen))


class Load:
    """Shared state of the client threads: a request budget, a deadline and the records."""

    def __init__(self, max_requests: int, seconds: float):
        self.lock = threading.Lock()
        self.sent = 0
        self.max_requests = max_requests
        self.deadline = time.monotonic() + seconds
        self.records: list[tuple[str, float, str]] = []  # (kind, latency ms, outcome)

    def take(self) -> bool:
        with self.lock:
            if self.sent >= self.max_requests or time.monotonic() >= self.deadline:
                return False
            self.sent += 1
            return True

    def record(self, kind: str, latency_ms: float, outcome: str) -> None:
        with self.lock:
            self.records.append((kind, latency_ms, outcome))


def client(port: int, load: Load, requests: list[tuple[str, bytes, str, float]], offset: int) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    i = offset
    while load.take():
        kind, body, content_type, expected = requests[i % len(requests)]
        i += 1
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/predict", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            load.record(kind, (time.perf_counter() - started) * 1000, f"connection: {type(exc).__name__}")
            connection.close()
            connection = http.client.HTTPConnection(HOST, port, timeout=120)
            continue
        latency = (time.perf_counter() - started) * 1000
        if status != 200:
            load.record(kind, latency, f"HTTP {status}")
        elif abs(json.loads(payload)["probability"] - expected) > 1e-5:
            load.record(kind, latency, "wrong answer")
        else:
            load.record(kind, latency, "ok")
    connection.close()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    p = np.percentile(values, [50, 90, 99])
    return {"p50": round(float(p[0]), 1), "p90": round(float(p[1]), 1), "p99": round(float(p[2]), 1),
            "max": round(max(values), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="stop after this long (default 20)")
    parser.add_argument("--max-requests", type=int, default=5000, help="stop after this many (default 5000)")
    parser.add_argument("--distinct-films", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--model", default=None, help="a .tflite model (default: the shipped default)")
    parser.add_argument("--queue", type=int, default=None, help="pneumo serve --queue (default: its default)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600 or args.max_requests < 1:
        parser.error("keep it bounded: 1-256 clients, 0-600 s, at least one request")

    load_before = os.getloadavg()[0]  # other work on the machine skews every figure below
    reference = Classifier(Options(model=args.model))  # the server's model, to check every answer
    requests = []
    with tempfile.TemporaryDirectory(prefix="load-films-") as fullsize:
        films = pick_films(args.films, Path(fullsize), args.distinct_films)
        for path in films:
            data = path.read_bytes()
            try:
                probability = reference.predict(data).probability
            except OutOfScope:  # about 2% of the children's films: a 422 is not the load being measured
                continue
            body, content_type = multipart(data, path.name)
            kind = "1024px PNG" if path.suffix == ".png" else "224px JPEG"
            requests.append((kind, body, content_type, probability))

    serve_args = (["--model", args.model] if args.model else []) + \
        (["--queue", str(args.queue)] if args.queue is not None else [])
    process, port = start_server(serve_args)
    try:
        health = json.loads(_get(port, "/api/health"))
        load = Load(args.max_requests, args.seconds)
        threads = [threading.Thread(target=client, args=(port, load, requests, i)) for i in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)

    ok = [latency for _, latency, outcome in load.records if outcome == "ok"]
    errors: dict[str, int] = {}
    for _, _, outcome in load.records:
        if outcome != "ok":
            errors[outcome] = errors.get(outcome, 0) + 1
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpus": _cpus(),
                    "python": platform.python_version(),
                    "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}},
        "server": {k: health[k] for k in ("model", "backend", "runtime", "runtime_version", "queue")},
        "clients": args.clients, "seconds_limit": args.seconds, "max_requests": args.max_requests,
        "distinct_films": len(requests), "duration_s": round(elapsed, 2),
        "requests": len(load.records), "ok": len(ok), "errors": sum(errors.values()), "errors_by_kind": errors,
        "throughput_per_s": round(len(ok) / elapsed, 2),
        "latency_ms": percentiles([latency for _, latency, _ in load.records]),
        "latency_ms_by_film": {kind: percentiles([lat for k, lat, _ in load.records if k == kind])
                               for kind in sorted({k for k, _, _ in load.records})},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["errors"] == 0 else 1


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
