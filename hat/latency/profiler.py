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
import warnings
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
    """A :class:`~hat.latency.records.LatencyRecord` from a measurement (the settings' estimator, provenance)."""
    s = backend.settings
    em, dm, es, ds = m.stats(s.trim, s.estimator)
    return LatencyRecord.from_subnet(subnet, em, dm, es, ds, runtime=backend.name, device=backend.device.name,
                                     host=m.host, threads=m.threads, timestamp=utc_timestamp(),
                                     quantize=getattr(backend.device, "quantize", "none"), timer=m.timer,
                                     estimator=s.estimator)


class DriftCheck:
    """Re-measures a reference config every ``settings.drift_every`` configs; warns when it moved by more than
    ``settings.drift_tolerance`` from its first measurement (thermal throttling, frequency scaling, a new
    background job: every config measured since is suspect).

    Args:
        backend: the backend measuring the dataset.
        reference: the reference SubTransformer (the profiler uses the first config of the full list, so a resumed
            run uses the same one).
        warn: called with one line per warning.
    """

    def __init__(self, backend: Backend, reference: SubnetConfig, warn: Callable[[str], None]):
        self.backend, self.reference, self.warn = backend, reference, warn
        self.every = backend.settings.drift_every
        self.baseline_ms: Optional[float] = None
        self.since = 0
        self.history: list[float] = []  # reference latency (ms) at each check, baseline first

    def _measure(self) -> float:
        s = self.backend.settings
        em, dm, _, _ = self.backend.measure(self.reference).stats(s.trim, s.estimator)
        self.history.append(em + dm)
        return em + dm

    def start(self, n_pending: int) -> None:
        """Measure the baseline, if ``n_pending`` configs will reach a check at all."""
        if 0 < self.every < n_pending:
            self.baseline_ms = self._measure()

    def after(self, n_configs: int) -> None:
        """Count ``n_configs`` newly measured configs; re-measure the reference when ``every`` were reached."""
        if self.baseline_ms is None:
            return
        self.since += n_configs
        if self.since < self.every:
            return
        self.since = 0
        now = self._measure()
        rel = now / self.baseline_ms - 1.0
        if abs(rel) > self.backend.settings.drift_tolerance:
            self.warn(f"latency drift: the reference config now measures {now:.3f} ms, {rel:+.1%} from "
                      f"{self.baseline_ms:.3f} ms at the start (tolerance "
                      f"{self.backend.settings.drift_tolerance:.0%}); configs measured since may be off")


def _default_warn(msg: str) -> None:
    warnings.warn(msg, LatencyWarning, stacklevel=3)


class LatencyWarning(UserWarning):
    """The measurement may be off: busy machine, drifting reference."""


def profile(configs: Iterable[SubnetConfig], backend: Backend, out: str | os.PathLike | None = None,
            resume: bool = False, progress: bool = False,
            on_record: Optional[Callable[[LatencyRecord], None]] = None,
            on_warning: Optional[Callable[[str], None]] = None, load_check: bool = True) -> list[LatencyRecord]:
    """Measure ``configs`` with ``backend``; records are appended to ``out`` (flushed + fsync'd) as they finish.

    Configs are measured in chunks of ``settings.interleave`` (interleaved rounds, see
    :mod:`hat.latency.backends.base`); a chunk's rows are written when the chunk completes. An interruption (Ctrl-C,
    SIGKILL, a device that stays unreachable) loses at most the chunk in flight (a partial last line is dropped on
    the next open); rerun with ``resume=True`` to measure exactly the configs not in ``out``.

    Args:
        configs: SubTransformers to measure.
        backend: from :func:`hat.latency.backends.get_backend`.
        out: CSV path (created with a header, else appended to), or None to only return the records.
        resume: skip configs whose ``key()`` is already in ``out``.
        progress: show a tqdm bar on stderr.
        on_record: called with each record after it is written.
        on_warning: called with one line per warning (busy machine, latency drift); default
            ``warnings.warn(msg, LatencyWarning)``.
        load_check: look at the load before profiling and after every chunk (local devices; a remote device's
            load is not visible from here).

    Returns:
        The new records, in measurement order.
    """
    configs = list(configs)
    warn = on_warning or _default_warn
    reference = configs[0] if configs else None  # the full list's first: a resumed run checks the same one
    # Lock the file before reading what is done: a second writer stops here instead of measuring duplicates.
    appender = CsvAppender(out).open() if out is not None else None
    records: list[LatencyRecord] = []
    bar = None
    try:
        if resume and out is not None:
            done = existing_keys(out, runtime=backend.name, device=backend.device.name,
                                 timer=backend.settings.timer)
            configs = [c for c in configs if c.key() not in done]
        if not configs:
            return records
        monitor = None
        if load_check and backend.device.transport == "local" and backend.name != "debug":
            from hat.latency.load import LoadMonitor
            monitor = LoadMonitor()
            report = monitor.sample(wait_s=0.5)
            if report.busy:
                warn(report.message())
        was_busy = monitor is not None and report.busy
        drift = DriftCheck(backend, reference, warn)
        drift.start(len(configs))
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(configs), unit="config", desc=f"profile {backend.device.name}", dynamic_ncols=True)
        chunk = max(1, backend.settings.interleave)
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
            if len(records) % chunk == 0 or len(records) == len(configs):
                # A chunk is complete (its rows are written): look at the load and the drift before the next.
                drift.after(len(records) % chunk or chunk)
                if monitor is not None:
                    report = monitor.sample()
                    if report.busy and not was_busy:
                        warn(report.message())
                    was_busy = report.busy
    finally:
        if bar is not None:
            bar.close()
        if appender is not None:
            appender.close()
    return records


MAX_SAMPLES = 100_000  # configs are sampled up front; a typo like 100000000 would eat memory before measuring any


def profile_dataset(space: SearchSpace, device, settings, samples: int, out: str | os.PathLike, *, seed: int = 1,
                    widen: bool = False, resume: bool = False, trust_on_first_use: bool = False,
                    progress: bool = True, log: Optional[Callable[[str], None]] = print,
                    on_warning: Optional[Callable[[str], None]] = None
                    ) -> tuple[list[SubnetConfig], list[LatencyRecord]]:
    """HAT's latency dataset: sample ``samples`` SubTransformers of ``space`` and measure them into ``out``.

    Args:
        space: where to sample (``widen``: its slightly widened version, as HAT does), narrowed to what the device's
            runtime executes (:func:`hat.latency.runtimes.executable_space`).
        device: a :class:`hat.latency.devices.DeviceConfig` (its ``threads`` already set).
        settings: the measurement protocol (:class:`hat.latency.protocol.ProfileSettings`).
        samples: how many distinct SubTransformers (fewer when the space has fewer).
        out: latency CSV appended to as records finish.
        seed: sampling seed.
        resume: skip configs already in ``out``.
        trust_on_first_use: SSH devices: accept and save an unknown host key.
        progress: tqdm bar.
        log: where the note about a small space goes (None: nowhere).
        on_warning: see :func:`profile` (busy machine, latency drift).

    Returns:
        The sampled configs and the records measured now (configs already in ``out`` are not measured again).

    Raises:
        HatError: ``samples`` out of range.
    """
    from hat.errors import HatError
    from hat.latency.backends import get_backend

    if not 1 <= samples <= MAX_SAMPLES:
        raise HatError(f"--samples must be between 1 and {MAX_SAMPLES:,}, got {samples:,} (HAT's predictors "
                       f"use 2,000; run several --resume'd batches with other --seed values for more)")
    from hat.latency.runtimes import executable_space
    # only what the runtime executes: its latency dataset (and so its predictor) never sees a config it cannot run
    configs = sample_configs(executable_space(space, device.runtime), samples, seed=seed, widen=widen)
    if len(configs) < samples and log is not None:
        log(f"hat-profile: space '{space.name}' has only {len(configs)} distinct configs reachable; measuring those")
    with get_backend(device, settings, space.qkv_dim, trust_on_first_use=trust_on_first_use) as backend:
        records = profile(configs, backend, out=out, resume=resume, progress=progress, on_warning=on_warning)
    return configs, records
