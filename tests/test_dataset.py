"""Labelled film listing and the split by patient."""

from __future__ import annotations

import pytest

from pneumo_edge.edge.errors import DataError
from pneumo_edge.edge.labelled.listing import list_films, parse_label, patient_id
from pneumo_edge.train.splits import count_table, split_by_patient


@pytest.mark.parametrize("name, patient", [
    ("IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-0427-0001.jpeg", "NORMAL2-IM-0427"),
    ("person1017_bacteria_2948.jpeg", "person1017"),
    ("person1019_virus_1708.jpeg", "person1019"),
    ("scan_0001.png", "scan_0001"),
])
def test_patient_id(name, patient):
    assert patient_id(name) == patient


def test_split_keeps_every_patient_on_one_side(train_dir):
    films = list_films(train_dir)
    assert len(films) == 5216
    train, val = split_by_patient(films, 0.15, seed=0)
    assert len(train) + len(val) == len(films)
    assert not {f.patient for f in train} & {f.patient for f in val}
    # person23 has 30 films: all of them on one side
    sides = {f in val for f in films if f.patient == "person23"}
    assert len(sides) == 1
    share = len(val) / len(films)
    assert 0.13 < share < 0.18
    for label in (0, 1):  # stratified: each class near the fraction
        n = sum(f.label == label for f in films)
        assert 0.13 < sum(f.label == label for f in val) / n < 0.18


def test_same_seed_same_split_other_seed_other_split(train_dir):
    films = list_films(train_dir)
    a = split_by_patient(films, 0.15, seed=3)[1]
    b = split_by_patient(list(reversed(films)), 0.15, seed=3)[1]
    c = split_by_patient(films, 0.15, seed=4)[1]
    assert {f.path for f in a} == {f.path for f in b}
    assert {f.path for f in a} != {f.path for f in c}


def test_layouts_and_csv(tmp_path, train_dir):
    root = tmp_path / "data"
    for split, cls in (("train", "normal"), ("train", "Pneumonia"), ("test", "NORMAL")):
        (root / split / cls).mkdir(parents=True)
    src = sorted((train_dir / "NORMAL").glob("*.jpeg"))[0]
    (root / "train" / "normal" / "a.jpeg").write_bytes(src.read_bytes())
    (root / "train" / "Pneumonia" / "b.jpeg").write_bytes(src.read_bytes())
    (root / "test" / "NORMAL" / "c.jpeg").write_bytes(src.read_bytes())
    assert [(f.path.name, f.label) for f in list_films(root)] == [("a.jpeg", 0), ("b.jpeg", 1)]
    assert [f.path.name for f in list_films(root, "test")] == ["c.jpeg"]
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\ndata/train/normal/a.jpeg,NORMAL\ndata/train/Pneumonia/b.jpeg,pneumonia\n")
    assert [(f.path, f.label) for f in list_films(labels)] == [
        (tmp_path / "data/train/normal/a.jpeg", 0), (tmp_path / "data/train/Pneumonia/b.jpeg", 1)]
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nx.png,COVID\n")
    with pytest.raises(DataError, match="bad.csv:2: unknown label 'COVID'"):
        list_films(bad)
    assert "NORMAL" in count_table({"train": list_films(root)})


def test_parse_label():
    assert parse_label(" normal ") == 0 and parse_label("1") == 1
