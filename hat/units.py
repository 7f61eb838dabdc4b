"""Units in text: latency budgets written as ``200ms``, ``0.2s``, ``500us`` (CLIs, settings files, benchmarks)."""

from __future__ import annotations

import re

from hat.errors import HatError

_LAT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|us)?\s*$", re.IGNORECASE)


def parse_latency_ms(text: str) -> float:
    """Parse ``'200ms'``, ``'0.2s'``, ``'150'`` (ms) or ``'500us'`` into milliseconds.

    Raises:
        HatError: not a positive number with an optional ms/s/us unit.
    """
    m = _LAT_RE.match(str(text))
    if not m:
        raise HatError(f"bad latency '{text}': expected a number with unit ms, s or us (e.g. 200ms)")
    value = float(m.group(1))
    unit = (m.group(2) or "ms").lower()
    ms = value * {"ms": 1.0, "s": 1000.0, "us": 0.001}[unit]
    if ms <= 0:
        raise HatError(f"bad latency '{text}': must be positive")
    return ms


def parse_latency_list_ms(text: str) -> list[float]:
    """Parse a comma-separated list of latencies (``'100ms,150ms,0.2s'``) into sorted milliseconds."""
    return sorted(parse_latency_ms(t) for t in str(text).split(",") if t.strip())


def latency_unit(text: str) -> str:
    """The unit (``ms``, ``s`` or ``us``) the first latency in ``text`` is written in (``ms`` when none is given)."""
    first = next((t for t in str(text).split(",") if t.strip()), "")
    m = _LAT_RE.match(first)
    return (m.group(2) or "ms").lower() if m else "ms"


def format_latency(ms: float, unit: str = "ms") -> str:
    """``ms`` written in ``unit`` (``'4.52 s'``, ``'120.00 ms'``), so errors echo the user's unit."""
    if unit == "s":
        return f"{ms / 1000.0:.3g} s" if ms < 1000.0 else f"{ms / 1000.0:.2f} s"
    if unit == "us":
        return f"{ms * 1000.0:.0f} us"
    return f"{ms:.2f} ms"
