"""Reading a film a manifest names: a local path, or a URI through pyarrow's filesystems.

The same bounds as a film in a folder (:func:`~..commands.score_row.read_stream`): the
size is known before any byte is read, and the read stops past ``--max-file-mb``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..commands.score_row import read_bounded, read_stream
from ..errors import FilmError
from .arrow import require_pyarrow


def is_uri(name: str) -> bool:
    return "://" in name


def read_location(base: str, name: str, max_bytes: int, row: dict) -> bytes:
    """The bytes of ``name`` (a URI, an absolute path, or a path under ``base``); size and mtime go on ``row``."""
    if is_uri(name):
        return _read_uri(name, max_bytes, row)
    path = Path(base, name)
    try:
        return read_bounded(path, max_bytes, row)
    except FileNotFoundError:
        raise FilmError(f"no such file: {path}", code="not_found") from None


def _read_uri(uri: str, max_bytes: int, row: dict) -> bytes:
    from pyarrow.fs import FileType

    filesystem, strip = _filesystem(*urlsplit(uri)[:2])
    inner = uri[strip:]
    info = filesystem.get_file_info(inner)
    if info.type == FileType.NotFound:
        raise FilmError(f"no such object: {uri}", code="not_found")
    if info.type != FileType.File:
        raise FilmError(f"not a file: {uri}", code="not_a_file")
    row.update(size=info.size, mtime_ns=info.mtime_ns if info.mtime_ns is not None else "")
    with filesystem.open_input_stream(inner) as handle:
        return read_stream(handle, info.size, max_bytes)


#: (scheme, host) -> (filesystem, characters of a URI before its path there); one per actor process
_FILESYSTEMS: dict[tuple[str, str], tuple[object, int]] = {}


def _filesystem(scheme: str, netloc: str) -> tuple[object, int]:
    """One filesystem per scheme and host (building an S3 one looks up the bucket's region), and how many
    leading characters of a URI to drop for its path there (S3 keeps the bucket in the path, HDFS drops the
    host). URIs are taken literally: ``%20`` stays three characters, as S3 keys may hold them."""
    if (scheme, netloc) not in _FILESYSTEMS:
        require_pyarrow("reading films by URI")
        from pyarrow.fs import FileSystem

        probe = f"{scheme}://{netloc}/x"
        filesystem, inner = FileSystem.from_uri(probe)
        _FILESYSTEMS[scheme, netloc] = filesystem, len(probe) - len(inner)
    return _FILESYSTEMS[scheme, netloc]
