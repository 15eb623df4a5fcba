"""waitress set up so that no client can lock others out, memory stays bounded, and refusals stay JSON.

Connections are cheap and many: waitress holds an idle or slow connection in
its event loop without a thread, so the connection limit sits far above the
scoring queue, and a client that sends nothing for ``CHANNEL_TIMEOUT`` seconds
is dropped. Threads are few (the queue, plus spares that keep the page,
/api/health and the 503 answers going while the queue is full).

Request bodies are held in memory (a film never touches the disk), so with many
connections their total needs its own bound: :class:`BodyBudget`. Each body
reserves its declared length when its headers end (a chunked body, the upload
limit); a body that does not fit waits unread, its client held back by TCP,
until others finish. A reservation whose body arrives slower than
``MIN_BODY_RATE`` after ``BODY_GRACE`` seconds is dropped with its connection,
so a slow sender cannot sit on the budget. A request that waitress refuses
before the application sees it (a body over the limit, malformed headers) is
answered with the same JSON ``{"error", "code"}`` as every other refusal, not
waitress's plain text.
"""

from __future__ import annotations

import json
import time

#: Request bytes allowed beyond --max-upload-mb for the multipart envelope; a larger
#: body is refused by waitress while it is read.
ENVELOPE_BYTES = 1024 * 1024
#: waitress threads beyond the queue: so the page, /api/health and the 503 answers
#: still get a thread while the queue for the interpreter is full.
SPARE_THREADS = 2
#: Open connections allowed; far more than the threads, so idle ones cannot starve the rest.
CONNECTION_LIMIT = 256
#: Seconds a connection may send nothing (idle keep-alive, a stalled header or body).
CHANNEL_TIMEOUT = 10
#: How often, in seconds, waitress closes the connections that timed out.
CLEANUP_INTERVAL = 2
#: Request bodies held in memory at once, counted in uploads at the size limit.
BODIES_IN_MEMORY = 2
#: A body slower than this (bytes a second), once BODY_GRACE seconds have passed, is dropped.
MIN_BODY_RATE = 64 * 1024
BODY_GRACE = 10
#: Largest request head (request line and headers) read, in bytes.
MAX_HEADER_BYTES = 64 * 1024

_CODES = {400: "bad_request", 413: "too_large", 431: "headers_too_large", 500: "internal", 501: "not_implemented"}


def create_server(app, host: str, port: int, *, queue: int, max_upload_bytes: int):
    """A waitress server for ``app`` with the limits above; raises OSError if it cannot listen."""
    import waitress
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer
    from waitress.task import ErrorTask

    upload_mb = max_upload_bytes / (1024 * 1024)

    class JSONErrorTask(ErrorTask):
        def execute(self):
            error = self.request.error
            code = _CODES.get(error.code, "bad_request")
            message = (f"the upload is over this server's {upload_mb:g} MB limit" if error.code == 413
                       else f"{error.reason.lower()}: {' '.join(str(error.body).split())}")
            body = json.dumps({"error": message, "code": code}).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    limit = max_upload_bytes + ENVELOPE_BYTES
    budget = BodyBudget(BODIES_IN_MEMORY * limit, limit)

    class Channel(HTTPChannel):
        error_task_class = JSONErrorTask

        def readable(self):
            return super().readable() and budget.may_read(self)

    # Bodies stay in memory (inbuf_overflow): a film never touches the disk.
    server = waitress.create_server(app, host=host, port=port, threads=queue + 1 + SPARE_THREADS,
                                    max_request_body_size=limit, inbuf_overflow=limit,
                                    max_request_header_size=MAX_HEADER_BYTES,
                                    connection_limit=CONNECTION_LIMIT, channel_timeout=CHANNEL_TIMEOUT,
                                    cleanup_interval=CLEANUP_INTERVAL, asyncore_use_poll=True, ident="pneumo")
    # One listening socket is a server of its own; several sit in a MultiSocketServer's map.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Channel
    return server


class BodyBudget:
    """Reservations of memory for request bodies, made and checked in waitress's event loop."""

    def __init__(self, total: int, largest: int):
        self.total, self.largest = total, largest
        self.held: dict = {}  # request (waitress's parser) -> (its channel, bytes reserved, since when)

    def may_read(self, channel) -> bool:
        request = channel.request
        if request is None or not request.headers_finished or request.completed:
            return True  # no body on its way: headers, or a request already whole
        now = time.monotonic()
        if request in self.held:
            _, _, since = self.held[request]
            if now - since > BODY_GRACE and len(request.body_rcv or ()) < (now - since) * MIN_BODY_RATE:
                channel.will_close = True  # too slow to keep its share
                return False
            return True
        self._release_finished()
        wanted = self.largest if request.chunked else min(request.content_length, self.largest)
        if sum(reserved for _, reserved, _ in self.held.values()) + wanted <= self.total:
            self.held[request] = (channel, wanted, now)
            return True
        channel.last_activity = time.time()  # waiting for us, not idle: keep it past channel_timeout
        return False

    def _release_finished(self) -> None:
        """Give back the reservations of bodies that have been answered, or whose connection closed."""
        for request, (channel, _, _) in list(self.held.items()):
            if not channel.connected or (request is not channel.request and request not in channel.requests):
                del self.held[request]
