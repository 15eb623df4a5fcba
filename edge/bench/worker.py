"""One benchmark row in a fresh process: ``python -m pneumo_edge.edge.bench.worker < spec.json``.

Reads the row's spec (JSON) on stdin and prints its measurements as one line
starting with :data:`RESULT_MARK`, so anything a library prints on stdout cannot
be mistaken for the result. An unusable backend or film is a result with a
status and a reason, not a crash.
"""

from __future__ import annotations

import json
import sys
from typing import Callable

from ..errors import BackendUnavailable, PneumoError

RESULT_MARK = "PNEUMO-BENCH-RESULT "


def answer(measure: Callable[[dict], dict]) -> int:
    """The worker protocol: read a row's spec on stdin, measure it, print the result line.

    Also used by the workstation's notebook baseline, which runs as its own process.
    """
    spec = json.loads(sys.stdin.read())
    try:
        result = measure(spec)
    except BackendUnavailable as exc:
        result = {"status": "unavailable", "reason": str(exc)}
    except PneumoError as exc:
        result = {"status": "failed", "reason": str(exc)}
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    return 0


def main() -> int:
    from .measure import measure_tflite

    return answer(measure_tflite)


if __name__ == "__main__":
    sys.exit(main())
