"""The Flask application: the clinic page, its JSON API, access control and limits.

``create_app(config)`` builds everything from a :class:`ServeConfig`, so tests
drive the real application through Flask's test client, and ``pneumo serve``
hands the same application to waitress.
"""

from __future__ import annotations

import io
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Flask, Request, jsonify, redirect, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..classifier import Classifier, Options
from ..errors import Busy, FilmError, MissingExtra
from ..versions import dist_version
from . import auth
from .camera_slot import CameraSlot, CameraUnavailable
from .scoring import Scorer

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    classifier: Options = field(default_factory=Options)
    token: str | None = None  # None on a non-loopback host: one is generated
    max_upload_mb: float = 25.0
    queue: int = 16  # requests that may wait for the interpreter; one more gets 503
    save_dir: Path | None = None  # films and results are written only when set
    camera: str = "none"


class InMemoryRequest(Request):
    """Uploads stay in memory: Werkzeug would spool those over 500 KB to a temporary
    file, and a film must not touch the disk unless --save-dir asks for it."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(config: ServeConfig) -> Flask:
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.json.sort_keys = False  # label first, heatmap last, as the API documents them
    app.config["MAX_CONTENT_LENGTH"] = int(config.max_upload_mb * 1024 * 1024)
    token = config.token or None
    if token is None and not auth.is_loopback(config.host):
        token = auth.new_token()
    app.config["PNEUMO_TOKEN"] = token
    app.config["PNEUMO_TOKEN_GENERATED"] = token is not None and not config.token
    scorer = Scorer(Classifier(config.classifier), config.queue, config.save_dir)
    camera = CameraSlot(config.camera)
    app.extensions["pneumo"] = {"scorer": scorer, "camera": camera}
    _guard(app, token)
    _routes(app, scorer, camera, config=config)
    _errors(app)
    return app


def _guard(app: Flask, token: str | None) -> None:
    @app.before_request
    def require_access():
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None and urlsplit(origin).netloc != request.host:
            # Another site's page posting to this one (CSRF), e.g. to a token-less loopback server.
            return _error("a request from another site's page is refused", 403, "cross_origin")
        if token is None:
            if not auth.host_header_is_loopback(request.host):
                return _error(f"this server answers only to a loopback host name, not {request.host!r}",
                              400, "bad_host")
            return None
        query_token = request.args.get("token")
        if query_token is not None and request.method == "GET":
            if not auth.token_matches(query_token, token):
                return _error("wrong access token", 401, "unauthorised")
            # Drop the token from the address bar. The path is re-quoted whole, so a tab, a
            # newline or a backslash (that a browser drops or reads as "/") stays in the path:
            # "/%09/evil.com" must not become "//evil.com", a link to another site.
            response = redirect("/" + quote(request.path.lstrip("/"), safe="/"), code=303)
            response.set_cookie(auth.COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        if not auth.token_matches(auth.presented_token(request.headers, request.cookies), token):
            return _error("an access token is required: open the address that pneumo serve printed "
                          "(it ends in ?token=...), or send Authorization: Bearer <token>", 401, "unauthorised")
        return None

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="pneumo"'
        return response


def _routes(app: Flask, scorer: Scorer, camera: CameraSlot, *, config: ServeConfig) -> None:
    model = scorer.classifier.describe()

    @app.get("/")
    def index():
        return render_template("index.html", model=model, max_upload_bytes=app.config["MAX_CONTENT_LENGTH"])

    @app.get("/api/health")
    def health():
        return jsonify(status="ok", **{k: v for k, v in model.items() if k != "model_path"},
                       model_file=Path(model["model_path"]).name, versions=_versions(model),
                       camera={"kind": camera.kind} if camera.available else None,
                       camera_unavailable=camera.reason,
                       queue={"capacity": scorer.capacity, "in_use": scorer.in_use},
                       max_upload_mb=config.max_upload_mb, saving=config.save_dir is not None)

    @app.post("/api/predict")
    def predict():
        upload = request.files.get("file")
        if upload is None:
            return _error("send the film as the multipart/form-data field 'file'", 400, "missing_file")
        return jsonify(scorer.score(upload.read(), overlay=_wants_overlay()))

    @app.post("/api/capture")
    def capture():
        if camera.kind == "none":
            return _error(camera.reason, 404, "no_camera")
        try:
            film = camera.capture()
        except CameraUnavailable as exc:
            return _error(str(exc), 503, exc.code)
        return jsonify(scorer.score_film(film, overlay=_wants_overlay()))


def _wants_overlay() -> bool:
    """``overlay=1`` in the query or the form: the answer also carries the server's overlay image."""
    value = request.args.get("overlay", request.form.get("overlay", ""))
    return value.lower() in ("1", "true", "yes")


def _errors(app: Flask) -> None:
    @app.errorhandler(FilmError)
    def bad_film(exc: FilmError):
        status = 422 if exc.code.startswith("quality_") or exc.code == "out_of_scope" else 415
        return _error(str(exc), status, exc.code)

    @app.errorhandler(MissingExtra)
    def missing_extra(exc: MissingExtra):
        return _error(str(exc), 415, exc.code)

    @app.errorhandler(Busy)
    def busy(exc: Busy):
        response = _error(str(exc), 503, exc.code)
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length <= limit:
            # Under the size limit, Werkzeug refuses a form of too many parts or a large text field.
            return _error(f"the form has over {request.max_form_parts:,} parts or a text field over "
                          f"{request.max_form_memory_size // 1024:,} KB: send the film alone, as the field 'file'",
                          413, "form_too_large")
        return _error(f"the upload is over this server's {limit / (1024 * 1024):g} MB limit", 413, "too_large")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(exc.description or exc.name, exc.code or 500, exc.name.lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error")
        return _error("internal error; the server log has the details", 500, "internal")


def _error(message: str, status: int, code: str):
    response = jsonify(error=message, code=code)
    response.status_code = status
    return response


def _versions(model: dict) -> dict:
    import numpy
    import PIL

    from .. import __version__

    return {"pneumo_edge": __version__, "python": platform.python_version(),
            model["runtime"]: model["runtime_version"], "numpy": numpy.__version__, "pillow": PIL.__version__,
            "flask": dist_version("flask") or "not installed",
            "waitress": dist_version("waitress") or "not installed"}
