"""Batch scoring: the results file is the record, one current row per film, whatever the archive holds."""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from pneumo_edge.edge.cli import main
from pneumo_edge.edge.commands.results_file import COLUMNS, ResultsFile, decode_path, encode_path
from pneumo_edge.edge.commands.score_walk import walk
from pneumo_edge.edge.runtime import load_runtime

IDENTITY = {"model": "m@1", "threshold": 0.5}
COMMAND = [sys.executable, "-m", "pneumo_edge.edge.cli", "score"]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def names(rows: list[dict]) -> list[str]:
    return [decode_path(row) for row in rows]


def score(folder, out, *extra) -> int:
    return main(["score", str(folder), "--out", str(out), *map(str, extra)])


def linked_films(folder: Path, sources: list[Path]) -> Path:
    folder.mkdir()
    for path in sources:
        os.symlink(path, folder / path.name)
    return folder


def test_walk_is_recursive_and_sorted(film_folder):
    films = [entry.relative for entry in walk(film_folder).films]
    assert films == sorted(films)
    assert "b/c/" + sorted(p.name for p in (film_folder / "b" / "c").iterdir())[0] in films
    assert "b/notes.png" in films and "a/truncated.jpeg" in films


def test_score_writes_one_row_per_film_with_errors_on_their_rows(film_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert score(film_folder, out) == 0
    rows = read_rows(out)
    assert sorted(names(rows)) == sorted(entry.relative for entry in walk(film_folder).films)  # in finish order
    by_path = {r["path"]: r for r in rows}
    assert by_path["a/truncated.jpeg"]["error_code"] == "truncated"
    assert by_path["b/notes.png"]["error_code"] == "not_an_image"
    good = [r for r in rows if not r["error"]]
    assert len(good) == 7
    for row in good:
        assert row["label"] in ("NORMAL", "PNEUMONIA")
        assert 0 <= float(row["probability"]) <= 1
        assert len(row["sha256"]) == 64 and row["model"].startswith("pneumo_efficientnet_lite0-int8@")
        assert (float(row["probability"]) >= float(row["threshold"])) == (row["label"] == "PNEUMONIA")
    err = capsys.readouterr().err
    assert "record: 9 films under the folder, 7 scored, 2 could not be scored:" in err
    assert "  a/truncated.jpeg: truncated: " in err and "  b/notes.png: not_an_image: " in err


def test_rerun_scores_nothing_twice_and_jsonl_matches_csv(film_folder, tmp_path):
    out = tmp_path / "results.jsonl"
    assert score(film_folder, out) == 0
    first = out.read_text()
    assert score(film_folder, out) == 0
    records = [json.loads(line) for line in first.splitlines()]
    # the truncated film's error may be gone on a rerun (a film still being copied): it is retried
    def others(text):
        return [line for line in text.splitlines() if "truncated" not in line]

    assert others(out.read_text()) == others(first) and len(out.read_text().splitlines()) == 9
    csv_out = tmp_path / "results.csv"
    assert score(film_folder, csv_out, "--workers", 2) == 0
    by_path = {r["path"]: r for r in read_rows(csv_out)}
    for record in records:
        assert by_path[record["path"]].get("probability", "") == record.get("probability", "")


def test_any_file_name_round_trips_in_csv_and_jsonl(tmp_path, train_dir):
    folder = tmp_path / "films"
    folder.mkdir()
    film = sorted((train_dir / "NORMAL").glob("*.jpeg"))[0].read_bytes()
    odd = [b"caf\xe9_patient.jpeg", b"new\nline.jpeg", b"comma, \"quote\".jpeg", "ünïcode.jpeg".encode()]
    for name in odd:
        with open(os.fsencode(folder) + b"/" + name, "wb") as handle:
            handle.write(film)
    expected = sorted(os.fsdecode(name) for name in odd)
    for out in (tmp_path / "r.csv", tmp_path / "r.jsonl"):
        assert score(folder, out) == 0
        text = out.read_bytes().decode("utf-8")  # always valid UTF-8
        assert len(text.splitlines()) == len(odd) + (out.suffix == ".csv")  # one line per row
        rows = read_rows(out) if out.suffix == ".csv" else [json.loads(line) for line in text.splitlines()]
        assert sorted(names(rows)) == expected
        assert all(row["label"] == "NORMAL" for row in rows)
        assert score(folder, out) == 0
        assert out.read_bytes().decode("utf-8") == text  # nothing rescored: every name matched its row
    assert encode_path("caf\udce9.jpeg") == {"path": "caf\ufffd.jpeg",
                                             "path_b64": base64.urlsafe_b64encode(b"caf\xe9.jpeg").decode()}


def test_partial_last_line_is_dropped_and_superseded_rows_compacted(tmp_path):
    out = tmp_path / "r.csv"
    results = ResultsFile(out, "csv", IDENTITY)
    results.write({"path": "a.png", "probability": "0.5", "label": "NORMAL", **IDENTITY})
    results.write({"path": "new\nline.png", "error_code": "io_error", **IDENTITY})
    results.write({"path": "new\nline.png", "probability": "0.7", "label": "NORMAL", **IDENTITY})
    assert len(out.read_text().splitlines()) == 4  # header, three rows appended
    results._release()  # killed: no close, no compaction
    with open(out, "a") as handle:
        handle.write("b.png,deadbeef,0.7")  # killed mid-row
    again = ResultsFile(out, "csv", IDENTITY)
    assert set(again.current) == {"a.png", "new\nline.png"}
    assert again.current["new\nline.png"]["probability"] == "0.7"
    lines = out.read_text().splitlines(keepends=True)
    assert len(lines) == 3 and lines[0] == ",".join(COLUMNS) + "\n" and lines[1].startswith("a.png,")
    again.close()


def test_changed_truncated_and_errored_films_are_rescored_on_rerun(film_folder, tmp_path, train_dir, capsys):
    out = tmp_path / "results.csv"
    assert score(film_folder, out) == 0
    before = {r["path"]: r for r in read_rows(out)}
    truncated = film_folder / "a" / "truncated.jpeg"
    truncated.write_bytes((train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes())  # the copy finished
    replaced = next(p for p in sorted((film_folder / "a").glob("*.jpeg")) if p != truncated)
    shutil.copy(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[-1], replaced)  # same name, another film
    capsys.readouterr()
    assert score(film_folder, out) == 0
    assert "; scoring 2 with" in capsys.readouterr().err
    rows = read_rows(out)
    assert len(rows) == len(before) and len({r["path"] for r in rows}) == len(rows)  # compacted
    after = {r["path"]: r for r in rows}
    assert after["a/truncated.jpeg"]["label"] == "NORMAL" and not after["a/truncated.jpeg"]["error_code"]
    relative = replaced.relative_to(film_folder).as_posix()
    assert after[relative]["sha256"] != before[relative]["sha256"]
    assert score(film_folder, out) == 0
    assert "; scoring 0 with" in capsys.readouterr().err  # a permanent error (not_an_image) stands
    assert score(film_folder, out, "--retry-errors") == 0
    assert "; scoring 1 with" in capsys.readouterr().err
    # same size, same mtime, other bytes: only --check-content sees it
    good = film_folder / "full.png"
    info = good.stat()
    data = bytearray(good.read_bytes())
    data[-5] ^= 0xFF
    good.write_bytes(bytes(data))
    os.utime(good, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert score(film_folder, out) == 0
    assert "; scoring 0 with" in capsys.readouterr().err
    assert score(film_folder, out, "--check-content") == 0
    assert "; scoring 1 with" in capsys.readouterr().err


def test_another_model_or_a_foreign_file_is_refused_unless_new(film_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert score(film_folder, out) == 0
    first = out.read_text()
    capsys.readouterr()
    assert score(film_folder, out, "--model", "pneumo_shallow_int8") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds rows from model pneumo_efficientnet_lite0-int8@" in err and "--new" in err
    assert out.read_text() == first
    assert score(film_folder, out, "--model", "pneumo_shallow_int8", "--new") == 0
    assert {r["model"][:20] for r in read_rows(out)} == {"pneumo_shallow-int8@"}
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("results.csv.")]
    assert len(kept) == 1 and kept[0].read_text() == first
    foreign = tmp_path / "patients.csv"
    foreign.write_text("name,ward\nA,3\n")
    assert score(film_folder, foreign) == 1
    assert "is not a pneumo score header" in capsys.readouterr().err
    assert foreign.read_text() == "name,ward\nA,3\n"
    notes = tmp_path / "notes.jsonl"
    notes.write_text("hello\n")
    assert score(film_folder, notes) == 1 and notes.read_text() == "hello\n"


def test_a_second_writer_is_refused(film_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    holder = ResultsFile(out, "csv", IDENTITY)
    try:
        assert score(film_folder, out) == 1
        err = capsys.readouterr().err
        assert f"another pneumo score (pid {os.getpid()}) is writing {out}" in err and err.count("\n") == 1
    finally:
        holder.close()
    assert score(film_folder, out, "--new") == 0


def test_a_killed_worker_costs_one_row_and_no_hang(tmp_path, train_dir):
    folder = linked_films(tmp_path / "many", sorted((train_dir / "NORMAL").glob("*.jpeg"))[:80])
    out = tmp_path / "results.csv"
    process = subprocess.Popen(COMMAND + [str(folder), "--out", str(out), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim, loaded_at, deadline = None, None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        workers = [pid for pid in _children(process.pid) if b"spawn_main" in _cmdline(pid)]
        rows = out.read_text().count("\n") if out.exists() else 0
        if loaded_at is None and len(workers) == 2 and all(_has_model(pid) for pid in workers):
            loaded_at = rows  # both have loaded the model: from here on each always holds a film
            assert not _has_interpreter(process.pid)  # the parent holds none beside them
        elif loaded_at is not None and rows > loaded_at + 4:
            victim = workers[0]
        time.sleep(0.02)
    assert victim, "the workers should be scoring"
    os.kill(victim, signal.SIGKILL)
    _, err = process.communicate(timeout=120)  # no hang
    assert process.returncode == 0, err
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == sorted(p.name for p in folder.iterdir())
    died = [r for r in rows if r["error_code"] == "worker_died"]
    assert len(died) == 1 and "killed by SIGKILL" in died[0]["error"]
    assert f"  {died[0]['path']}: worker_died: " in err and "Traceback" not in err
    subprocess.run(COMMAND + [str(folder), "--out", str(out), "--workers", "2"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = read_rows(out)
    assert len(rows) == 80 and not any(r["error_code"] for r in rows)


def test_sigkill_then_resume_loses_no_film_and_scores_none_twice(tmp_path, train_dir):
    sources = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:300]
    folder = linked_films(tmp_path / "many", sources)
    out = tmp_path / "results.csv"
    command = COMMAND + [str(folder), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some rows are written, well before the end
        if out.exists() and out.read_text().count("\n") > 20:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = out.read_text().count("\n") - 1
    assert 0 < written < len(sources), "the kill should land mid-batch"
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = read_rows(out)
    paths = [r["path"] for r in rows]
    assert sorted(paths) == sorted(p.name for p in sources)
    assert len(paths) == len(set(paths))
    assert all(len(r["sha256"]) == 64 for r in rows)
    assert all(r["label"] in ("NORMAL", "PNEUMONIA") or r["error_code"] == "out_of_scope" for r in rows)


def test_ctrl_c_says_how_to_resume(tmp_path, train_dir):
    folder = linked_films(tmp_path / "many", sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:300])
    out = tmp_path / "results.csv"
    process = subprocess.Popen(COMMAND + [str(folder), "--out", str(out), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") > 10):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    assert "run the same command again to score the rest" in err
    assert not _children(process.pid)


def test_file_size_limit_refuses_before_reading(tmp_path, film_folder):
    dump = film_folder / "SCANNER_DUMP"  # no extension: taken, as DICOM often has none
    with open(dump, "wb") as handle:
        handle.truncate(3 << 30)  # 3 GB, sparse: reading it would take 3 GB of memory
    out = tmp_path / "results.csv"
    started = time.monotonic()
    assert score(film_folder, out, "--max-file-mb", 50) == 0
    assert time.monotonic() - started < 60
    row = {r["path"]: r for r in read_rows(out)}["SCANNER_DUMP"]
    assert row["error_code"] == "too_large" and "3072.0 MB is over the --max-file-mb limit of 50 MB" in row["error"]


def test_symlinked_folders_are_followed_once_and_passed_over_files_counted(tmp_path, train_dir, capsys):
    folder = tmp_path / "films"
    (folder / "own").mkdir(parents=True)
    shutil.copy(sorted((train_dir / "NORMAL").glob("*.jpeg"))[0], folder / "own")
    linked_films(tmp_path / "elsewhere", sorted((train_dir / "NORMAL").glob("*.jpeg"))[1:4])
    os.symlink(tmp_path / "elsewhere", folder / "linked")
    os.symlink(folder, folder / "own" / "loop")  # back to the top: walked once
    os.symlink(tmp_path / "gone", folder / "broken")
    (folder / "readme.txt").write_text("notes")
    (folder / ".DS_Store").write_text("")
    os.mkfifo(folder / "pipe.dcm")
    found = walk(folder)
    assert [e.relative for e in found.films] == ["linked/" + p.name for p in sorted(
        (tmp_path / "elsewhere").iterdir())] + ["own/" + sorted((folder / "own").glob("*.jpeg"))[0].name]
    assert found.repeated == ["own/loop"]
    assert dict(found.skipped) == {"broken link(s)": 1, "file(s) not films by extension": 1,
                                   "hidden file(s)": 1, "not regular file(s)": 1}
    assert score(folder, tmp_path / "r.csv") == 0
    err = capsys.readouterr().err
    assert "4 films under" in err and "passed over: 1 broken link(s)" in err and "own/loop" in err


def test_an_unreadable_folder_is_reported(tmp_path, train_dir):
    folder = tmp_path / "films"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(sorted((train_dir / "NORMAL").glob("*.jpeg"))[0], folder)
    (folder / "locked").chmod(0)
    command = COMMAND + [str(folder), "--out", str(tmp_path / "r.csv")]
    if os.geteuid() == 0:  # root reads any folder: run without the capabilities that allow it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: no way to make a folder unreadable")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] + command
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        (folder / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert "1 unreadable folder(s): locked (Permission denied)" in done.stderr


def test_heatmaps_cannot_collide_keep_the_aspect_ratio_and_stay_out_of_the_walk(tmp_path, train_dir, fullsize_dir,
                                                                                  capsys):
    folder = tmp_path / "films"
    (folder / "a").mkdir(parents=True)
    shutil.copy(sorted((train_dir / "NORMAL").glob("*.jpeg"))[0], folder / "a" / "b.jpeg")
    shutil.copy(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[0], folder / "a__b.jpeg")
    with Image.open(sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[1]) as film:  # a child's: in scope
        film.resize((1024, 700)).save(folder / "wide.png")
    heatmaps, out = folder / "heatmaps", tmp_path / "results.csv"
    assert score(folder, out, "--heatmap", heatmaps) == 0
    rows = {r["path"]: r for r in read_rows(out)}
    assert set(rows) == {"a/b.jpeg", "a__b.jpeg", "wide.png"}
    assert len({r["heatmap"] for r in rows.values()}) == 3
    assert Path(rows["a/b.jpeg"]["heatmap"]) == heatmaps / "a" / "b.jpeg.heatmap.jpg"
    with Image.open(rows["wide.png"]["heatmap"]) as overlay:
        assert overlay.format == "JPEG" and overlay.mode == "RGB"
        assert overlay.size == (448, 306 + 30)  # the film's 1024 x 700, long side 448, above a 30 px legend
        legend = overlay.convert("RGB").crop((0, 310, 448, 316))
        assert legend.getpixel((2, 2))[2] > 100 and legend.getpixel((445, 2))[0] > 200  # blue to red
    capsys.readouterr()
    assert score(folder, out, "--heatmap", heatmaps) == 0
    assert "3 films under" in capsys.readouterr().err  # the overlays are not films to score


def test_heatmap_with_a_model_that_has_none_is_one_clear_error(film_folder, tmp_path, capsys):
    assert score(film_folder, tmp_path / "r.csv", "--model", "pneumo_shallow_int8", "--heatmap", tmp_path / "h") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no class activation map" in err
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["--out", "{tmp}/missing/r.csv"], "the folder {tmp}/missing does not exist"),
    (["--out", "{tmp}"], "is a folder; give a file name"),
    (["--out", "{tmp}/r.csv", "--threads", "-1"], "argument --threads: must be 1 or more, not -1"),
    (["--out", "{tmp}/r.csv", "--workers", "0"], "argument --workers: must be 1 or more, not 0"),
    (["--out", "{tmp}/r.csv", "--model", "no_such_model"], "no model 'no_such_model': give a .tflite path or one of"),
])
def test_bad_arguments_are_one_line(film_folder, tmp_path, capsys, argv, message):
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    try:
        code = main(["score", str(film_folder), *argv])
    except SystemExit as exc:  # argparse: usage line + error line
        code = exc.code
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err
    assert message.format(tmp=tmp_path) in err.strip().splitlines()[-1]  # argparse's usage, then one line


def test_shipped_model_names_and_an_empty_folder(film_folder, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert score(film_folder, out, "--model", "pneumo_shallow_int8") == 0
    assert all(r["model"].startswith("pneumo_shallow-int8@") for r in read_rows(out))
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert score(empty, tmp_path / "e.csv") == 1
    assert "warning: no films under" in capsys.readouterr().err


def test_runtime_and_pillow_messages_stay_off_the_terminal_unless_verbose(tmp_path, film_folder):
    # a PNG claiming 10000 x 10000 pixels: Pillow warns (DecompressionBombWarning) on opening it
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    (film_folder / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (10000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
        + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    quiet = subprocess.run(COMMAND + [str(film_folder), "--out", str(tmp_path / "q.csv")],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0
    assert "XNNPACK" not in quiet.stderr and "Warning" not in quiet.stderr
    assert "  bomb.png: decompression_bomb: " in quiet.stderr
    pooled = subprocess.run(COMMAND + [str(film_folder), "--out", str(tmp_path / "p.csv"), "--workers", "2"],
                            capture_output=True, text=True, timeout=120)
    assert pooled.returncode == 0 and "XNNPACK" not in pooled.stderr and "Warning" not in pooled.stderr
    loud = subprocess.run(COMMAND + [str(film_folder), "--out", str(tmp_path / "v.csv"), "--verbose"],
                          capture_output=True, text=True, timeout=120)
    assert "DecompressionBombWarning" in loud.stderr
    if load_runtime().name == "ai_edge_litert":  # tflite-runtime 2.14 says nothing of XNNPACK on an int8 model
        assert "XNNPACK" in loud.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (room for a few dozen overlays), where this machine lets the test mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root: disk-full is not tested here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): disk-full is not tested")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_loses_nothing(film_folder, tmp_path, small_disk, train_dir, capsys):
    # 29 films: their rows are more than the slack in the results file's last 4 KB page
    linked_films(film_folder / "more", sorted((train_dir / "NORMAL").glob("*.jpeg"))[10:30])
    out = small_disk / "results.csv"
    assert score(film_folder, out) == 0
    filler = _fill(small_disk)
    for film in film_folder.rglob("*.*"):
        os.utime(film)  # every film changed: the rerun appends a row for each, into a full disk
    capsys.readouterr()
    assert score(film_folder, out) == 1
    err = capsys.readouterr().err
    assert f"pneumo score: cannot write {out}: No space left on device" in err and "Traceback" not in err
    assert len(err.splitlines()) < 8
    filler.unlink()
    assert score(film_folder, out) == 0
    rows = read_rows(out)
    assert len(rows) == 29 and len({r["path"] for r in rows}) == 29
    # heatmaps onto a full disk: the rows say so, and a rerun draws them once there is room
    filler = _fill(small_disk)
    heat_out = tmp_path / "h.csv"
    assert score(film_folder, heat_out, "--heatmap", small_disk / "heat") == 0
    full = [r for r in read_rows(heat_out) if r["error_code"] == "disk_full"]
    refused = sum(r["error_code"] == "out_of_scope" for r in read_rows(heat_out))  # the adult film: no map drawn
    assert len(full) == 27 - refused and all(r["label"] and "cannot write its heatmap" in r["error"] for r in full)
    filler.unlink()
    capsys.readouterr()
    assert score(film_folder, heat_out, "--heatmap", small_disk / "heat") == 0
    assert f"; scoring {len(full) + 1} with" in capsys.readouterr().err  # those and the truncated film
    rows = read_rows(heat_out)
    assert len(rows) == 29 and "disk_full" not in {r["error_code"] for r in rows}
    assert all(Path(r["heatmap"]).stat().st_size > 0 for r in rows if not r["error_code"])


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536 if shutil.disk_usage(disk).free > 65536 else b"\0" * 4096)
        except OSError:
            pass
    return filler


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _has_model(pid: int) -> bool:
    try:
        return b".tflite" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False


def _has_interpreter(pid: int) -> bool:
    """Whether the process has a model or an interpreter runtime's library mapped."""
    maps = Path(f"/proc/{pid}/maps").read_bytes()
    return any(name in maps for name in (b".tflite", b"ai_edge_litert", b"tflite_runtime", b"tensorflow"))


def test_a_pool_whose_workers_cannot_load_the_model_stops_with_their_reason(film_folder, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tflite_runtime") is not None:
        pytest.skip("tflite-runtime is installed here: forcing it cannot fail")
    alone = subprocess.run(COMMAND + [str(film_folder), "--out", str(tmp_path / "a.csv"), "--workers", "1",
                                      "--runtime", "tflite_runtime"], capture_output=True, text=True, timeout=120)
    pooled = subprocess.run(COMMAND + [str(film_folder), "--out", str(tmp_path / "p.csv"), "--workers", "2",
                                       "--runtime", "tflite_runtime"], capture_output=True, text=True, timeout=120)
    assert alone.returncode == pooled.returncode == 1
    reason = alone.stderr.strip().splitlines()[-1]
    assert "tflite_runtime" in reason and pooled.stderr.strip().splitlines()[-1] == reason
    assert "Traceback" not in pooled.stderr


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

