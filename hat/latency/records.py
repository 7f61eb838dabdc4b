"""Latency CSV records: HAT's published schema plus our provenance columns.

The first 14 columns are exactly HAT's (the 10 :data:`hat.space.HAT_FEATURE_NAMES`, then
``latency_mean_encoder, latency_mean_decoder, latency_std_encoder, latency_std_decoder`` in ms), so HAT's files
load unchanged and our files stay readable by HAT's tools. Ours add ``subnet`` (JSON of a SubnetConfig),
``runtime``, ``device``, ``host``, ``threads``, ``timestamp``, ``timer`` (``wall`` | ``thread_cpu``) and
``estimator`` (``trimmed_mean`` | ``median`` | ``min``: which statistic of the timed runs fills the latency mean
columns; see :mod:`hat.latency.protocol`).

Files are append-only logs: :class:`CsvAppender` flushes and fsyncs each row, and drops a truncated last line left
by a writer killed mid-row, so measurement can resume (:func:`existing_keys`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from hat.errors import HatError
from hat.space import HAT_FEATURE_NAMES, SubnetConfig

LATENCY_COLUMNS = ("latency_mean_encoder", "latency_mean_decoder", "latency_std_encoder", "latency_std_decoder")
HAT_COLUMNS = tuple(HAT_FEATURE_NAMES) + LATENCY_COLUMNS
EXTRA_COLUMNS = ("subnet", "runtime", "device", "host", "threads", "timestamp", "timer", "estimator")
CSV_COLUMNS = HAT_COLUMNS + EXTRA_COLUMNS


@dataclass
class LatencyRecord:
    """One measured SubTransformer: HAT's 10 features, latency stats (ms) and provenance.

    ``subnet`` is None for HAT's published files (they only hold the 10 averaged features).
    """

    encoder_embed_dim: float
    encoder_layer_num: float
    encoder_ffn_embed_dim_avg: float
    encoder_self_attention_heads_avg: float
    decoder_embed_dim: float
    decoder_layer_num: float
    decoder_ffn_embed_dim_avg: float
    decoder_self_attention_heads_avg: float
    decoder_ende_attention_heads_avg: float
    decoder_arbitrary_ende_attn_avg: float
    latency_mean_encoder: float  # ms, one encoder pass
    latency_mean_decoder: float  # ms, all incremental decoder steps of one sentence
    latency_std_encoder: float
    latency_std_decoder: float
    subnet: Optional[SubnetConfig] = None
    runtime: str = ""  # backend: eager, onnxruntime, tvm, debug
    device: str = ""  # device profile name
    host: str = ""  # machine the measurement ran on
    threads: int = 0  # intra-op threads (0 = unknown)
    timestamp: str = ""  # ISO 8601 UTC of the measurement
    timer: str = ""  # wall | thread_cpu ("" = unknown, e.g. HAT's files)
    estimator: str = ""  # statistic in the latency mean columns: trimmed_mean | median | min ("" = unknown)

    @property
    def latency_ms(self) -> float:
        """Total latency of the sentence (encoder + decoder), ms: HAT's regression target."""
        return self.latency_mean_encoder + self.latency_mean_decoder

    @property
    def features(self) -> list[float]:
        """HAT's 10 features in :data:`HAT_FEATURE_NAMES` order."""
        return [float(getattr(self, n)) for n in HAT_FEATURE_NAMES]

    @classmethod
    def from_subnet(cls, subnet: SubnetConfig, latency_mean_encoder: float, latency_mean_decoder: float,
                    latency_std_encoder: float = 0.0, latency_std_decoder: float = 0.0, **provenance
                    ) -> "LatencyRecord":
        """Build a record for ``subnet`` (features computed from it); ``provenance``: runtime, device, host, ..."""
        feats = dict(zip(HAT_FEATURE_NAMES, subnet.hat_features()))
        return cls(**feats, latency_mean_encoder=float(latency_mean_encoder),
                   latency_mean_decoder=float(latency_mean_decoder), latency_std_encoder=float(latency_std_encoder),
                   latency_std_decoder=float(latency_std_decoder), subnet=subnet, **provenance)

    def to_row(self) -> list[str]:
        """The record as CSV cells in :data:`CSV_COLUMNS` order."""
        out = [_fmt(getattr(self, c)) for c in HAT_COLUMNS]
        out += [self.subnet.to_json() if self.subnet is not None else "", self.runtime, self.device, self.host,
                str(int(self.threads)), self.timestamp, self.timer, self.estimator]
        return out


def _fmt(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _parse_row(row: dict, lineno: int, path: Path) -> LatencyRecord:
    vals = {}
    for c in HAT_COLUMNS:
        cell = row.get(c)
        try:
            v = float(cell)
        except (TypeError, ValueError):
            raise HatError(f"{path}: row {lineno} column '{c}': expected a number, got {cell!r}") from None
        if not math.isfinite(v):
            raise HatError(f"{path}: row {lineno} column '{c}': expected a finite number, got {cell!r}")
        vals[c] = v
    for c in LATENCY_COLUMNS:
        if vals[c] < 0:
            raise HatError(f"{path}: row {lineno} column '{c}': latency must not be negative, got {vals[c]}")
    if vals["latency_mean_encoder"] + vals["latency_mean_decoder"] <= 0:
        raise HatError(f"{path}: row {lineno}: total latency (latency_mean_encoder + latency_mean_decoder) "
                       f"must be positive")
    subnet = None
    cell = (row.get("subnet") or "").strip()
    if cell:
        try:
            subnet = SubnetConfig.from_json(cell)
        except HatError as e:
            raise HatError(f"{path}: row {lineno} column 'subnet': {e}") from None
    threads_cell = (row.get("threads") or "").strip()
    try:
        threads = int(float(threads_cell)) if threads_cell else 0
    except ValueError:
        raise HatError(f"{path}: row {lineno} column 'threads': expected an integer, got {threads_cell!r}") from None
    return LatencyRecord(**vals, subnet=subnet, runtime=row.get("runtime") or "", device=row.get("device") or "",
                         host=row.get("host") or "", threads=threads, timestamp=row.get("timestamp") or "",
                         timer=row.get("timer") or "", estimator=row.get("estimator") or "")


def read_latency_csv(path: str | os.PathLike) -> list[LatencyRecord]:
    """Read a latency CSV (HAT's published files or ours).

    Cells are parsed as numbers / JSON only (never evaluated). A final line without a trailing newline that does
    not parse (a writer killed mid-row) is skipped with a warning.

    Raises:
        HatError: missing file, missing columns (named), a non-numeric cell (row and column named), a negative or
            zero latency, a malformed subnet, or no rows.
    """
    p = Path(path)
    if not p.is_file():
        raise HatError(f"{p}: no such latency file")
    text = p.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].strip():
        raise HatError(f"{p}: empty latency file (expected a header with columns {', '.join(HAT_COLUMNS)})")
    header = next(csv.reader([lines[0]]))
    header = [h.strip() for h in header]
    missing = [c for c in HAT_COLUMNS if c not in header]
    if missing:
        raise HatError(f"{p}: missing column(s) {', '.join(missing)}")
    records = []
    partial_last = not lines[-1].endswith(("\n", "\r"))
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = next(csv.reader([line]), [])
        is_last = i == len(lines)
        try:
            if len(cells) != len(header):
                raise HatError(f"{p}: row {i}: expected {len(header)} cells, got {len(cells)}")
            records.append(_parse_row(dict(zip(header, cells)), i, p))
        except HatError:
            if is_last and partial_last:
                warnings.warn(f"{p}: skipped truncated last line {i} (writer interrupted mid-row)")
                continue
            raise
    if not records:
        raise HatError(f"{p}: no latency rows")
    return records


def existing_keys(path: str | os.PathLike) -> set:
    """``SubnetConfig.key()`` of every measured subnet in ``path`` (empty set when the file does not exist yet).

    Used to resume a measurement run without re-measuring.
    """
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return set()
    try:
        recs = read_latency_csv(p)
    except HatError as e:
        if "no latency rows" in str(e):
            return set()
        raise
    return {r.subnet.key() for r in recs if r.subnet is not None}


class CsvAppender:
    """Append-only latency CSV writer: header once, one fsync'd line per record.

    Use as a context manager::

        with CsvAppender("lat.csv") as out:
            out.append(LatencyRecord.from_subnet(cfg, enc_ms, dec_ms, runtime="eager", device="cpu"))

    On open, a last line without a trailing newline (the previous writer was killed mid-row) is dropped
    (``dropped_partial_line`` tells whether that happened). An existing file must have our header.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = None
        self.dropped_partial_line = False

    def open(self) -> "CsvAppender":
        """Open (creating parent folders and the header when new); called by ``__enter__``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        need_header = True
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, "rb+") as f:
                data = f.read()
                if not data.endswith(b"\n"):
                    cut = data.rfind(b"\n") + 1  # 0 when even the header is partial
                    f.seek(cut)
                    f.truncate()
                    f.flush()
                    os.fsync(f.fileno())
                    data = data[:cut]
                    self.dropped_partial_line = True
            if data:
                header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", "replace")]))
                if tuple(h.strip() for h in header) != CSV_COLUMNS:
                    raise HatError(f"{self.path}: exists with a different header; cannot append latency rows "
                                   f"(expected columns {', '.join(CSV_COLUMNS)})")
                need_header = False
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        if need_header:
            self._write(CSV_COLUMNS)
        return self

    def _write(self, cells: Iterable[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(list(cells))
        # One write call per line: a kill leaves at most one partial line, which the next open drops.
        self._f.write(buf.getvalue())
        self._f.flush()
        os.fsync(self._f.fileno())

    def append(self, record: LatencyRecord) -> None:
        """Write ``record`` as one line, flushed and fsync'd."""
        if self._f is None:
            raise HatError(f"{self.path}: CsvAppender is not open (use it as a context manager)")
        self._write(record.to_row())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> "CsvAppender":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CSV_COLUMNS", "HAT_COLUMNS", "LATENCY_COLUMNS", "EXTRA_COLUMNS", "LatencyRecord", "read_latency_csv",
           "CsvAppender", "existing_keys"]
