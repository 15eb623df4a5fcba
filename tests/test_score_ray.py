"""``pneumo score --engine ray`` on a real local Ray of 2 CPUs: the local engine's rows, resumable after a kill.

One Ray is started for the module (start-up takes seconds on 2 cores); the in-process runs
use it, and the driver processes killed mid-run join it by its address, as a driver joins
a cluster. Without ``ray[data]`` (the ``[cluster]`` extra) the Ray tests are skipped.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pneumo_edge.edge.cli import main
from pneumo_edge.edge.commands.results_file import decode_path

COMMAND = [sys.executable, "-m", "pneumo_edge.edge.cli", "score"]
CORRUPT, NOT_AN_IMAGE = "a/cut.jpeg", "b/notes.png"


def read_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_film = {decode_path(row): row for row in rows}
    assert len(by_film) == len(rows), "a film has two rows"
    return by_film


def read_parquet(folder: Path) -> dict[str, dict]:
    import pyarrow.dataset

    rows = pyarrow.dataset.dataset(folder, format="parquet").to_table().to_pylist()
    by_film = {decode_path(row): row for row in rows}
    assert len(by_film) == len(rows), "a film has two rows"
    return by_film


def without_ms(rows: dict[str, dict]) -> dict[str, dict]:
    """Rows as compared across engines: everything but the time each film took."""
    return {film: {key: value for key, value in row.items() if key != "ms"} for film, row in rows.items()}


@pytest.fixture(scope="module")
def ray_address():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        pytest.skip("ray[data] is not installed (pip install '.[cluster]'): the ray engine cannot run here")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def films(tmp_path_factory, train_dir, fullres_dir) -> Path:
    """24 small films of both classes in sub-folders, one full-size film, one corrupt film, one non-image."""
    folder = tmp_path_factory.mktemp("ray_films") / "films"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for i, path in enumerate(sorted((train_dir / "NORMAL").glob("*.jpeg"))[:12]
                             + sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:12]):
        shutil.copy(path, folder / "ab"[i % 2] / path.name)
    shutil.copy(sorted(fullres_dir.glob("*.png"))[1], folder / "full.png")
    good = (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    (folder / CORRUPT).write_bytes(good[: len(good) // 3])
    (folder / NOT_AN_IMAGE).write_text("not a film")
    return folder


@pytest.fixture(scope="module")
def local_rows(films, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("local") / "local.csv"
    assert main(["score", str(films), "--out", str(out)]) == 0
    return read_csv(out)


def test_ray_rows_equal_the_local_engines_bit_for_bit(ray_address, films, local_rows, tmp_path, capsys):
    out = tmp_path / "ray.csv"
    assert main(["score", str(films), "--out", str(out), "--engine", "ray"]) == 0
    rows = read_csv(out)
    assert without_ms(rows) == without_ms(local_rows)
    scored = [row for row in rows.values() if row["probability"]]
    assert len(scored) >= 20 and all(len(row["sha256"]) == 64 for row in scored)
    assert rows[CORRUPT]["error_code"] == "truncated" and not rows[CORRUPT]["probability"]
    assert rows[NOT_AN_IMAGE]["error_code"] == "not_an_image"
    err = capsys.readouterr().err
    assert "using the Ray this process had joined" in err and "2 actor(s) x 1 thread(s)" in err
    assert f"  {CORRUPT}: truncated: " in err and "27/27" in err and "errors 4" in err


def test_without_an_address_a_run_starts_its_own_ray_and_stops_it(ray_address, films, local_rows, tmp_path):
    out = tmp_path / "own.csv"
    result = subprocess.run(COMMAND + [str(films), "--out", str(out), "--engine", "ray"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "started on this machine" in result.stderr and "Traceback" not in result.stderr
    assert without_ms(read_csv(out)) == without_ms(local_rows)


def test_parquet_dataset_holds_the_same_rows_once_each_after_a_rerun(ray_address, films, local_rows, tmp_path):
    out = tmp_path / "results"
    assert main(["score", str(films), "--out", str(out), "--engine", "ray", "--format", "parquet"]) == 0
    assert without_ms(read_parquet(out)) == without_ms(local_rows)
    assert main(["score", str(films), "--out", str(out), "--engine", "ray"]) == 0  # a folder: parquet again
    rows = read_parquet(out)  # the corrupt film (a transient error) was scored again and its old row dropped
    assert without_ms(rows) == without_ms(local_rows)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_manifest_path_that_is_missing_gets_its_error_row(ray_address, films, local_rows, tmp_path):
    named = {"a/" + sorted(p.name for p in (films / "a").glob("*.jpeg"))[0]: "relative",
             "full.png": "absolute", "b/" + sorted(p.name for p in (films / "b").glob("*.jpeg"))[0]: "uri"}
    lines = ["path"]
    for film, how in named.items():
        lines.append({"relative": f"films/{film}", "absolute": str(films / film),
                      "uri": (films / film).as_uri()}[how])
    lines += ["films/gone.jpeg", (films / "gone.png").as_uri(), "", f"films/{CORRUPT}"]
    manifest = films.parent / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "manifest.csv"
    assert main(["score", str(manifest), "--out", str(out), "--engine", "ray"]) == 0
    rows = read_csv(out)
    assert sorted(rows) == sorted(line for line in lines[1:] if line)
    for name, film in zip(lines[1:4], named):
        assert without_ms({film: {**rows[name], "path": film}}) == without_ms({film: local_rows[film]})
    assert rows["films/gone.jpeg"]["error_code"] == "not_found"
    assert rows[(films / "gone.png").as_uri()]["error_code"] == "not_found"
    assert rows[f"films/{CORRUPT}"]["error_code"] == "truncated"


@pytest.mark.parametrize("fmt, count", [("csv", 160), ("parquet", 800)])
def test_sigkill_of_the_driver_then_a_rerun_scores_every_film_once(ray_address, train_dir, tmp_path, fmt, count):
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:count]
    for path in sources:
        os.symlink(path, folder / path.name)
    out = tmp_path / ("results.csv" if fmt == "csv" else "results")
    command = COMMAND + [str(folder), "--out", str(out), "--format", fmt, "--engine", "ray",
                         "--ray-address", ray_address]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # kill once some rows are on disk
        if (fmt == "csv" and out.exists() and out.read_text().count("\n") > 20) or \
                (fmt == "parquet" and out.is_dir() and any(out.glob("part-*.parquet"))):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = read_csv(out) if fmt == "csv" else read_parquet(out)
    assert 0 < len(written) < count, "the kill should land mid-run"
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    rows = read_csv(out) if fmt == "csv" else read_parquet(out)  # each asserts one row per film
    assert sorted(rows) == sorted(path.name for path in sources)
    assert all(row["label"] in ("NORMAL", "PNEUMONIA") or row["error_code"] == "out_of_scope"
               for row in rows.values())
    assert all(rows[film] == row for film, row in written.items())  # finished rows were kept, not redone


def test_ctrl_c_keeps_every_row_and_says_how_to_resume(ray_address, train_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for path in sorted((train_dir / "NORMAL").glob("*.jpeg"))[:400]:
        os.symlink(path, folder / path.name)
    out = tmp_path / "results.csv"
    process = subprocess.Popen(COMMAND + [str(folder), "--out", str(out), "--engine", "ray", "--ray-address",
                                          ray_address], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") > 40):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err
    assert "run the same command again to score the rest" in err
    assert 0 < len(read_csv(out)) < 400


def test_a_killed_actor_worker_costs_no_row_and_no_duplicate(ray_address, train_dir, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    sources = sorted((train_dir / "NORMAL").glob("*.jpeg"))[:400]
    for path in sources:
        os.symlink(path, folder / path.name)
    out = tmp_path / "results.csv"
    process = subprocess.Popen(COMMAND + [str(folder), "--out", str(out), "--engine", "ray", "--ray-address",
                                          ray_address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text().count("\n") > 40:
            victim = next(iter(_actor_workers(os.getpid())), None)  # this module's Ray is this process's child
        time.sleep(0.02)
    assert victim, "an actor should be scoring"
    os.kill(victim, signal.SIGKILL)
    assert process.wait(timeout=240) == 0
    rows = read_csv(out)  # asserts one row per film
    assert sorted(rows) == sorted(path.name for path in sources)
    assert not [row for row in rows.values() if row["error_code"] not in ("", "out_of_scope")]


def _actor_workers(root: int) -> list[int]:
    """Ray Data actor processes descended from ``root`` (Ray names them ``ray::MapWorker...``)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root:
                return True
        return False

    found = []
    for pid in parents:
        try:
            named = Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::MapWorker")
        except OSError:
            continue
        if named and descends(pid):
            found.append(pid)
    return found


def test_without_ray_the_ray_engine_is_one_line_naming_the_extra(films, tmp_path):
    out = tmp_path / "results.csv"
    code = ("import sys; sys.modules['ray'] = None; from pneumo_edge.edge.cli import main; "
            f"sys.exit(main(['score', {str(films)!r}, '--out', {str(out)!r}, '--engine', 'ray']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "pneumo score: --engine ray needs ray: pip install 'pneumo-edge[cluster]'"]
    assert not out.exists()


def test_the_local_engine_never_imports_ray_or_pyarrow(films, tmp_path):
    out = tmp_path / "results.csv"
    code = ("import sys, json; from pneumo_edge.edge.cli import main; "
            f"rc = main(['score', {str(films)!r}, '--out', {str(out)!r}]); "
            "print(json.dumps({'rc': rc, 'loaded': sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('ray', 'pyarrow'))}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"rc": 0, "loaded": []}
