"""Batch scoring: every film gets one row, errors on their rows, and SIGKILL loses nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pneumo_edge.edge.cli import main
from pneumo_edge.edge.commands.results_file import ResultsFile
from pneumo_edge.edge.commands.score import walk


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_walk_is_recursive_and_sorted(film_folder):
    films = walk(film_folder)
    assert films == sorted(films)
    assert "b/c/" + sorted(p.name for p in (film_folder / "b" / "c").iterdir())[0] in films
    assert "b/notes.png" in films and "a/truncated.jpeg" in films


def test_score_writes_one_row_per_film_with_errors_on_their_rows(film_folder, tmp_path):
    out = tmp_path / "results.csv"
    assert main(["score", str(film_folder), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert [r["path"] for r in rows] == walk(film_folder)
    by_path = {r["path"]: r for r in rows}
    assert by_path["a/truncated.jpeg"]["error_code"] == "truncated"
    assert by_path["b/notes.png"]["error_code"] == "not_an_image"
    good = [r for r in rows if not r["error"]]
    assert len(good) == 7
    for row in good:
        assert row["label"] in ("NORMAL", "PNEUMONIA")
        assert 0 <= float(row["probability"]) <= 1
        assert len(row["sha256"]) == 64 and row["model"].startswith("pneumo_mobilenet-int8@")
        assert (float(row["probability"]) >= float(row["threshold"])) == (row["label"] == "PNEUMONIA")


def test_rerun_scores_nothing_twice_and_jsonl_matches_csv(film_folder, tmp_path):
    out = tmp_path / "results.jsonl"
    assert main(["score", str(film_folder), "--out", str(out)]) == 0
    first = out.read_text()
    assert main(["score", str(film_folder), "--out", str(out)]) == 0
    assert out.read_text() == first
    records = [json.loads(line) for line in first.splitlines()]
    csv_out = tmp_path / "results.csv"
    main(["score", str(film_folder), "--out", str(csv_out), "--workers", "2"])
    by_path = {r["path"]: r for r in read_rows(csv_out)}
    for record in records:
        assert by_path[record["path"]].get("probability", "") == record.get("probability", "")


def test_partial_last_line_is_dropped_on_resume(tmp_path):
    out = tmp_path / "r.csv"
    results = ResultsFile(out, "csv")
    results.write({"path": "a.png", "probability": "0.5", "label": "NORMAL"})
    results.close()
    with open(out, "a") as handle:
        handle.write("b.png,deadbeef,0.7")  # killed mid-row
    assert ResultsFile(out, "csv").done == {"a.png"}
    lines = out.read_text().splitlines(keepends=True)
    assert len(lines) == 2 and lines[1].startswith("a.png,") and lines[1].endswith("\n")


def test_sigkill_then_resume_loses_no_film_and_scores_none_twice(tmp_path, train_dir):
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:300]
    for path in sources:
        os.symlink(path, folder / path.name)
    out = tmp_path / "results.csv"
    command = [sys.executable, "-m", "pneumo_edge.edge.cli", "score", str(folder), "--out", str(out)]
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
    assert all(r["label"] in ("NORMAL", "PNEUMONIA") and len(r["sha256"]) == 64 for r in rows)
