"""Reading and writing line files, plain or gzip, with atomic writes."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from hat.errors import HatError

PathLike = Union[str, os.PathLike]


def resolve_text(prefix: PathLike, lang: str) -> Path:
    """Find ``{prefix}.{lang}`` or ``{prefix}.{lang}.gz``.

    Raises:
        HatError: neither exists.
    """
    for cand in (Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")):
        if cand.is_file():
            return cand
    raise HatError(f"{prefix}.{lang}: no such file (also tried .gz)")


def open_text(path: PathLike):
    """Open a text file (``.gz`` transparently) for reading as UTF-8, keeping ``\\r`` and other line chars intact."""
    p = Path(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="\n")
    return open(p, encoding="utf-8", newline="\n")


def read_lines(path: PathLike, limit: Optional[int] = None) -> Iterator[str]:
    """Yield the lines of ``path`` without the trailing newline (at most ``limit`` lines)."""
    with open_text(path) as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            yield line.rstrip("\n")


def count_lines(path: PathLike, limit: Optional[int] = None) -> int:
    """Number of lines of ``path`` (capped at ``limit``)."""
    return sum(1 for _ in read_lines(path, limit))


def write_lines_atomic(path: PathLike, lines: Iterable[str]) -> int:
    """Write ``lines`` (newline-terminated) to ``path`` via temp file + rename; return the count."""
    from hat.io import atomic_open
    n = 0
    with atomic_open(path) as f:
        for line in lines:
            f.write(line + "\n")
            n += 1
    return n
