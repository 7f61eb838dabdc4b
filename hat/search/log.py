"""Append-only search log (``search_log.jsonl``): a header line, then one line per finished iteration.

Each iteration record holds the scored population (configs, losses, latencies), the best member, the fitness-cache
counters and the RNG state taken right after the population was scored, which is everything needed to continue
the search exactly where it stopped (``--resume``). Records are flushed and fsync'd one by one; a torn last line (a
crash mid-write) is dropped on resume.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Optional

from hat.errors import HatError


def rng_state_to_json(rng: random.Random) -> list:
    """``random.Random`` state as JSON-safe lists."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_state_from_json(state: list) -> tuple:
    """Inverse of :func:`rng_state_to_json` (a value for ``Random.setstate``)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


class SearchLog:
    """JSONL log of one search run; on ``resume`` the previous records are read back.

    Args:
        path: the ``search_log.jsonl`` file.
        header: run identity (settings, budgets, seed, space fingerprint...); a resumed log must have the same one.
        resume: read an existing log instead of starting a new one (a missing or empty file starts fresh).
        write: False = read only (non-zero ranks of a distributed search: rank 0 writes).
    """

    def __init__(self, path: str | os.PathLike, header: dict, resume: bool = False, write: bool = True):
        self.path = Path(path)
        self.write = write
        self.header = json.loads(json.dumps(header))  # normalize tuples etc. to what a reload gives
        self._records: list[dict] = []
        if resume and self.path.is_file() and self.path.stat().st_size > 0:
            self._load()
        elif write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_lines([{"type": "header", **self.header}])

    def _load(self) -> None:
        lines = self.path.read_text().splitlines()
        recs = []
        for i, line in enumerate(lines):
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:  # torn by an interruption mid-write: drop it
                    break
                raise HatError(f"{self.path}: line {i + 1} is not valid JSON; cannot resume") from None
        if not recs or recs[0].get("type") != "header":
            raise HatError(f"{self.path}: not a hat-search log (no header line); cannot resume")
        old = {k: v for k, v in recs[0].items() if k != "type"}
        diff = sorted(k for k in set(old) | set(self.header) if old.get(k) != self.header.get(k))
        if diff:
            raise HatError(f"{self.path}: --resume with different settings than the logged run "
                           f"(differs in: {', '.join(diff)}); use another --out or drop --resume")
        self._records = recs[1:]
        if len(recs) != len(lines) and self.write:
            self._write_lines(recs)  # rewrite without the torn line so later appends stay valid

    def _write_lines(self, recs: list[dict]) -> None:
        from hat.io import atomic_write
        atomic_write(self.path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))

    def records(self, run: Optional[int] = None) -> list[dict]:
        """Iteration records read back on resume (of one ``run`` of a multi-budget search, or all)."""
        return [r for r in self._records if run is None or r.get("run") == run]

    def append(self, record: dict) -> None:
        """Append one record, flushed and fsync'd before returning (no-op when read only)."""
        if not self.write:
            return
        from hat.io import open_append
        with open_append(self.path) as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
