"""The camera interface, the replay camera, and ``pneumo capture`` on the real model."""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.edge.classifier import Classifier
from pneumo_edge.edge.cli import main
from pneumo_edge.edge.errors import BackendUnavailable, FilmError
from pneumo_edge.edge.films import read_film
from pneumo_edge.edge.films.camera import PICAMERA2_MISSING, ReplayCamera, capture_film, open_camera


@pytest.fixture
def replay_dir(tmp_path, fullres_dir, fullsize_dir):
    """Three full-size films named out of order, plus files a camera folder may also hold."""
    folder = tmp_path / "replay"
    folder.mkdir()
    films = sorted(fullsize_dir.glob("*.png"))[:3]
    for name, film in zip(("b.png", "a.png", "c.png"), films):
        shutil.copy(film, folder / name)
    (folder / "notes.txt").write_text("not a film")
    shutil.copy(fullres_dir / "chest_cr_monochrome2.dcm", folder / "film.dcm")
    return folder


@pytest.fixture
def child_replay_dir(tmp_path, train_dir):
    """Three children's films (in the shipped model's scope) as PNG frames named out of order."""
    folder = tmp_path / "child_replay"
    folder.mkdir()
    films = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:2] + sorted((train_dir / "NORMAL").glob("*.jpeg"))[:1]
    for name, film in zip(("b.png", "a.png", "c.png"), films):
        Image.open(film).convert("L").save(folder / name)
    return folder


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_replay_camera_cycles_through_the_folder_in_name_order(replay_dir):
    expected = [pixels(Image.open(replay_dir / name)) for name in ("a.png", "b.png", "c.png", "a.png")]
    with open_camera(f"replay:{replay_dir}") as camera:
        assert isinstance(camera, ReplayCamera)
        assert [p.name for p in camera.paths] == ["a.png", "b.png", "c.png"]
        frames = [camera.capture() for _ in range(4)]
    assert all(frame.mode == "RGB" for frame in frames)
    assert all(np.array_equal(pixels(frame), want) for frame, want in zip(frames, expected))


def test_replayed_16_bit_scan_is_stretched_like_read_film(tmp_path, fullres_dir):
    grey = np.asarray(Image.open(sorted(fullres_dir.glob("*.png"))[1]).convert("L")).astype(np.uint16)
    Image.fromarray(grey * 40 + 1000).save(tmp_path / "scan.png")
    with open_camera(f"replay:{tmp_path}") as camera:
        film = capture_film(camera)
    assert np.array_equal(np.asarray(film.image), np.asarray(read_film(tmp_path / "scan.png").image))


def test_captured_film_is_what_read_film_makes_of_the_saved_frame(replay_dir, tmp_path):
    with open_camera(f"replay:{replay_dir}") as camera:
        frame = camera.capture()
    film = capture_film(ReplayCamera(replay_dir))
    assert (film.format, film.original_mode, film.original_size) == ("camera", "RGB", frame.size)
    frame.save(tmp_path / "frame.png")
    again = read_film(tmp_path / "frame.png")
    assert np.array_equal(np.asarray(film.image), np.asarray(again.image))
    assert film.colour_spread == again.colour_spread


def test_replay_of_a_broken_file_names_it(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with open_camera(f"replay:{tmp_path}") as camera, pytest.raises(FilmError) as error:
        camera.capture()
    assert "broken.jpg" in str(error.value) and error.value.code == "corrupt"


@pytest.mark.parametrize("kind, code", [
    ("replay:/nonexistent/folder", "camera_unavailable"),
    ("webcam", "camera_unknown"),
    ("replay:", "camera_unknown"),
    ("picamera2:first", "camera_unknown"),
])
def test_bad_camera_names(kind, code):
    with pytest.raises(BackendUnavailable) as error:
        open_camera(kind)
    assert error.value.code == code


def test_replay_folder_without_films(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to see")
    with pytest.raises(BackendUnavailable) as error:
        open_camera(f"replay:{tmp_path}")
    assert "no JPEG, PNG, TIFF or BMP" in str(error.value)


def test_without_picamera2_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on a machine without it
    with pytest.raises(BackendUnavailable) as error:
        open_camera("picamera2")
    message = str(error.value)
    assert message == PICAMERA2_MISSING and "\n" not in message
    assert "sudo apt install python3-picamera2" in message
    assert "python3 -m venv --system-site-packages" in message


def test_capture_command_without_picamera2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    assert main(["capture"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"pneumo capture: {PICAMERA2_MISSING}"


def test_capture_command_scores_saves_and_draws_heatmaps(child_replay_dir, tmp_path, capsys):
    replay_dir = child_replay_dir
    saved, heatmaps = tmp_path / "saved", tmp_path / "heatmaps"
    assert main(["capture", "--camera", f"replay:{replay_dir}", "--count", "4", "--json",
                 "--save", str(saved), "--heatmap", str(heatmaps)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 4 and len({r["capture"] for r in records}) == 4
    classifier = Classifier()
    replayed = [replay_dir / name for name in ("a.png", "b.png", "c.png", "a.png")]
    for record, source in zip(records, replayed):
        assert np.array_equal(pixels(Image.open(record["saved"])), pixels(Image.open(source)))
        again = classifier.predict(record["saved"])  # the saved frame scores the same
        assert (record["label"], record["probability"], record["model"]) == (
            again.label, round(again.probability, 8), classifier.id)
        assert record["label"] == ("PNEUMONIA" if again.probability >= again.threshold else "NORMAL")
        assert set(record["timings_ms"]) >= {"capture", "invoke", "total"}
        with Image.open(record["heatmap"]) as overlay:
            assert overlay.format == "JPEG" and overlay.mode == "RGB"


def test_capture_command_reports_a_refused_frame_and_keeps_it(tmp_path, fullsize_dir, capsys):
    folder = tmp_path / "replay"
    folder.mkdir()
    shutil.copy(sorted(fullsize_dir.glob("*.png"))[0], folder / "a.png")
    hue = np.tile(np.linspace(0, 255, 512), (512, 1))
    photo = np.stack([hue, np.full_like(hue, 200), np.full_like(hue, 220)], -1).astype(np.uint8)
    Image.fromarray(photo, mode="HSV").convert("RGB").save(folder / "b.png")
    assert main(["capture", "--camera", f"replay:{folder}", "--count", "2", "--save", str(tmp_path / "kept")]) == 1
    out, err = capsys.readouterr()
    line = re.compile(r"^(capture-\S+): (NORMAL|PNEUMONIA) p=\d\.\d{3} \(threshold \d\.\d{3} from model card\) "
                      r"model (\S+) \d+ ms saved (\S+)$")
    match = line.match(out.strip())
    assert match and match.group(3) == Classifier().id
    assert re.match(r"^capture-\S+: ERROR quality_colour: .* saved \S+$", err.strip())
    assert len(list((tmp_path / "kept").glob("*.png"))) == 2  # the refused frame is kept too
