"""Measure SubTransformers on a device and append latency records as they finish.

Example::

    from hat.latency.devices import load_device
    from hat.latency.backends import get_backend
    from hat.latency.profiler import profile, sample_configs
    from hat.space import load_space

    space = load_space("multi30k_tiny")
    configs = sample_configs(space, 10, seed=1, widen=True)
    with get_backend(load_device("cpu"), qkv_dim=space.qkv_dim) as backend:
        records = profile(configs, backend, out="lat.csv")
"""

from __future__ import annotations

import os
import random
from typing import Callable, Iterable, Optional

from hat.latency.backends.base import Backend, Measurement
from hat.latency.protocol import utc_timestamp
from hat.latency.records import CsvAppender, LatencyRecord, existing_keys
from hat.space import SearchSpace, SubnetConfig


def sample_configs(space: SearchSpace, n: int, seed: int = 0, widen: bool = True,
                   max_tries_factor: int = 50) -> list[SubnetConfig]:
    """``n`` distinct SubTransformers sampled with ``random.Random(seed)``.

    Args:
        space: the search space.
        n: how many.
        seed: RNG seed; the same seed gives the same list, so ``--resume`` regenerates the same configs.
        widen: sample from ``space.widened()`` (HAT profiles a slightly wider space so the predictor does not
            extrapolate at the corners).
        max_tries_factor: give up after ``n * max_tries_factor`` draws (tiny spaces have few distinct configs).
    """
    src = space.widened() if widen else space
    rng = random.Random(seed)
    seen, out = set(), []
    for _ in range(max(n, 1) * max_tries_factor):
        if len(out) >= n:
            break
        c = src.sample(rng)
        if c.key() not in seen:
            seen.add(c.key())
            out.append(c)
    return out


def make_record(subnet: SubnetConfig, m: Measurement, backend: Backend) -> LatencyRecord:
    """A :class:`~hat.latency.records.LatencyRecord` from a measurement (trimmed stats, provenance)."""
    em, dm, es, ds = m.stats(backend.settings.trim)
    return LatencyRecord.from_subnet(subnet, em, dm, es, ds, runtime=backend.name, device=backend.device.name,
                                     host=m.host, threads=m.threads, timestamp=utc_timestamp(),
                                     quantize=getattr(backend.device, "quantize", "none"))


def profile(configs: Iterable[SubnetConfig], backend: Backend, out: str | os.PathLike | None = None,
            resume: bool = False, progress: bool = False,
            on_record: Optional[Callable[[LatencyRecord], None]] = None) -> list[LatencyRecord]:
    """Measure ``configs`` with ``backend``; each record is appended to ``out`` (flushed + fsync'd) as it finishes.

    An interruption (Ctrl-C, a device that stays unreachable) loses at most the record in flight; rerun with
    ``resume=True`` to skip configs already in ``out``.

    Args:
        configs: SubTransformers to measure.
        backend: from :func:`hat.latency.backends.get_backend`.
        out: CSV path (created with a header, else appended to), or None to only return the records.
        resume: skip configs whose ``key()`` is already in ``out``.
        progress: show a tqdm bar on stderr.
        on_record: called with each record after it is written.

    Returns:
        The new records, in measurement order.
    """
    configs = list(configs)
    # Lock the file before reading what is done: a second writer stops here instead of measuring duplicates.
    appender = CsvAppender(out).open() if out is not None else None
    if resume and out is not None:
        try:
            done = existing_keys(out, runtime=backend.name, device=backend.device.name)
        except BaseException:
            appender.close()
            raise
        configs = [c for c in configs if c.key() not in done]
    records: list[LatencyRecord] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(configs), unit="config", desc=f"profile {backend.device.name}", dynamic_ncols=True)
    try:
        for subnet, m in backend.measure_many(configs):
            rec = make_record(subnet, m, backend)
            if appender is not None:
                appender.append(rec)
            records.append(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{rec.latency_ms:.1f} ms")
            if on_record is not None:
                on_record(rec)
    finally:
        if bar is not None:
            bar.close()
        if appender is not None:
            appender.close()
    return records
