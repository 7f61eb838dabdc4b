"""Translate on a remote device: the deployment smoke test behind ``hat-translate --onnx DIR --device NAME``.

The export directory, hat's torch-free runtime (the files in :data:`RUNTIME_FILES`) and
``device_profiling/translate.py`` are copied into a job folder, which a transport (:mod:`hat.transport`: SSH for a
device) uploads and runs; the device decodes with the very beam search the host uses. Every field of every answer
line is checked before it is used: a device (or anything in between) that answers nonsense gets one
:class:`~hat.errors.HatError` line, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hat.errors import HatError
from hat.transport import Transport, TransportFault

# What device_profiling/translate.py imports from hat: the torch-free runtime and the plain modules it uses.
RUNTIME_FILES = ("hat/__init__.py", "hat/errors.py", "hat/score.py", "hat/runtime/__init__.py",
                 "hat/runtime/batching.py", "hat/runtime/onnx.py", "hat/runtime/beam_search.py", "hat/runtime/text.py",
                 "hat/runtime/vocab.py", "hat/runtime/bounds.py", "hat/runtime/ort_calls.py")


@dataclass
class DeviceTranslation:
    """Result of :func:`translate_remote`: hypotheses in input order and the device's summary line."""

    translations: list
    seconds: float
    host: str
    runtime_version: str
    quantize: str


def copy_runtime_files(dst: str | os.PathLike) -> None:
    """Copy :data:`RUNTIME_FILES` (hat's torch-free runtime) under ``dst`` with their package paths."""
    pkg_root = Path(__file__).resolve().parents[2]
    for rel in RUNTIME_FILES:
        target = Path(dst, *rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pkg_root / rel, target)


def copy_export(export_dir: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the regular files of an export directory to ``dst``; a symbolic link in it is refused (its target,
    which may be any file of this machine, would be sent to the device)."""
    src = Path(export_dir)
    os.makedirs(dst, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if entry.is_symlink():
            raise HatError(f"{entry}: the export directory holds a symbolic link; refusing to send its target to "
                           f"the device (re-export with hat-export)")
        if entry.is_file():
            shutil.copyfile(entry, Path(dst) / entry.name)


def translate_remote(transport: Transport, export_dir: str | os.PathLike, sentences: Sequence[str],
                     script: str | os.PathLike, beam: int = 5, batch_size: int = 16,
                     threads: int = 1) -> DeviceTranslation:
    """Translate ``sentences`` with the ONNX export ``export_dir`` where ``transport`` runs (one attempt: a smoke
    test should show a fault, not hide it behind retries).

    Args:
        transport: where to run (an :class:`~hat.transport.ssh.SSHTransport` for a device).
        export_dir: a checked ONNX export with its bundled dictionaries and ``spm.model``.
        sentences: raw source sentences.
        script: ``device_profiling/translate.py``.
        beam, batch_size, threads: decoding settings on the device.

    Raises:
        HatError: the device could not translate, or answered something malformed.
    """
    local = tempfile.mkdtemp(prefix="hat_translate_")
    try:
        copy_export(export_dir, os.path.join(local, "export"))
        copy_runtime_files(local)
        shutil.copyfile(script, os.path.join(local, "translate.py"))
        with open(os.path.join(local, "input.txt"), "w", encoding="utf-8") as f:
            f.write("".join(" ".join(s.split()) + "\n" for s in sentences))
        argv = ["translate.py", "export", "input.txt", "--beam", str(int(beam)), "--batch-size",
                str(int(batch_size)), "--threads", str(int(threads))]
        try:
            return read_answers(transport.run(local, argv), len(sentences), transport.where)
        except TransportFault as e:
            raise HatError(f"{transport.where}: {e}") from None
    finally:
        transport.close()
        shutil.rmtree(local, ignore_errors=True)


def read_answers(lines, n: int, where: str) -> DeviceTranslation:
    """The translations and summary in the device's answer ``lines``, every field checked (see the module
    docstring).

    Raises:
        HatError: an error line, a malformed line, an id out of range, a translation that is not text, a missing
            translation or summary.
    """
    out: dict[int, str] = {}
    summary = None
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            res = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(res, dict):
            continue
        if "error" in res:
            raise HatError(f"{where}: translation failed on the device: {str(res['error'])[:300]}")
        if "summary" in res:
            summary = _summary(res["summary"], where)
        elif "id" in res:
            i, text = res["id"], res.get("translation")
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise HatError(f"{where}: the device answered id {repr(i)[:40]} (expected 0..{n - 1})")
            if not isinstance(text, str):
                raise HatError(f"{where}: the device's translation {i} is {type(text).__name__}, not text")
            out[i] = text
    if summary is None or len(out) != n:
        raise HatError(f"{where}: the device returned {len(out)} of {n} translations"
                       + ("" if summary is not None else " and no summary"))
    return DeviceTranslation([out[i] for i in range(n)], *summary)


def _summary(s, where: str) -> tuple[float, str, str, str]:
    if not isinstance(s, dict):
        raise HatError(f"{where}: the device's summary is not an object")
    seconds = s.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise HatError(f"{where}: the device's summary has seconds {str(seconds)[:40]!r} (expected a finite "
                       f"number >= 0)")
    return float(seconds), *(str(s.get(k, ""))[:200] for k in ("host", "runtime_version", "quantize"))
