"""Soak one ``pneumo serve`` with issue 12's heavy and hostile films; check its memory and lock-out goals.

    python benchmarks/soak_web.py --films ../shared/data --out benchmarks/soak_web.json

Starts ``pneumo serve --host 127.0.0.1 --port 0 --token ...`` (as the README starts
it, loopback only) and, in this order: --photos sequential uploads of a 12 MP photo
PNG, --bombs of the 8000 x 8000 RGBA PNG, every other film of tests/hostile_films.py
once (built from children's training films, which the default model scores), the
heaviest films at once (more than the 2 decode slots), then holds
--idle-connections open (idle, a header never finished, a body never sent) while a
token holder loads the page and scores a film --probes times. The server's RSS is
read from /proc: the peak during each film (VmHWM, reset before it through
/proc/PID/clear_refs) and the idle RSS after each phase. Goals (issue 12): idle under
300 MiB and peak under 700 MiB after the photos and bombs, every bomb refused under
700 MiB, page and prediction each under 2 s with the connections held.
Prints and writes the figures with the exact command (--out, and a .md beside
it); exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the hostile films and the served process, shared with the tests

from hostile_films import CASES, fullsize_films  # noqa: E402
from serve_process import HOST, ServeProcess  # noqa: E402

IDLE_GOAL_MB, PEAK_GOAL_MB, ANSWER_GOAL_S = 300, 700, 2.0
TOKEN = "soak-token-" + os.urandom(8).hex()
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def send(server: ServeProcess, case, data: bytes) -> dict:
    server.reset_peak()
    started = time.perf_counter()
    status, answer = server.predict(data, case.name, headers=BEARER)
    seconds = time.perf_counter() - started
    ok = status == case.status and (case.code is None or answer.get("code") == case.code)
    return {"status": status, "code": answer.get("code"), "ok": ok, "seconds": round(seconds, 3),
            "peak_mb": round(server.rss_mb()[1], 1)}


def phase(server: ServeProcess, case, data: bytes, count: int) -> dict:
    runs = [send(server, case, data) for _ in range(count)]
    time.sleep(1.0)
    return {"film": case.name, "bytes": len(data), "count": count, "expected_status": case.status,
            "statuses": sorted({run["status"] for run in runs}), "all_as_expected": all(run["ok"] for run in runs),
            "peak_mb": max(run["peak_mb"] for run in runs), "idle_after_mb": round(server.rss_mb()[0], 1),
            "seconds_p50": sorted(run["seconds"] for run in runs)[len(runs) // 2]}


def concurrent(server: ServeProcess, films: dict, names: list[str]) -> dict:
    """The heaviest films at once, as many as there are decode slots and more: one peak for all."""
    from concurrent.futures import ThreadPoolExecutor

    server.reset_peak()
    with ThreadPoolExecutor(len(names)) as pool:
        statuses = list(pool.map(lambda name: server.predict(films[name], name, headers=BEARER)[0], names))
    time.sleep(1.0)
    return {"films": names, "statuses": statuses, "peak_mb": round(server.rss_mb()[1], 1),
            "idle_after_mb": round(server.rss_mb()[0], 1)}


def hold_connections(server: ServeProcess, count: int) -> list[socket.socket]:
    held = []
    for i in range(count):
        sock = socket.create_connection((HOST, server.port), timeout=30)
        if i % 3 == 1:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        elif i % 3 == 2:
            sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nab")
        held.append(sock)
    return held


def lockout(server: ServeProcess, film: bytes, connections: int, probes: int) -> dict:
    held = hold_connections(server, connections)
    page, predict, failures = [], [], []
    try:
        time.sleep(0.5)
        for _ in range(probes):
            for kind, times, call in (("page", page, lambda: server.request("GET", "/", headers=BEARER, timeout=10)[0]),
                                      ("predict", predict, lambda: server.predict(film, "film.jpeg", headers=BEARER,
                                                                                  timeout=10)[0])):
                started = time.perf_counter()
                try:
                    status = call()
                except OSError as exc:
                    status = f"{type(exc).__name__}"
                times.append(round(time.perf_counter() - started, 3))
                if status != 200:
                    failures.append(f"{kind}: {status}")
            time.sleep(0.5)
    finally:
        for sock in held:
            sock.close()
    return {"connections_held": connections, "probes": probes, "page_max_s": max(page), "predict_max_s": max(predict),
            "page_s": page, "predict_s": predict, "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--films", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--bombs", type=int, default=8)
    parser.add_argument("--idle-connections", type=int, default=64)
    parser.add_argument("--probes", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-films-") as folder:
        children = fullsize_films(args.films / "chest_xray" / "train", Path(folder))
        films = {case.name: case.build(children) for case in CASES}
    cases = {case.name: case for case in CASES}
    normal = next((args.films / "chest_xray" / "train" / "NORMAL").glob("*.jpeg")).read_bytes()

    server = ServeProcess("--token", TOKEN)
    try:
        time.sleep(1.0)
        started_mb = round(server.rss_mb()[0], 1)
        phases = [phase(server, cases["photo_12mp_png"], films["photo_12mp_png"], args.photos),
                  phase(server, cases["rgba_8000_png"], films["rgba_8000_png"], args.bombs)]
        phases += [phase(server, case, films[case.name], 1) for case in CASES
                   if case.name not in ("photo_12mp_png", "rgba_8000_png")]
        together = concurrent(server, films, ["deflated_dicom_bomb", "deflated_dicom_bomb", "photo_12mp_png",
                                              "scan_16bit_png"])
        held = lockout(server, normal, args.idle_connections, args.probes)
        time.sleep(1.0)
        final_idle = round(server.rss_mb()[0], 1)
    finally:
        server.stop()

    first_two = phases[:2]
    goals = {
        "photos_then_bombs_idle_under_300_mb": first_two[1]["idle_after_mb"] < IDLE_GOAL_MB,
        "photos_and_bombs_peak_under_700_mb": max(p["peak_mb"] for p in first_two) < PEAK_GOAL_MB,
        "every_film_answered_as_expected": all(p["all_as_expected"] for p in phases),
        "every_film_peak_under_700_mb": all(p["peak_mb"] < PEAK_GOAL_MB for p in phases),
        "heaviest_films_at_once_peak_under_700_mb": together["peak_mb"] < PEAK_GOAL_MB,
        "idle_under_300_mb_at_the_end": final_idle < IDLE_GOAL_MB,
        "page_and_predict_under_2_s_with_connections_held": not held["failures"]
        and max(held["page_max_s"], held["predict_max_s"]) < ANSWER_GOAL_S,
    }
    report = {"command": "python benchmarks/soak_web.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg()},
              "rss_mb_at_start": started_mb, "phases": phases, "at_once": together, "lockout": held,
              "rss_mb_idle_at_end": final_idle, "goals": goals}
    lines = [f"RSS at start {started_mb} MiB; idle at the end {final_idle} MiB",
             f"{'film':28} {'count':>5} {'status':>8} {'ok':>4} {'peak MiB':>9} {'idle after':>10} {'p50 s':>7}"]
    lines += [f"{p['film']:28} {p['count']:5d} {'/'.join(map(str, p['statuses'])):>8} {str(p['all_as_expected']):>4} "
              f"{p['peak_mb']:9.1f} {p['idle_after_mb']:10.1f} {p['seconds_p50']:7.3f}" for p in phases]
    lines.append(f"at once: {', '.join(together['films'])}: statuses {together['statuses']}, peak "
                 f"{together['peak_mb']} MiB, idle after {together['idle_after_mb']} MiB")
    lines.append(f"{held['connections_held']} connections held: page max {held['page_max_s']} s, predict max "
                 f"{held['predict_max_s']} s, failures {held['failures'] or 'none'}")
    lines += [f"{'met ' if met else 'MISSED'} {goal}" for goal, met in goals.items()]
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(f"# Soak of pneumo serve ({report['when']})\n\n"
                                               f"    {report['command']}\n\n```\n" + "\n".join(lines) + "\n```\n")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
