"""Shared by the predictor benchmarks: run metadata for the raw JSON in benchmarks/results/, HAT's datasets."""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from hat.io import atomic_write

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
HAT_LATENCY = REPO.parent / "shared" / "data" / "hat_latency"
HAT_CONFIGS = REPO.parent / "shared" / "data" / "hat_configs"


def space_for(csv_name: str) -> str:
    return "iwslt14_space1" if "iwslt" in csv_name else "wmt14_space0"


def run_meta() -> dict:
    """Command, versions, host, load average and git commit of this run."""
    import numpy
    import torch
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"command": " ".join([Path(sys.executable).name] + sys.argv), "cwd": os.getcwd(), "git_commit": commit,
            "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": socket.gethostname(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "loadavg_start": list(os.getloadavg()), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__}


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Atomic write (temp + rename); ``loadavg_end`` is added to ``data["meta"]``."""
    data.setdefault("meta", {})["loadavg_end"] = list(os.getloadavg())
    atomic_write(path, json.dumps(data, indent=1) + "\n")
