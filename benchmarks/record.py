"""One raw-result record per benchmark run: ``benchmarks/results/<name>.json`` (committed, cited by
``docs/benchmarks.md``).

Every benchmark calls :func:`write_record` with its samples; the record adds what is needed to re-check the numbers:
the exact command, package versions, the git commit, the host (CPU model, core count) and the load average when the
run started and when it was written (the development VM is shared, so wall-clock numbers depend on it).

    from benchmarks.record import RunRecord
    rec = RunRecord("ort_vs_eager")           # takes the start load average, time and command
    ...
    rec.write(args=vars(args), samples=[...], summary={...})
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from hat.io import atomic_write

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
_PACKAGES = ("torch", "numpy", "onnx", "onnxruntime", "tvm", "apache-tvm", "sentencepiece", "fairseq-fixed")


def load_average() -> Optional[list[float]]:
    """``os.getloadavg()`` as a list (1, 5, 15 min), or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages the benchmarks use (absent ones left out)."""
    from importlib import metadata
    out = {"python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    out["hat_commit"] = git_commit()
    return out


def git_commit() -> str:
    """The repository's HEAD commit (``+dirty`` when tracked files differ), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host() -> dict[str, Any]:
    """Machine identity: hostname, OS, CPU model and logical core count."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": platform.node(), "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count()}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunRecord:
    """The raw record of one benchmark run; create it first (start time, load average, command), then ``write``.

    Args:
        name: file stem under ``benchmarks/results/`` (e.g. ``ort_vs_eager_wmt14_space0_smallest``).
        out: explicit output path instead of ``benchmarks/results/<name>.json``.
        argv: the command line (default: ``sys.argv``).
    """

    def __init__(self, name: str, out: Optional[str | os.PathLike] = None, argv: Optional[list[str]] = None):
        self.name = name
        self.path = Path(out) if out else RESULTS_DIR / f"{name}.json"
        argv = list(sys.argv if argv is None else argv)
        if argv and argv[0].endswith(".py"):
            try:  # repo-relative script path, so the command reads the same on every checkout
                argv[0] = str(Path(argv[0]).resolve().relative_to(REPO))
            except ValueError:
                pass
        self.command = "python " + shlex.join(argv) if argv and argv[0].endswith(".py") else shlex.join(argv)
        self.started = _now()
        self.load_average_start = load_average()

    def write(self, *, samples: list, summary: Optional[dict] = None, args: Optional[dict] = None,
              complete: bool = True, **extra) -> Path:
        """Write the record atomically (safe to call repeatedly while a long run progresses).

        Args:
            samples: every measured sample (one dict per run / repetition / row), not only aggregates.
            summary: the aggregates the docs table shows.
            args: the parsed arguments.
            complete: False while a resumable run is still going.
            **extra: any further benchmark-specific fields.
        """
        rec = {"benchmark": self.name, "command": self.command, "args": args, "complete": complete,
               "started": self.started, "written": _now(), "load_average_start": self.load_average_start,
               "load_average_end": load_average(), "host": host(), "versions": versions(), **extra,
               "summary": summary, "samples": samples}
        atomic_write(self.path, json.dumps(rec, indent=1, default=str) + "\n")
        return self.path
