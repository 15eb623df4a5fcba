"""The Ray Data actor of ``pneumo score --engine ray``: one classifier per actor, films read inside it.

Each actor builds its context once with the very ``make_context`` partial the local engine's
worker processes use, then scores every film of a batch with
:func:`~..commands.score_row.score_one`, so both engines write the same rows. Only names
travel to an actor, and only rows come back.

Names go as bytes (``os.fsencode``), since a file name need not be valid UTF-8 and Arrow
text must be; every other field goes as text, as the results file writes it
(:func:`~..commands.results_file.field_text`), with the same columns in every batch.
"""

from __future__ import annotations

import os
from typing import Callable

from ..commands.results_file import COLUMNS, field_text

NAME = "name"
#: The text fields of a row in a batch: every column but the name, which travels as bytes.
FIELDS = [key for key in COLUMNS if key not in ("path", "path_b64")]


class Scorer:
    """The callable class for ``map_batches``: a batch of names in, a batch of rows out."""

    def __init__(self, make: Callable):
        from ..commands.score_row import score_one

        self.context, self.score = make(), score_one

    def __call__(self, batch):
        import pyarrow as pa

        rows = [self.score(self.context, os.fsdecode(name)) for name in batch.column(NAME).to_pylist()]
        columns = {NAME: pa.array([os.fsencode(row["path"]) for row in rows], pa.binary())}
        for key in FIELDS:
            columns[key] = pa.array([field_text(key, row.get(key)) for row in rows], pa.string())
        return pa.table(columns)


def name_items(films: list[str]) -> list[dict]:
    """The items the driver hands to Ray Data: names only."""
    return [{NAME: os.fsencode(film)} for film in films]


def rows_of(table) -> list[dict]:
    """The rows of a batch an actor returned, as ``score_one`` made them (absent fields left out)."""
    names = table.column(NAME).to_pylist()
    columns = {key: table.column(key).to_pylist() for key in FIELDS}
    return [{"path": os.fsdecode(name), **{key: columns[key][i] for key in FIELDS if columns[key][i]}}
            for i, name in enumerate(names)]
