"""Shared fixtures: the project's films live in ../shared/data beside the checkout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PNEUMO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "chest_xray" / "train").is_dir():
        pytest.fail(f"the shared films are missing: expected {SHARED_DATA} (set PNEUMO_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def train_dir(shared_data) -> Path:
    return shared_data / "chest_xray" / "train"


@pytest.fixture(scope="session")
def fullres_dir(shared_data) -> Path:
    return shared_data / "fullres"


@pytest.fixture(scope="session")
def fullsize_dir(tmp_path_factory, train_dir) -> Path:
    """Children's films at a scanner's size (hostile_films.fullsize_films): the shared full-size
    films are adults', which the default model refuses as out of scope."""
    from hostile_films import fullsize_films

    return fullsize_films(train_dir, tmp_path_factory.mktemp("fullsize"))


@pytest.fixture
def film_folder(tmp_path, train_dir, fullsize_dir) -> Path:
    """A small folder of real films in sub-folders, plus one corrupt and one non-image file."""
    folder = tmp_path / "films"
    (folder / "a").mkdir(parents=True)
    (folder / "b" / "c").mkdir(parents=True)
    for i, path in enumerate(sorted((train_dir / "NORMAL").glob("*.jpeg"))[:3]
                             + sorted((train_dir / "PNEUMONIA").glob("*.jpeg"))[:3]):
        shutil.copy(path, folder / ("a" if i % 2 else "b/c") / path.name)
    shutil.copy(sorted(fullsize_dir.glob("*.png"))[0], folder / "full.png")
    good = (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    (folder / "a" / "truncated.jpeg").write_bytes(good[: len(good) // 3])
    (folder / "b" / "notes.png").write_text("not a film")
    return folder


@pytest.fixture(scope="session")
def scope_model(tmp_path_factory, train_dir, fullres_dir):
    """A tiny int8 model whose card carries a fitted out-of-scope check: (path, details)."""
    pytest.importorskip("tensorflow")
    from scope_model import build_scope_model

    return build_scope_model(tmp_path_factory.mktemp("scope_model"), train_dir, fullres_dir)
