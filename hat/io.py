"""The one home for writing files safely: atomic replace, fsync'd appends, exclusive locks.

Every file hat writes in one go (checkpoints, predictors, ONNX/TVM exports, JSON/YAML reports, preprocessed data)
goes through :func:`atomic_path` / :func:`atomic_write`: the data is written to a temp file *in the same folder*
named ``.<name>.hat-tmp-<pid>-<random>``, fsync'd, then ``os.replace``'d over the target, so a reader sees the old
file or the new one, never half of one. On any failure (a full disk, Ctrl-C, an exception in the caller) the temp
file is removed and the target is untouched. A temp file left by a process that was SIGKILLed is recognised by its
pattern and its dead pid and removed the next time the same target is written (:func:`clean_stale_temps`).

Append-only logs (latency CSVs, search logs) use :func:`append_fsync` (one ``write`` per record, then fsync) and
:func:`exclusive_lock` (one writer per file for a whole run).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import IO, Iterator, Optional, Union

from hat.errors import HatError

PathLike = Union[str, os.PathLike]

TEMP_MARK = ".hat-tmp-"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.hat-tmp-(?P<pid>\d+)-[0-9a-f]{8}(\.[^.]*)?$")


def temp_name(path: PathLike, keep_suffix: bool = False) -> Path:
    """A fresh temp path next to ``path`` in our recognisable pattern (``.<name>.hat-tmp-<pid>-<8 hex>[<suffix>]``).

    ``keep_suffix`` repeats ``path``'s suffix at the end, for writers that choose a format by it (TVM's
    ``export_library``).
    """
    p = Path(path)
    return p.with_name(f".{p.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
                       + (p.suffix if keep_suffix else ""))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    except OSError:
        pass


def clean_stale_temps(path: PathLike) -> list[Path]:
    """Remove temp files of ``path`` (our pattern) whose writer process no longer exists; return them.

    Only names matching ``.<name of path>.hat-tmp-<pid>-<hex>`` are touched, never anything else in the folder.
    """
    p = Path(path)
    removed = []
    try:
        entries = list(p.parent.iterdir())
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if m and m.group("name") == p.name and not _pid_alive(int(m.group("pid"))):
            _remove(e)
            removed.append(e)
    return removed


def _fsync_path(p: Path) -> None:
    """fsync a file, or every file in a folder tree, and the folder entries themselves (best effort for dirs)."""
    if p.is_dir():
        for root, _dirs, files in os.walk(p):
            for f in files:
                _fsync_path(Path(root) / f)
        _fsync_dir(p)
        return
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, mkdir: bool = True, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it is fsync'd and ``os.replace``'d onto ``path``.

    The caller writes the temp path by any means (``torch.save``, ``onnx.save``, ``savefig``, or a whole folder).
    On any exception the temp file (or folder) is removed and ``path`` keeps its old content. Stale temps of the
    same target left by dead processes are removed first.

    For files; a folder written as a whole goes through :func:`atomic_dir`.
    """
    p = Path(path)
    if mkdir:
        p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_dir() and not p.is_symlink():  # name the user's path, not the temp file, in the error
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(p))
    clean_stale_temps(p)
    tmp = temp_name(p, keep_suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise HatError(f"{p}: nothing was written")
        _fsync_path(tmp)
        os.replace(tmp, p)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(p.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a fresh temp folder next to ``path``; on success it takes ``path``'s place as a whole.

    An existing ``path`` is exchanged with the new folder in one step where the system allows it (Linux
    ``renameat2``), else moved aside first (a kill between the two renames leaves no ``path``, never a mix), and
    then removed. On any exception the temp folder is removed and ``path`` is untouched. So a reader never sees a
    folder holding files of two writes (e.g. a new encoder beside an old decoder).

    Raises:
        HatError: ``path`` exists and is not a folder, or is a symbolic link.
    """
    p = Path(path)
    if p.is_symlink() or (p.exists() and not p.is_dir()):
        raise HatError(f"{p}: exists and is not a folder (or is a symbolic link); refusing to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(p)
    tmp = temp_name(p)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_path(tmp)
        if not p.exists():
            os.rename(tmp, p)
        elif _exchange(tmp, p):
            _remove(tmp)  # tmp now holds the old folder
        else:
            old = temp_name(p)
            os.rename(p, old)
            os.rename(tmp, p)
            _remove(old)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(p.parent)


def open_append(path: PathLike, binary: bool = False) -> IO:
    """Open ``path`` for appending (created 0644 if missing), never through a symbolic link (``O_NOFOLLOW``): a
    link planted where a command writes its log cannot make it write to the link's target.

    Raises:
        HatError: ``path`` is a symbolic link (one line; nothing written).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HatError(f"{path}: is a symbolic link; refusing to write through it") from None
        raise
    return os.fdopen(fd, "ab" if binary else "a", **({} if binary else {"encoding": "utf-8", "newline": ""}))


def open_stream_output(path: PathLike) -> IO:
    """Open ``path`` for text written progressively (created or truncated; UTF-8), never through a symbolic link:
    for output that should survive an interruption in part (translations streamed batch by batch), where
    :func:`atomic_open` would keep nothing.

    Raises:
        HatError: ``path`` is a symbolic link.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HatError(f"{path}: is a symbolic link; refusing to write through it") from None
        raise
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def copy_file(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically; an existing ``dst`` (even a symbolic link) is replaced, never written
    through."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def file_digest(path: PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: PathLike, data: Union[str, bytes], encoding: str = "utf-8") -> None:
    """Write ``data`` (text as UTF-8 with ``\\n`` line ends, or bytes) to ``path`` atomically (see :func:`atomic_path`).

    Raises:
        OSError: e.g. ``ENOSPC``; the temp file is removed and ``path`` is unchanged.
    """
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            with open(tmp, "wb") as f:
                f.write(data)
        else:
            with open(tmp, "w", encoding=encoding, newline="\n") as f:
                f.write(data)


def save_torch(obj, path: PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically.

    Written through a Python file object, so a full disk raises ``OSError(ENOSPC)`` (torch's own path writer turns
    it into an opaque ``RuntimeError`` from ``inline_container.cc``); the temp file is removed either way.
    """
    import torch
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer = _WriteErrors(f)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:  # torch reports a failed write as "unexpected pos ..."; say what it was
                raise writer.error from None
            raise


class _WriteErrors:
    """A binary file that remembers the first ``OSError`` its writes raised (torch.save hides it)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf-8",
                newline: Optional[str] = "\n") -> Iterator[IO]:
    """``open()`` a temp file for writing, atomically replacing ``path`` when the block ends without error."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as f:
            yield f


def finite_json(obj):
    """``obj`` with every NaN/Infinity float replaced by None: ``json.dumps`` would write ``NaN``/``Infinity``,
    which is not JSON (strict parsers, jq and browsers reject the file)."""
    import math
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def atomic_write_json(path: PathLike, obj, indent: Optional[int] = 2) -> None:
    """Write ``obj`` as strict JSON (non-finite floats become null, see :func:`finite_json`) atomically."""
    import json
    atomic_write(path, json.dumps(finite_json(obj), indent=indent, allow_nan=False, ensure_ascii=False) + "\n")


def append_fsync(f: IO, data: Union[str, bytes]) -> None:
    """Append ``data`` with one ``write`` call, then flush and fsync, so a kill leaves at most one partial record."""
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


class LockHeld(HatError):
    """Another process holds the exclusive lock on a file."""


@contextlib.contextmanager
def exclusive_lock(path: PathLike, what: str = "file", wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` for the block (one writer per file).

    ``wait=False`` fails at once when the lock is held (a long run: tell the user); ``wait=True`` blocks (a short
    critical section such as appending one line).

    The lock file stays (removing it would race with a second writer); the lock dies with the process, so a
    SIGKILLed writer never leaves a stale lock.

    Raises:
        LockHeld: another process (or another writer in this one) holds it; the message names the file.
    """
    import fcntl
    p = Path(path).resolve()  # two names of one file (a symlink alias) share one lock
    p.parent.mkdir(parents=True, exist_ok=True)
    lock = p.with_name(p.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(f"{p}: another process is writing this {what} (lock {lock} is held); wait for it "
                               f"to finish or use another file") from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        yield lock
    finally:
        os.close(fd)


__all__ = ["atomic_path", "atomic_write", "atomic_open", "save_torch", "finite_json", "atomic_write_json", "append_fsync", "clean_stale_temps", "temp_name",
           "exclusive_lock", "LockHeld", "TEMP_MARK"]
