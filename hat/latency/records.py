"""Latency CSV records: HAT's published schema plus our provenance columns.

The first 14 columns are exactly HAT's (the 10 :data:`hat.space.HAT_FEATURE_NAMES`, then
``latency_mean_encoder, latency_mean_decoder, latency_std_encoder, latency_std_decoder`` in ms), so HAT's files
load unchanged and our files stay readable by HAT's tools. Ours add ``subnet`` (JSON of a SubnetConfig),
``runtime``, ``device``, ``host``, ``threads``, ``timestamp``, ``quantize`` (``none``/``int8``), ``timer`` (``wall`` |
``thread_cpu``) and ``estimator`` (``trimmed_mean`` | ``median`` | ``min``: which statistic of the timed runs fills
the latency mean columns; see :mod:`hat.latency.protocol`).

Files are append-only logs: :class:`CsvAppender` flushes and fsyncs each row, and drops a truncated last line left
by a writer killed mid-row, so measurement can resume (:func:`existing_keys`). One writer per file: the appender
holds an exclusive lock (``<csv>.lock``) for as long as it is open, and a new file gets its header atomically.

Every record is validated before it is written (:meth:`LatencyRecord.validate`): latencies finite, non-negative,
below :data:`MAX_LATENCY_MS`, total positive. Text cells never hold control characters or line breaks (they are
written as ``\\uXXXX`` escapes, so one record is always one physical line, which is what the reader's torn-line
check relies on) and a text cell starting with ``= + - @`` gets a leading ``'`` so spreadsheets do not run it as a
formula (the reader removes it again).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from hat.errors import HatError
from hat.io import append_fsync, atomic_write, exclusive_lock, open_append
from hat.space import HAT_FEATURE_NAMES, SubnetConfig

LATENCY_COLUMNS = ("latency_mean_encoder", "latency_mean_decoder", "latency_std_encoder", "latency_std_decoder")
HAT_COLUMNS = tuple(HAT_FEATURE_NAMES) + LATENCY_COLUMNS
EXTRA_COLUMNS = ("subnet", "runtime", "device", "host", "threads", "timestamp", "quantize", "timer", "estimator")
CSV_COLUMNS = HAT_COLUMNS + EXTRA_COLUMNS
TEXT_COLUMNS = tuple(c for c in EXTRA_COLUMNS if c not in ("subnet", "threads"))  # escaped on write, unescaped on read
MAX_LATENCY_MS = 1e7  # ~3 hours for one sentence: anything above is a broken timer or a poisoned result
FORMULA_LEADS = "=+-@"
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")


def escape_text(value: str) -> str:
    """A text cell safe for one CSV line and for spreadsheets: control characters and line separators become
    ``\\uXXXX``, a literal backslash-u is escaped too (so :func:`unescape_text` inverts this), and a formula
    lead (``= + - @``) or a leading ``'`` gets a ``'`` in front."""
    s = str(value).replace("\\u", "\\u005cu")
    s = _CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    if s[:1] and s[:1] in FORMULA_LEADS + "'":  # a leading ' is doubled, so unescape_text can always drop one
        s = "'" + s
    return s


def unescape_text(cell: str) -> str:
    """Inverse of :func:`escape_text` (cells written by other tools pass through unchanged)."""
    s = cell
    if s[:1] == "'":
        s = s[1:]
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), s)


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
    quantize: str = ""  # weights as measured: none | int8 (device YAML `quantize`); "" = unknown (HAT files)
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

    def validate(self, where: str = "latency record") -> None:
        """Refuse a record that would poison a latency file.

        Raises:
            HatError: a non-finite number, a negative or absurd (> :data:`MAX_LATENCY_MS`) latency, a zero total,
                non-string text fields or a negative thread count. (Control characters in text fields are escaped
                on write, not refused: hosts strings come from devices.)
        """
        for c in HAT_COLUMNS:
            problem = number_problem(c, getattr(self, c))[1]
            if problem:
                raise HatError(f"{where}: {c}: {problem}")
        if not self.latency_ms > 0:
            raise HatError(f"{where}: total latency (encoder + decoder) must be positive, got {self.latency_ms}")
        for c in TEXT_COLUMNS:
            if not isinstance(getattr(self, c), str):
                raise HatError(f"{where}: {c} must be a string")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise HatError(f"{where}: threads must be a non-negative integer, got {str(self.threads)[:40]!r}")

    def to_row(self) -> list[str]:
        """The record as CSV cells in :data:`CSV_COLUMNS` order (text cells through :func:`escape_text`)."""
        out = [_fmt(getattr(self, c)) for c in HAT_COLUMNS]
        for c in EXTRA_COLUMNS:  # derived from the column list, so a new provenance column cannot be left out
            if c == "subnet":
                out.append(self.subnet.to_json() if self.subnet is not None else "")
            elif c == "threads":
                out.append(str(int(self.threads)))
            else:
                out.append(escape_text(getattr(self, c)))
        return out


def number_problem(column: str, value) -> tuple[float, str]:
    """``value`` of a numeric column as a float, and what is wrong with it ("" when nothing): not a number, not
    finite, or for a latency column negative or above :data:`MAX_LATENCY_MS`. The writer and the reader both check
    cells with this, so a file one accepts the other does."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan, f"expected a number, got {str(value)[:40]!r}"
    if not math.isfinite(v):
        return v, f"expected a finite number, got {value!r}"
    if column in LATENCY_COLUMNS and v < 0:
        return v, f"latency must not be negative, got {v}"
    if column in LATENCY_COLUMNS and v > MAX_LATENCY_MS:
        return v, f"{v:g} ms is above the sanity bound {MAX_LATENCY_MS:g} ms"
    return v, ""


def _fmt(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _parse_row(row: dict, lineno: int, path: Path) -> LatencyRecord:
    vals = {}
    for c in HAT_COLUMNS:
        v, problem = number_problem(c, row.get(c))
        if problem:
            raise HatError(f"{path}: row {lineno} column '{c}': {problem}")
        vals[c] = v
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
    text = {c: unescape_text(row.get(c) or "") for c in TEXT_COLUMNS}
    return LatencyRecord(**vals, subnet=subnet, threads=threads, **text)


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
    # Records are split at "\n" only (the writer escapes every other line break inside cells); str.splitlines would
    # also split at \x0b, \x1c, \x85, \u2028 ... and tear a row another tool wrote.
    lines = [ln for ln in re.split(r"(?<=\n)", text) if ln]
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


def existing_keys(path: str | os.PathLike, **provenance: str) -> set:
    """``SubnetConfig.key()`` of every measured subnet in ``path`` (empty set when the file does not exist yet).

    Used to resume a measurement run without re-measuring.

    Args:
        path: the latency CSV.
        provenance: e.g. ``runtime="onnxruntime", device="cpu"``: every row must name these values (an empty
            cell, as in HAT's files, counts as a mismatch too), so a resume never mixes devices in one file.

    Raises:
        HatError: a row names another device/runtime (the first mismatch is named), or the file is unreadable.
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
    for key, want in provenance.items():
        for r in recs:
            have = getattr(r, key)
            if have != want:
                raise HatError(f"{p}: holds rows with {key} '{escape_text(have)[:60]}', this run measures {key} "
                               f"'{want}'; --resume only continues a file of the same {key} (use another --out)")
    return {r.subnet.key() for r in recs if r.subnet is not None}


def dedupe_records(records: Iterable[LatencyRecord]) -> tuple[list[LatencyRecord], int]:
    """Average rows that measured the same SubTransformer (same ``subnet``; rows without one are kept as they are).

    Returns:
        ``(records, n_duplicates)``: one record per config in first-seen order (latency means and stds averaged,
        provenance of the first), and how many rows were folded into an earlier one.
    """
    groups: dict = {}
    order: list = []
    for i, r in enumerate(records):
        key = r.subnet.key() if r.subnet is not None else ("row", i)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    out, n_dup = [], 0
    for key in order:
        rs = groups[key]
        if len(rs) == 1:
            out.append(rs[0])
            continue
        n_dup += len(rs) - 1
        avg = {c: sum(getattr(r, c) for r in rs) / len(rs) for c in LATENCY_COLUMNS}
        out.append(dataclasses.replace(rs[0], **avg))
    return out, n_dup


def count_duplicates(records: Iterable[LatencyRecord]) -> int:
    """How many rows repeat a SubTransformer measured in an earlier row."""
    return dedupe_records(records)[1]


def _csv_line(cells: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(cells))
    return buf.getvalue()


class CsvAppender:
    """Append-only latency CSV writer: header once, one fsync'd line per record.

    Use as a context manager::

        with CsvAppender("lat.csv") as out:
            out.append(LatencyRecord.from_subnet(cfg, enc_ms, dec_ms, runtime="eager", device="cpu"))

    While open, it holds an exclusive lock on ``<path>.lock`` (:func:`hat.io.exclusive_lock`): a second writer of
    the same file fails at once with one line. A new file gets its header atomically (temp file + rename). On open,
    a last line without a trailing newline (the previous writer was killed mid-row) is dropped
    (``dropped_partial_line`` tells whether that happened). An existing file must have our header.
    """

    def __init__(self, path: str | os.PathLike):
        # the file the user named, a symbolic link to it followed on purpose (one lock for every name of a file);
        # the resolved file itself is never written through a link
        self.path = Path(path).resolve()
        self._f = None
        self._lock = None
        self.dropped_partial_line = False

    def open(self) -> "CsvAppender":
        """Lock, then open (creating parent folders and the header when new); called by ``__enter__``.

        Raises:
            hat.io.LockHeld: another writer has the file open.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = exclusive_lock(self.path, "latency CSV")
        lock.__enter__()
        self._lock = lock
        try:
            self._open_locked()
        except BaseException:
            self.close()
            raise
        return self

    def _open_locked(self) -> None:
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
        if need_header:  # whole header or nothing: a reader never sees half a header
            atomic_write(self.path, _csv_line(CSV_COLUMNS))
        self._f = open_append(self.path)

    def append(self, record: LatencyRecord) -> None:
        """Validate ``record`` (:meth:`LatencyRecord.validate`), then write it as one line, flushed and fsync'd.

        Raises:
            HatError: the record is invalid (nothing is written).
        """
        if self._f is None:
            raise HatError(f"{self.path}: CsvAppender is not open (use it as a context manager)")
        record.validate(f"{self.path}: refusing to write a record from device '{escape_text(record.device)[:60]}'")
        # One write call per line: a kill leaves at most one partial line, which the next open drops.
        append_fsync(self._f, _csv_line(record.to_row()))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)

    def __enter__(self) -> "CsvAppender":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CSV_COLUMNS", "HAT_COLUMNS", "LATENCY_COLUMNS", "EXTRA_COLUMNS", "LatencyRecord", "number_problem",
           "read_latency_csv", "CsvAppender", "existing_keys", "dedupe_records", "count_duplicates", "escape_text", "unescape_text",
           "MAX_LATENCY_MS", "TEXT_COLUMNS"]
