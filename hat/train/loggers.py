"""Training logs: an append-only JSONL file that survives SIGKILL, or TensorBoard scalars."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from hat.io import atomic_write, open_append

__all__ = ["JsonlLogger", "TensorBoardLogger"]


class JsonlLogger:
    """Append-only JSONL log, one record per line, flushed and fsync'd per record (survives SIGKILL).

    Args:
        path: the log file.
        resume_update: None starts an empty log; otherwise the update a resumed run continues from: records of
            later updates (written by the killed run after its last checkpoint) are dropped.
    """

    def __init__(self, path: Path, resume_update: Optional[int]):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_update is None:
            atomic_write(path, "")  # replaces whatever is there (a planted link too), never writes through it
        elif path.exists():
            # Drop records the killed run wrote after its last checkpoint: the resumed run redoes those updates.
            keep = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn last line from a crash
                if rec.get("update", 0) <= resume_update:
                    keep.append(line)
            atomic_write(path, "".join(line + "\n" for line in keep))
        self.f = open_append(path)

    def log(self, record: dict) -> None:
        """Append ``record`` as one JSON line, on disk before returning."""
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        """Close the file."""
        self.f.close()


class TensorBoardLogger:
    """Scalars to TensorBoard (``torch.utils.tensorboard``, imported only when this format is chosen)."""

    def __init__(self, log_dir: Path):
        from hat.optional import require
        self.w = require("torch.utils.tensorboard", "log_format tensorboard", pip="tensorboard").SummaryWriter(
            str(log_dir))

    def log(self, record: dict) -> None:
        """Write the numeric fields of ``record`` as ``<type>/<field>`` scalars at step ``record["update"]``."""
        kind, step = record.get("type", "train"), record.get("update", 0)
        for k, v in record.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("update",):
                self.w.add_scalar(f"{kind}/{k}", v, step)
        self.w.flush()

    def close(self) -> None:
        """Close the writer."""
        self.w.close()
