"""``pneumo serve``: the clinic page and JSON API, served by waitress.

Flask and waitress are imported inside :func:`run`, so ``pneumo --help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from ..commands.options import add_model_arguments, options_from
from .auth import TOKEN_ENV


def camera_kind(value: str) -> str:
    name, _, argument = value.partition(":")
    if value in ("none", "picamera2") or (name == "picamera2" and argument.isdigit()) or \
            (name == "replay" and argument):
        return value
    raise argparse.ArgumentTypeError("choose none, picamera2, picamera2:N or replay:DIR")


HELP = "serve the clinic web page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    group = parser.add_argument_group("web server")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this device only; 0.0.0.0: the clinic's "
                            "network, which requires the access token)")
    group.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    group.add_argument("--token", default=None,
                       help=f"access token (default: ${TOKEN_ENV}, which other users cannot read from the "
                            "process list; generated and printed when the host is not loopback and none is set)")
    group.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25)")
    group.add_argument("--queue", type=int, default=16,
                       help="requests that may wait while the interpreter is busy; more are answered 503 (default 16)")
    group.add_argument("--save-dir", type=Path, default=None,
                       help="write each film, its result and heatmap here (default: nothing is written)")
    group.add_argument("--camera", type=camera_kind, default="none", metavar="{none,picamera2[:N],replay:DIR}",
                       help="camera for the page's capture button (default none)")


def run(args: argparse.Namespace) -> int:
    from .memory import bound_allocator

    bound_allocator()  # before waitress starts a thread: see memory.py
    from .app import ServeConfig, create_app
    from .transport import create_server

    if args.queue < 0 or args.max_upload_mb <= 0:
        print("pneumo serve: --queue must be 0 or more and --max-upload-mb above 0", file=sys.stderr)
        return 2
    config = ServeConfig(host=args.host, port=args.port, classifier=options_from(args),
                         token=args.token or os.environ.get(TOKEN_ENV) or None,
                         max_upload_mb=args.max_upload_mb, queue=args.queue, save_dir=args.save_dir,
                         camera=args.camera)
    app = create_app(config)
    try:
        server = create_server(app, config.host, config.port, queue=config.queue,
                               max_upload_bytes=app.config["MAX_CONTENT_LENGTH"])
    except OSError as exc:  # port taken, address not on this machine, privileged port
        app.extensions["pneumo"]["camera"].close()
        print(f"pneumo serve: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    _announce(app, config, server)
    try:
        server.run()
    finally:
        app.extensions["pneumo"]["camera"].close()
    return 0


def _announce(app, config, server) -> None:
    describe = app.extensions["pneumo"]["scorer"].classifier.describe()
    camera = app.extensions["pneumo"]["camera"]
    print(f"pneumo serve: {describe['model']} on {describe['backend']} ({describe['runtime']} "
          f"{describe['runtime_version']}); threshold {describe['threshold']:.3f} from {describe['threshold_source']}; "
          f"camera: {camera.kind if camera.available else 'none'}; out-of-scope check {describe['scope_check']}",
          flush=True)
    if camera.kind != "none" and not camera.available:
        print(f"pneumo serve: {camera.reason}", flush=True)
    token = app.config["PNEUMO_TOKEN"]
    query = f"/?token={token}" if app.config["PNEUMO_TOKEN_GENERATED"] else "/"
    for host, port in _listening(server):
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown
        print(f"pneumo serve: open http://{shown}:{port}{query}", flush=True)
    if app.config["PNEUMO_TOKEN_GENERATED"]:
        print(f"pneumo serve: access token (generated; set {TOKEN_ENV} to keep one across restarts): {token}",
              flush=True)
    elif token:
        print("pneumo serve: an access token is required (open the page once with ?token=<token>)", flush=True)


def _listening(server) -> list[tuple[str, int]]:
    return list(getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)])
