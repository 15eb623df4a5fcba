"""waitress set up so that no client can lock others out, and refusals stay JSON.

Connections are cheap and many: waitress holds an idle or slow connection in
its event loop without a thread, so the connection limit sits far above the
scoring queue, and a client that sends nothing for ``CHANNEL_TIMEOUT`` seconds
is dropped. Threads are few (the queue, plus spares that keep the page,
/api/health and the 503 answers going while the queue is full). A request that
waitress refuses before the application sees it (a body over the limit,
malformed headers) is answered with the same JSON ``{"error", "code"}`` as
every other refusal, not waitress's plain text.
"""

from __future__ import annotations

import json

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

_CODES = {400: "bad_request", 413: "too_large", 431: "headers_too_large", 500: "internal", 501: "not_implemented"}


def create_server(app, host: str, port: int, queue: int, max_upload_bytes: int):
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

    class Channel(HTTPChannel):
        error_task_class = JSONErrorTask

    limit = max_upload_bytes + ENVELOPE_BYTES
    # Bodies stay in memory (inbuf_overflow): a film never touches the disk.
    server = waitress.create_server(app, host=host, port=port, threads=queue + 1 + SPARE_THREADS,
                                    max_request_body_size=limit, inbuf_overflow=limit,
                                    connection_limit=CONNECTION_LIMIT, channel_timeout=CHANNEL_TIMEOUT,
                                    cleanup_interval=CLEANUP_INTERVAL, asyncore_use_poll=True, ident="pneumo")
    # One listening socket is a server of its own; several sit in a MultiSocketServer's map.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = Channel
    return server
