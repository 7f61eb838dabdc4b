"""fairseq ``mmap`` indexed datasets: a ``.bin`` of concatenated token ids plus an ``.idx`` index.

``.idx`` layout (fairseq's ``MMapIndexedDataset.Index``, little endian)::

    b"MMIDIDX\\x00\\x00"   magic (9 bytes)
    <Q version = 1
    <B dtype code (see _DTYPES)
    <Q n = number of items
    int32[n]  sizes (tokens per item)
    int64[n]  pointers (byte offset of each item in .bin)

fairseq's writer stores no document index (unlike Megatron's variant), so neither do we.
"""

from __future__ import annotations

import os
import struct
from typing import Optional, Sequence, Union

import numpy as np
import torch

from hat.errors import HatError
from hat.io import atomic_path, atomic_write

_HDR_MAGIC = b"MMIDIDX\x00\x00"
_VERSION = 1
_DTYPES = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.double,
    8: np.uint16,
    9: np.uint32,
    10: np.uint64,
}


def _code(dtype) -> int:
    for k, v in _DTYPES.items():
        if np.dtype(v) == np.dtype(dtype):
            return k
    raise HatError(f"unsupported indexed dataset dtype {dtype}")


def best_fitting_int_dtype(vocab_size: Optional[int]) -> type:
    """fairseq's choice: ``uint16`` when ``vocab_size < 65500``, else ``int32``."""
    if vocab_size is not None and vocab_size < 65500:
        return np.uint16
    return np.int32


def data_file_path(prefix: Union[str, os.PathLike]) -> str:
    """``prefix + '.bin'``."""
    return str(prefix) + ".bin"


def index_file_path(prefix: Union[str, os.PathLike]) -> str:
    """``prefix + '.idx'``."""
    return str(prefix) + ".idx"


def dataset_exists(prefix: Union[str, os.PathLike]) -> bool:
    """True when both ``prefix.bin`` and ``prefix.idx`` exist."""
    return os.path.isfile(data_file_path(prefix)) and os.path.isfile(index_file_path(prefix))


class MMapIndexedDataset:
    """Read-only fairseq mmap dataset; ``ds[i]`` is a 1-D int64 tensor, ``ds.sizes`` an int32 array.

    Args:
        prefix: path without extension (``data-bin/valid.de-en.de``).

    Raises:
        HatError: a file is missing, the magic/version is wrong, or the ``.bin`` is shorter than the index says.
    """

    def __init__(self, prefix: Union[str, os.PathLike]) -> None:
        self.prefix = str(prefix)
        idx_path, bin_path = index_file_path(prefix), data_file_path(prefix)
        for p in (idx_path, bin_path):
            if not os.path.isfile(p):
                raise HatError(f"{p}: indexed dataset file not found")
        with open(idx_path, "rb") as f:
            head = f.read(26)
        if len(head) < 26 or head[:9] != _HDR_MAGIC:
            raise HatError(f"{idx_path}: not a fairseq mmap index (bad magic)")
        (version,) = struct.unpack("<Q", head[9:17])
        if version != _VERSION:
            raise HatError(f"{idx_path}: unsupported index version {version}")
        code = head[17]
        if code not in _DTYPES:
            raise HatError(f"{idx_path}: unknown dtype code {code}")
        self.dtype = np.dtype(_DTYPES[code])
        (n,) = struct.unpack("<Q", head[18:26])
        if os.path.getsize(idx_path) < 26 + 12 * n:
            raise HatError(f"{idx_path}: truncated index ({n} items announced)")
        idx = np.memmap(idx_path, mode="r", order="C")
        self._idx_mmap = idx
        self.sizes = np.frombuffer(idx, dtype=np.int32, count=n, offset=26)
        self.pointers = np.frombuffer(idx, dtype=np.int64, count=n, offset=26 + 4 * n)
        nbytes = os.path.getsize(bin_path)
        if n and int(self.pointers[-1]) + int(self.sizes[-1]) * self.dtype.itemsize > nbytes:
            raise HatError(f"{bin_path}: shorter than its index says (truncated?)")
        # An empty file cannot be memory-mapped; keep an empty array instead.
        self._bin = np.memmap(bin_path, mode="r", order="C") if nbytes else np.zeros(0, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} items")
        arr = np.frombuffer(self._bin, dtype=self.dtype, count=int(self.sizes[i]), offset=int(self.pointers[i]))
        return torch.from_numpy(arr.astype(np.int64))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def max_token_id(self) -> int:
        """Largest token id in the ``.bin`` (-1 when empty); used to check a dictionary matches the data."""
        if len(self._bin) == 0:
            return -1
        return int(np.frombuffer(self._bin, dtype=self.dtype).max())

    @staticmethod
    def exists(prefix: Union[str, os.PathLike]) -> bool:
        """True when ``prefix.bin`` and ``prefix.idx`` both exist."""
        return dataset_exists(prefix)


class MMapIndexedDatasetBuilder:
    """Write a fairseq mmap dataset byte-identical to ``fairseq-preprocess --dataset-impl mmap``.

    Data go to ``out_file`` (the ``.bin``) as items are added; :meth:`finalize` writes the ``.idx``.
    Both are written to temp files (:func:`hat.io.atomic_path`) and renamed at finalize, so an interrupted run never leaves a valid-looking pair.

    Args:
        out_file: the ``.bin`` path.
        dtype: element type; use :func:`best_fitting_int_dtype` (``uint16`` for vocabularies under 65500).
    """

    def __init__(self, out_file: Union[str, os.PathLike], dtype=np.int64) -> None:
        self._out = str(out_file)
        self._commit = atomic_path(self._out)  # temp .bin in our pattern; replaced onto out_file at finalize
        self._tmp = self._commit.__enter__()
        self._data_file = open(self._tmp, "wb")
        self._dtype = np.dtype(dtype)
        self._sizes: list[int] = []

    def add_item(self, tensor: Union[torch.Tensor, np.ndarray, Sequence[int]]) -> None:
        """Append one item (a 1-D sequence of token ids)."""
        if torch.is_tensor(tensor):
            tensor = tensor.numpy()
        arr = np.asarray(tensor).astype(self._dtype, copy=False)
        self._data_file.write(arr.tobytes(order="C"))
        self._sizes.append(int(arr.size))

    def finalize(self, index_file: Union[str, os.PathLike]) -> None:
        """Close the ``.bin`` and write the ``.idx`` (atomically, ``.bin`` first)."""
        self._data_file.close()
        sizes = np.asarray(self._sizes, dtype=np.int32)
        pointers = np.zeros(len(sizes), dtype=np.int64)
        if len(sizes) > 1:
            np.cumsum(sizes[:-1].astype(np.int64) * self._dtype.itemsize, out=pointers[1:])
        self._commit.__exit__(None, None, None)
        atomic_write(index_file, b"".join([_HDR_MAGIC, struct.pack("<Q", _VERSION),
                                           struct.pack("<B", _code(self._dtype)), struct.pack("<Q", len(sizes)),
                                           sizes.tobytes(order="C"), pointers.tobytes(order="C")]))

    def abort(self) -> None:
        """Close and delete the temporary ``.bin`` (after an error)."""
        self._data_file.close()
        self._commit.__exit__(HatError, HatError("aborted"), None)  # removes the temp .bin
