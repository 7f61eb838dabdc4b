"""Backend base class and the measurement result type (nn-Meter style: one subclass per runtime).

Configs are measured in chunks of ``settings.interleave``: every config of a chunk is prepared (model built /
session loaded) once, then timed in rounds, each round running every config once (:meth:`Backend.measure_chunk`).
A load burst or a slow drift then touches every config of the chunk a little instead of a few configs a lot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

from hat.errors import ConfigError, HatError
from hat.latency.devices import DeviceConfig
from hat.latency.protocol import THREAD_CPU_MAX_OTHER, TIMERS, ProfileSettings, summarize
from hat.space import SpaceConstraint, SubnetConfig


@dataclass
class Measurement:
    """Raw timings of one SubTransformer (ms per timed run) and where they were taken."""

    encoder_ms: list[float]
    decoder_ms: list[float]
    host: str  # hostname; CPU model; cores; python and runtime versions
    threads: int
    runtime_version: str = ""
    timer: str = "wall"  # wall | thread_cpu | process_cpu

    def stats(self, trim: float = 0.1, estimator: str = "trimmed_mean") -> tuple[float, float, float, float]:
        """``(encoder, decoder, encoder_std, decoder_std)`` in ms (HAT's record order): the ``estimator`` of the
        runs, and their trimmed std (see :func:`hat.latency.protocol.summarize`)."""
        em, es = summarize(self.encoder_ms, estimator, trim)
        dm, ds = summarize(self.decoder_ms, estimator, trim)
        return em, dm, es, ds


CLOCKS = {"wall": time.perf_counter_ns, "thread_cpu": time.thread_time_ns, "process_cpu": time.process_time_ns}


def clock_ns(timer: str) -> Callable[[], int]:
    """The clock of ``timer``: ``time.perf_counter_ns`` (wall), ``time.thread_time_ns`` (thread_cpu) or
    ``time.process_time_ns`` (process_cpu)."""
    return CLOCKS[timer]


class ThreadCpuGuard:
    """Checks that a ``thread_cpu`` measurement did its work on the calling thread.

    Process CPU time minus this thread's CPU time is what other threads of the process used meanwhile; if it
    exceeds :data:`~hat.latency.protocol.THREAD_CPU_MAX_OTHER` of the thread's time, the runtime computed on
    other threads and the thread clock undercounted: the measurement is refused.
    """

    def __init__(self, timer: str, where: str):
        self.active = timer == "thread_cpu"
        self.where = where

    def __enter__(self) -> "ThreadCpuGuard":
        if self.active:
            self.t0, self.p0 = time.thread_time_ns(), time.process_time_ns()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if not self.active or exc_type is not None:
            return
        thread = time.thread_time_ns() - self.t0
        other = time.process_time_ns() - self.p0 - thread
        if thread > 0 and other > THREAD_CPU_MAX_OTHER * thread + 2_000_000:
            raise HatError(f"{self.where}: timer thread_cpu is invalid: other threads of the process used "
                           f"{other / thread:.0%} of the measuring thread's CPU time (the runtime computes off the "
                           f"calling thread); use timer: wall")


class Prepared:
    """One config ready to time: :meth:`run_once` returns ``(encoder_ms, decoder_ms)`` of one run."""

    def run_once(self) -> tuple[float, float]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model / session."""


class Backend:
    """Measures SubTransformers with one runtime, following :class:`~hat.latency.protocol.ProfileSettings`.

    Subclasses implement :meth:`prepare` (and :meth:`runtime_info`), or override :meth:`measure_chunk` (ONNX Runtime
    hands whole chunks to ``device_profiling/runner.py``) or :meth:`measure_many` (remote devices). Optional
    dependencies are imported in ``__init__``/``prepare``, never at module import.

    Args:
        settings: the measurement protocol.
        device: the device profile (threads, accelerator, ssh); a local CPU default when None.
        qkv_dim: the search space's fixed q/k/v width (the SubnetConfig alone does not carry it).
    """

    name = ""
    # What the runtime supports (nn-Meter style: the class declares it; devices, the profiler and the search ask it).
    # timers: wall always; thread_cpu where it computes on the calling thread; process_cpu where it computes in a
    # process of its own (both with 1 intra-op thread on a CPU; see hat.latency.protocol).
    timers: tuple[str, ...] = ("wall",)
    quantize: tuple[str, ...] = ("none",)  # weight types it measures (device field quantize)
    accelerators: tuple[str, ...] = ("cpu",)
    transports: tuple[str, ...] = ("local",)  # local: this machine; ssh: a remote device (hat.transport)
    executes: Optional[SpaceConstraint] = None  # the SubTransformers it can run (None: every one)

    def __init__(self, settings: ProfileSettings, device: Optional[DeviceConfig] = None, qkv_dim: int = 512,
                 trust_on_first_use: bool = False):
        self.settings = settings
        self.device = device or DeviceConfig(name="cpu", runtime=self.name or "debug", threads=settings.threads)
        self.qkv_dim = int(qkv_dim)
        self.trust_on_first_use = trust_on_first_use

    @classmethod
    def check_timer(cls, timer: str, threads: int, accelerator: str = "cpu", where: str = "") -> None:
        """Refuse a timer this runtime cannot use (a CPU clock that would miss work).

        Raises:
            ConfigError: one line naming the reason.
        """
        where = where or "profile settings"
        if timer not in TIMERS:
            raise ConfigError(f"{where}: timer must be one of {', '.join(TIMERS)}, got '{timer}'")
        if timer == "wall":
            return
        why = ""
        if accelerator != "cpu":
            why = f"accelerator {accelerator} computes off the calling thread"
        elif threads != 1:
            why = f"{threads} intra-op threads compute on worker threads ({timer} needs threads: 1)"
        elif timer not in cls.timers:
            why = (f"runtime {cls.name} is not verified to compute "
                   f"{'on the calling thread' if timer == 'thread_cpu' else 'in a process of its own'}")
        if why:
            usable = [t for t in cls.timers if t != timer]
            raise ConfigError(f"{where}: timer {timer} is invalid here: {why}; use timer: "
                              f"{' or '.join(usable) if threads == 1 and accelerator == 'cpu' else 'wall'}")

    @classmethod
    def check_device(cls, device: DeviceConfig, where: str = "") -> None:
        """Refuse a device asking for what this runtime does not support (transport, accelerator, quantization,
        timer).

        Raises:
            ConfigError: one line naming the field and what the runtime supports.
        """
        where = where or f"device {device.name!r}"
        for field, supported in (("transport", cls.transports), ("accelerator", cls.accelerators),
                                 ("quantize", cls.quantize)):
            value = getattr(device, field)
            if value not in supported:
                raise ConfigError(f"{where}: runtime {cls.name} supports {field} {', '.join(supported)}, "
                                  f"not '{value}'")
        if device.timer is not None:
            cls.check_timer(device.timer, device.threads, device.accelerator, where)

    @classmethod
    def blockers(cls, subnet: SubnetConfig) -> list[str]:
        """Why this runtime cannot run ``subnet``, one reason per gene (empty: it can)."""
        return cls.executes.violations(subnet) if cls.executes is not None else []

    @property
    def threads(self) -> int:
        """Intra-op threads: the device's pin."""
        return self.device.threads

    def prepare(self, subnet: SubnetConfig) -> Prepared:
        """Build what times one run of ``subnet``."""
        raise NotImplementedError

    def runtime_info(self) -> tuple[str, str]:
        """``(host, runtime_version)`` recorded with each measurement."""
        return "", ""

    def measure(self, subnet: SubnetConfig) -> Measurement:
        """Time one SubTransformer."""
        return self.measure_chunk([subnet])[0]

    def measure_chunk(self, subnets: list[SubnetConfig]) -> list[Measurement]:
        """Time ``subnets`` together: ``warmup`` then ``repeats`` rounds, each running every config once."""
        s = self.settings
        prepared: list[Prepared] = []
        try:
            for sub in subnets:
                prepared.append(self.prepare(sub))
            enc = [[] for _ in prepared]
            dec = [[] for _ in prepared]
            with ThreadCpuGuard(s.timer, f"device {self.device.name}"):
                for r in range(s.warmup + s.repeats):
                    for i, p in enumerate(prepared):
                        e, d = p.run_once()
                        if r >= s.warmup:
                            enc[i].append(e)
                            dec[i].append(d)
        finally:
            for p in prepared:
                p.close()
        host, version = self.runtime_info()
        return [Measurement(e, d, host=host, threads=self.threads, runtime_version=version, timer=s.timer)
                for e, d in zip(enc, dec)]

    def measure_many(self, subnets: Iterable[SubnetConfig]) -> Iterator[tuple[SubnetConfig, Measurement]]:
        """Yield ``(subnet, measurement)`` chunk by chunk (``settings.interleave`` configs measured together); the
        caller records each before the next chunk starts."""
        subnets = list(subnets)
        k = max(1, self.settings.interleave)
        for i in range(0, len(subnets), k):
            chunk = subnets[i:i + k]
            yield from zip(chunk, self.measure_chunk(chunk))

    def close(self) -> None:
        """Release sessions / connections."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
