"""The scorer: decoding runs outside the interpreter's lock, in a bounded number of slots."""

from __future__ import annotations

import threading

import pytest

from pneumo_edge.edge.classifier import Classifier, Options
from pneumo_edge.edge.web.scoring import DECODE_WORKERS, Busy, Scorer


@pytest.fixture(scope="module")
def classifier():
    return Classifier(Options())


def test_a_slow_decode_delays_only_its_own_film(classifier, train_dir, monkeypatch):
    film = (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    scorer = Scorer(classifier, queue=4)
    release, decoding = threading.Event(), threading.Event()
    real_read = classifier.read

    def read(data):
        if data == b"slow":
            decoding.set()
            release.wait(30)
        return real_read(film)

    monkeypatch.setattr(classifier, "read", read)
    slow = threading.Thread(target=scorer.score, args=(b"slow",))
    slow.start()
    try:
        assert decoding.wait(10)
        result = scorer.score(film)  # answered while the slow film is still decoding
        assert slow.is_alive() and result["label"] == classifier.predict(film).label
        assert scorer.in_use == 1
    finally:
        release.set()
        slow.join(30)
    assert scorer.in_use == 0


def test_decodes_at_once_are_bounded_and_the_queue_still_refuses(classifier, train_dir, monkeypatch):
    film = (train_dir / "NORMAL" / "IM-0115-0001.jpeg").read_bytes()
    scorer = Scorer(classifier, queue=DECODE_WORKERS + 1)
    release = threading.Event()
    lock = threading.Lock()
    active = [0, 0]  # now, most at once
    real_read = classifier.read

    def read(data):
        with lock:
            active[0] += 1
            active[1] = max(active)
        release.wait(30)
        with lock:
            active[0] -= 1
        return real_read(data)

    monkeypatch.setattr(classifier, "read", read)
    threads = [threading.Thread(target=scorer.score, args=(film,)) for _ in range(scorer.capacity)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(200):
            if scorer.in_use == scorer.capacity and active[0] == DECODE_WORKERS:
                break
            threading.Event().wait(0.05)
        assert scorer.in_use == scorer.capacity and active[0] == DECODE_WORKERS
        with pytest.raises(Busy):
            scorer.score(film)
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert active[1] == DECODE_WORKERS
