"""The web API through Flask's test client: real model, real films, every error status."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.heatmap import COLOURS, LEGEND, WEIGHTS, grey_base, overlay_jpeg, overlay_size
from pneumo_edge.edge.web.app import CSP, ServeConfig, create_app
from pneumo_edge.edge.web.auth import COOKIE


@pytest.fixture(scope="module")
def app():
    return create_app(ServeConfig())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def reference():
    """A separate classifier: what the server must answer, computed here, not hard-coded."""
    return Classifier(Options())


@pytest.fixture(scope="module")
def normal_film(train_dir) -> bytes:
    return (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()


@pytest.fixture(scope="module")
def fullsize_film(fullsize_dir) -> bytes:
    return sorted(fullsize_dir.glob("*.png"))[0].read_bytes()


@pytest.fixture(scope="module")
def wide_film(train_dir) -> bytes:
    """A child's pneumonia film as an 8-bit PNG of 600 x 420: in scope, and not square."""
    film = Image.open(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[0]).convert("L").resize((600, 420))
    return image_bytes(film)


def post_film(client, data: bytes, name: str = "film.jpeg", content_type: str = "image/jpeg", *,
              path: str = "/api/predict", form: dict | None = None, **kwargs):
    return client.post(path, data={"file": (io.BytesIO(data), name, content_type), **(form or {})},
                       content_type="multipart/form-data", **kwargs)


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_health_reports_model_backend_runtime_and_versions(client, reference):
    response = client.get("/api/health")
    assert response.status_code == 200
    health = response.get_json()
    expected = reference.describe()
    for key in ("model", "backend", "runtime", "runtime_version", "threshold", "intended_use", "version"):
        assert health[key] == expected[key]
    assert health["versions"][expected["runtime"]] == expected["runtime_version"]
    assert {"pneumo_edge", "python", "flask", "waitress", "numpy", "pillow"} <= set(health["versions"])
    assert health["camera"] is None
    assert "model_path" not in health  # no filesystem paths to the network


@pytest.mark.parametrize("which", ["normal_film", "wide_film"])
def test_predict_matches_the_model_and_returns_its_map_for_the_page_not_an_image(client, reference, request,
                                                                                  which):
    data = request.getfixturevalue(which)
    response = post_film(client, data)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    expected = reference.predict(data)
    assert result["label"] == expected.label
    assert result["probability"] == pytest.approx(expected.probability, abs=1e-6)
    assert result["threshold"] == expected.threshold
    assert result["model"] == expected.model
    assert {"decode", "invoke", "total", "wait", "heatmap", "server"} <= set(result["timings_ms"])
    heatmap = result["heatmap"]
    assert np.array(heatmap["cam"]).shape == expected.cam.shape == (7, 7)
    np.testing.assert_allclose(heatmap["cam"], expected.cam, atol=1e-5)
    assert heatmap["colormap"] == COLOURS.tolist() and len(heatmap["colormap"]) == 256
    assert heatmap["weights"] == WEIGHTS.tolist() and heatmap["legend"] == list(LEGEND)
    assert heatmap["film_jpeg_base64"] is None  # the page draws on the JPEG or 8-bit PNG it uploaded
    assert "overlay_jpeg_base64" not in result and "heatmap_png_base64" not in result
    assert "saved" not in result


@pytest.mark.parametrize("ask", [{"query_string": {"overlay": "1"}}, {"form": {"overlay": "true"}}],
                         ids=["query", "form"])
def test_an_overlay_image_is_composed_only_on_request(client, reference, wide_film, ask):
    result = post_film(client, wide_film, "wide.png", "image/png", **ask).get_json()
    expected = reference.predict(wide_film)
    jpeg = base64.b64decode(result["overlay_jpeg_base64"])
    assert jpeg == overlay_jpeg(expected.film.image, expected.cam)
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == overlay_size((600, 420)) == (448, 314)  # the film's aspect ratio
    assert result["heatmap"]["cam"]  # the map too, for a page
    assert "overlay_jpeg_base64" not in post_film(client, wide_film, query_string={"overlay": "0"}).get_json()


def sixteen_bit_png(train_dir) -> bytes:
    grey = np.asarray(Image.open(sorted((train_dir / "NORMAL").glob("*.jpeg"))[0]).convert("L"), dtype=np.uint16)
    return image_bytes(Image.fromarray(1000 + grey * 16))  # a scanner's narrow 16-bit range: dark as stored


def dicom_film(train_dir) -> bytes:
    pytest.importorskip("pydicom")
    from dicom_files import make_dicom

    grey = np.asarray(Image.open(sorted((train_dir / "NORMAL").glob("*.jpeg"))[1]).convert("L"))
    return make_dicom(grey.astype(np.uint16) * 4, BitsAllocated=16, BitsStored=12, HighBit=11, PixelRepresentation=0)


@pytest.mark.parametrize("make", [sixteen_bit_png, dicom_film], ids=["16-bit PNG", "DICOM"])
def test_a_film_the_browser_cannot_show_comes_with_the_grey_film_to_draw_on(client, reference, train_dir, make):
    data = make(train_dir)
    response = post_film(client, data, "film.bin", "application/octet-stream")
    assert response.status_code == 200, response.get_json()
    expected = reference.predict(data)
    jpeg = base64.b64decode(response.get_json()["heatmap"]["film_jpeg_base64"])
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG" and image.mode == "L"
        shown = np.asarray(image, dtype=np.int16)
    base = np.asarray(grey_base(expected.film.image), dtype=np.int16)  # the film as the model saw it
    assert shown.shape == base.shape and np.abs(shown - base).mean() < 2


def test_content_is_sniffed_not_trusted_from_name_or_type(client, normal_film, reference):
    response = post_film(client, normal_film, name="notes.txt", content_type="text/plain")
    assert response.status_code == 200
    assert response.get_json()["label"] == reference.predict(normal_film).label
    response = post_film(client, b"label: NORMAL\n" * 40, name="film.png", content_type="image/png")
    assert response.status_code == 415
    assert response.get_json()["code"] == "not_an_image"


def test_missing_file_field_is_400(client, normal_film):
    response = client.post("/api/predict", data={"film": (io.BytesIO(normal_film), "a.jpeg")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "file" in response.get_json()["error"]
    response = client.post("/api/predict", data=normal_film, content_type="image/jpeg")
    assert response.status_code == 400


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns; films.py refuses
def test_unreadable_films_are_415(client, normal_film):
    bomb = image_bytes(Image.new("1", (10_000, 10_000)))  # 100 MP in a few kilobytes
    assert len(bomb) < 100_000
    cases = {"truncated": normal_film[: len(normal_film) // 3], "empty_file": b"",
             "decompression_bomb": bomb}
    for code, data in cases.items():
        response = post_film(client, data)
        assert response.status_code == 415, (code, response.get_json())
        assert response.get_json()["code"] == code
        assert response.get_json()["error"]


def test_quality_gate_refusals_are_422(client):
    rng = np.random.default_rng(0)
    colour = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), "RGB")
    small = Image.fromarray(rng.integers(0, 256, (100, 100), dtype=np.uint8), "L")
    blank = Image.new("L", (300, 300), 128)
    strip = Image.fromarray(rng.integers(0, 256, (240, 1000), dtype=np.uint8), "L")
    for code, image in {"quality_colour": colour, "quality_too_small": small, "quality_blank": blank,
                        "quality_aspect": strip}.items():
        response = post_film(client, image_bytes(image), name="x.png", content_type="image/png")
        assert response.status_code == 422, (code, response.get_json())
        assert response.get_json()["code"] == code


def test_oversize_upload_is_413(fullsize_film):
    app = create_app(ServeConfig(max_upload_mb=0.25))
    assert len(fullsize_film) > 0.25 * 1024 * 1024
    response = post_film(app.test_client(), fullsize_film, content_type="image/png")
    assert response.status_code == 413
    assert "0.25 MB" in response.get_json()["error"]


def test_non_loopback_bind_without_a_token_is_refused():
    """host 0.0.0.0 and no token: one is generated, and nothing is served without it."""
    app = create_app(ServeConfig(host="0.0.0.0"))
    token = app.config["PNEUMO_TOKEN"]
    assert token and len(token) >= 24 and app.config["PNEUMO_TOKEN_GENERATED"]
    client = app.test_client()
    for path in ("/", "/api/health", "/static/app.js"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(f"/?token={token}x").status_code == 401


def test_page_token_sets_a_strict_httponly_cookie(normal_film):
    app = create_app(ServeConfig(host="192.168.1.20", token="clinic-secret-token"))
    client = app.test_client()
    response = client.get("/?token=clinic-secret-token")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=clinic-secret-token")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/").status_code == 200  # the cookie now travels with each request
    off_site = client.get("/?token=clinic-secret-token", environ_overrides={"PATH_INFO": "//evil.example/"})
    assert off_site.status_code == 303 and off_site.headers["Location"] == "/evil.example/"
    assert post_film(client, normal_film).status_code == 200
    assert post_film(app.test_client(), normal_film).status_code == 401  # a client without the cookie


def test_a_token_given_on_loopback_is_required_too():
    app = create_app(ServeConfig(host="127.0.0.1", token="t0ken"))
    assert not app.config["PNEUMO_TOKEN_GENERATED"]
    client = app.test_client()
    assert client.get("/api/health").status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_posts_from_another_sites_page_are_refused(client, normal_film):
    response = post_film(client, normal_film, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and response.get_json()["code"] == "cross_origin"
    assert post_film(client, normal_film, headers={"Origin": "null"}).status_code == 403
    assert post_film(client, normal_film, headers={"Origin": "http://localhost"}).status_code == 200


def test_loopback_server_refuses_foreign_host_names(client):
    """Without a token, a page elsewhere must not reach the server through DNS rebinding."""
    assert client.get("/api/health", headers={"Host": "evil.example:8080"}).status_code == 400
    for host in ("127.0.0.1:8080", "localhost", "[::1]:8080"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host


def test_full_queue_answers_503_and_the_waiting_request_completes(normal_film, reference):
    app = create_app(ServeConfig(queue=0))  # one request at the interpreter, none waiting
    scorer = app.extensions["pneumo"]["scorer"]
    results = []
    with scorer.interpreter_lock:  # the interpreter is busy
        waiting = threading.Thread(target=lambda: results.append(post_film(app.test_client(), normal_film)))
        waiting.start()
        deadline = time.monotonic() + 10
        while scorer.in_use < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scorer.in_use == 1
        refused = post_film(app.test_client(), normal_film)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.get_json()["code"] == "busy"
        assert app.test_client().get("/api/health").get_json()["queue"] == {"capacity": 1, "in_use": 1}
    waiting.join(timeout=30)
    assert results and results[0].status_code == 200
    assert results[0].get_json()["label"] == reference.predict(normal_film).label


def test_concurrent_requests_all_get_the_right_answer(train_dir, reference):
    """Eight threads at once on one interpreter: each gets its own film's answer."""
    app = create_app(ServeConfig(queue=8))
    films = [p.read_bytes() for p in sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:4]
             + sorted((train_dir / "NORMAL").glob("*.jpeg"))[:4]]
    answers: dict[int, dict] = {}

    def worker(i):
        answers[i] = post_film(app.test_client(), films[i]).get_json()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(films))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for i, film in enumerate(films):
        assert answers[i]["probability"] == pytest.approx(reference.predict(film).probability, abs=1e-6)


def test_uploads_are_not_spooled_to_disk(client, train_dir):
    """Werkzeug spools uploads over 500 KB to a temporary file; a film must stay in memory."""
    film = Image.open(sorted((train_dir / "NORMAL").glob("*.jpeg"))[0]).convert("L").resize((1200, 1200))
    buffer = io.BytesIO()
    film.save(buffer, format="PNG", compress_level=0)  # a child's film (in scope), stored uncompressed
    large_film = buffer.getvalue()
    assert len(large_film) > 500 * 1024
    written = []
    me = threading.get_ident()
    tmp = os.path.realpath(tempfile.gettempdir())
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | getattr(os, "O_TMPFILE", 0)

    def audit(event, args):
        if event == "open" and threading.get_ident() == me and watching:
            path, mode, flags = args
            if isinstance(path, str) and os.path.realpath(path).startswith(tmp) and (
                    (mode and any(c in mode for c in "wax+")) or (flags or 0) & write_flags):
                written.append(path)

    # Encoded here, in memory: the test client would itself spool a large body to a temporary file.
    boundary, body = encode_multipart(MultiDict({"file": FileStorage(io.BytesIO(large_film), "f.png")}))
    watching = True
    sys.addaudithook(audit)  # hooks cannot be removed; this one goes quiet below
    try:
        response = client.post("/api/predict", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    finally:
        watching = False
    assert response.status_code == 200
    assert written == []


def test_save_dir_keeps_film_result_and_heatmap(tmp_path, normal_film):
    app = create_app(ServeConfig(save_dir=tmp_path / "saved"))
    result = post_film(app.test_client(), normal_film).get_json()
    assert result["saved"] is True
    files = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert len(files) == 3 and all(result["id"] in name for name in files)
    film = next((tmp_path / "saved").glob("*.film.jpeg"))
    assert film.read_bytes() == normal_film
    record = json.loads(next((tmp_path / "saved").glob("*.json")).read_text())
    assert record["label"] == result["label"] and "heatmap" not in record
    assert record["cam"] == result["heatmap"]["cam"]
    with Image.open(next((tmp_path / "saved").glob("*.heatmap.jpg"))) as overlay:
        assert overlay.format == "JPEG" and overlay.size == (448, 448 + 30)  # with its legend


def test_page_is_local_only_with_a_strict_policy(client, reference):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "img-src 'self' data:" in CSP
    page = response.get_data(as_text=True)
    assert 'name="viewport"' in page
    assert reference.describe()["intended_use"] in page
    for asset in ("/static/app.js", "/static/heatmap.js", "/static/style.css"):
        body = client.get(asset).get_data(as_text=True)
        assert "http:" not in body and "https:" not in body and "@import" not in body and "url(" not in body
    assert "http:" not in page and "https:" not in page and "<script>" not in page and "style=" not in page


def test_capture_without_a_camera_is_404(client):
    response = client.post("/api/capture")
    assert response.status_code == 404
    assert response.get_json()["code"] == "no_camera"


def test_capture_from_a_replay_camera_is_scored(train_dir, reference, tmp_path):
    camera = pytest.importorskip("pneumo_edge.edge.films.camera",
                                 reason="the camera module (edge/films/camera.py) is not in this tree")
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:2]:  # children's films: in scope
        (frames / path.name).write_bytes(path.read_bytes())
    kind = f"replay:{frames}"
    app = create_app(ServeConfig(camera=kind, save_dir=tmp_path))
    client = app.test_client()
    assert client.get("/api/health").get_json()["camera"] == {"kind": kind}
    with camera.open_camera(kind) as replay:  # the frames the server's camera will deliver
        expected = [reference.predict_film(camera.capture_film(replay)).probability for _ in range(2)]
    for probability in expected:  # the held-open camera moves on to the next frame
        response = client.post("/api/capture")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["probability"] == pytest.approx(probability, abs=1e-6)
        assert response.get_json()["heatmap"]["film_jpeg_base64"]  # the page has no file of a frame
    assert len(list(tmp_path.glob("*.film.png"))) == 2
    app.extensions["pneumo"]["camera"].close()
    assert client.post("/api/capture").status_code == 503


def test_a_camera_that_cannot_open_leaves_the_server_without_one(tmp_path):
    pytest.importorskip("pneumo_edge.edge.films.camera",
                        reason="the camera module (edge/films/camera.py) is not in this tree")
    app = create_app(ServeConfig(camera=f"replay:{tmp_path / 'absent'}"))
    client = app.test_client()
    health = client.get("/api/health").get_json()
    assert health["camera"] is None and "absent" in health["camera_unavailable"]
    assert client.post("/api/capture").status_code == 503


def test_unknown_routes_and_methods_answer_json(client):
    response = client.get("/api/nothing")
    assert response.status_code == 404 and response.get_json()["error"]
    response = client.get("/api/predict")
    assert response.status_code == 405 and response.get_json()["error"]
