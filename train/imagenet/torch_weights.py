"""Read a legacy ``torch.save`` state_dict without torch.

The EfficientNet-Lite0 ImageNet weights ship as one legacy (pre-zip) ``torch.save``
file: a few pickles in a row (magic number, protocol, system info, the state_dict
whose tensors point at storages by key, the list of storage keys), then each
storage's raw bytes. Unpickling runs code named by the file, so this unpickler
resolves only the four names a state_dict of float and integer tensors needs and
refuses any other.

Tensors are views: the file keeps TensorFlow's memory order (a conv kernel's
stride is (1, O, ...), not contiguous), so each tensor is rebuilt with its offset,
size and stride. Reading the bytes as if contiguous gives weights that still
"train" but are garbage.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...edge.card import sha256_file

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32}


class TorchFileError(ValueError):
    """The file is not a legacy torch state_dict this reader accepts."""


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorView:
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        itemsize = data.itemsize
        if self.size and self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= len(data):
            raise TorchFileError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=[s * itemsize for s in self.stride], writeable=False)
        return np.array(view)  # contiguous copy in the tensor's logical order


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorView(storage, int(storage_offset), tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, handle, storages: dict):
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise TorchFileError(f"refusing to load {module}.{name}: not part of a plain state_dict")

    def persistent_load(self, pid):
        # ("storage", type, key, location, numel, view metadata); views of a storage are not used
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[5] is None):
            raise TorchFileError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, _view = pid
        if storage_type not in _STORAGE_DTYPES:
            raise TorchFileError(f"unsupported storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_STORAGE_DTYPES[storage_type], int(numel))
        return self.storages[key]


def load_state_dict(path: str | Path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """The state_dict in ``path`` as numpy arrays, in each tensor's logical (PyTorch) order."""
    path = Path(path)
    if sha256 is not None and sha256_file(path) != sha256:
        raise TorchFileError(f"{path.name} does not have the expected sha256 {sha256[:12]}...")
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as handle:
        try:
            if pickle.load(handle) != LEGACY_MAGIC:
                raise TorchFileError(f"{path.name} is not a legacy torch.save file")
        except (pickle.UnpicklingError, EOFError) as exc:
            raise TorchFileError(f"{path.name} is not a legacy torch.save file ({exc})") from None
        pickle.load(handle)  # protocol version
        sys_info = pickle.load(handle)
        if not sys_info.get("little_endian", False):
            raise TorchFileError("big-endian torch files are not supported")
        state = _StateDictUnpickler(handle, storages).load()
        for key in pickle.load(handle):
            storage = storages[key]
            (numel,) = struct.unpack("<q", handle.read(8))
            raw = handle.read(numel * np.dtype(storage.dtype).itemsize)
            if numel != storage.numel or len(raw) != numel * np.dtype(storage.dtype).itemsize:
                raise TorchFileError(f"storage {key} is truncated or does not match its header")
            storage.data = np.frombuffer(raw, storage.dtype)
    return {name: tensor.materialise() for name, tensor in state.items()}
