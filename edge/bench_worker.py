"""One benchmark row in a fresh process: ``python -m pneumo_edge.edge.bench_worker < spec.json``.

Reads the row's spec (JSON) on stdin and prints its measurements as one line
starting with :data:`RESULT_MARK`, so anything a library prints on stdout cannot
be mistaken for the result. An unusable backend or film is a result with a
status and a reason, not a crash.
"""

from __future__ import annotations

import json
import sys

from .errors import BackendUnavailable, PneumoError

RESULT_MARK = "PNEUMO-BENCH-RESULT "


def measure(spec: dict) -> dict:
    try:
        from .bench_measure import measure_tflite

        return measure_tflite(spec)
    except BackendUnavailable as exc:
        return {"status": "unavailable", "reason": str(exc)}
    except PneumoError as exc:
        return {"status": "failed", "reason": str(exc)}


def main() -> int:
    result = measure(json.loads(sys.stdin.read()))
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
