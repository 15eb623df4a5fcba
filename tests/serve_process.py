"""A real ``pneumo serve`` in its own process on a free loopback port, watched from /proc.

Used by the browser and hostile-input tests and by benchmarks/soak_web.py. The
server is started as the README starts it (the installed ``pneumo`` command), so
what is measured includes how the command sets itself up.
"""

from __future__ import annotations

import http.client
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HOST = "127.0.0.1"  # loopback only, by design


def pneumo_command() -> list[str]:
    installed = Path(sys.executable).with_name("pneumo")
    if installed.exists():
        return [str(installed)]
    found = shutil.which("pneumo")
    return [found] if found else [sys.executable, "-m", "pneumo_edge.edge.cli"]


class ServeProcess:
    """``pneumo serve --host 127.0.0.1 --port 0 [args]``, started on construction."""

    def __init__(self, *args: str, start_timeout: float = 60):
        self.process = subprocess.Popen([*pneumo_command(), "serve", "--host", HOST, "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(lines,), daemon=True).start()
        self.port = None
        deadline = time.monotonic() + start_timeout
        while self.port is None and time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if f"open http://{HOST}:" in line:
                self.port = int(line.split(f"{HOST}:", 1)[1].split("/")[0])
        if self.port is None:
            self.stop()
            raise RuntimeError("pneumo serve did not start:\n" + "".join(self.output))
        self.url = f"http://{HOST}:{self.port}"

    def _pump(self, lines: queue.Queue) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            lines.put(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak since the last :meth:`reset_peak`) resident set size in MiB, from /proc."""
        fields = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def reset_peak(self) -> None:
        """Start a new peak: writing 5 to clear_refs resets VmHWM to the current RSS (Linux)."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as clear:
            clear.write("5")

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, *, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict, bytes]:
        """One request on its own connection: (status, headers, body)."""
        connection = self.connection(timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def predict(self, data: bytes, name: str = "film", *, headers: dict | None = None,
                timeout: float = 120) -> tuple[int, dict]:
        """POST a film to /api/predict: (status, JSON answer)."""
        body, content_type = multipart(data, name)
        status, _, answer = self.request("POST", "/api/predict", body,
                                         headers={"Content-Type": content_type, **(headers or {})}, timeout=timeout)
        return status, json.loads(answer)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the film as the field "file", and its content type."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
