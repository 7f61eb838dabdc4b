"""Backend base class and the measurement result type (nn-Meter style: one subclass per runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

from hat.latency.devices import DeviceConfig
from hat.latency.protocol import ProfileSettings, trimmed_stats
from hat.space import SubnetConfig


@dataclass
class Measurement:
    """Raw timings of one SubTransformer (ms per timed run) and where they were taken."""

    encoder_ms: list[float]
    decoder_ms: list[float]
    host: str  # hostname; CPU model; cores; python and runtime versions
    threads: int
    runtime_version: str = ""

    def stats(self, trim: float = 0.1) -> tuple[float, float, float, float]:
        """``(encoder_mean, decoder_mean, encoder_std, decoder_std)`` in ms, trimmed (HAT's record order)."""
        em, es = trimmed_stats(self.encoder_ms, trim)
        dm, ds = trimmed_stats(self.decoder_ms, trim)
        return em, dm, es, ds


class Backend:
    """Measures SubTransformers with one runtime, following :class:`~hat.latency.protocol.ProfileSettings`.

    Subclasses implement :meth:`measure`; those that amortise set-up over many configs (remote devices) override
    :meth:`measure_many`. Optional dependencies are imported in ``__init__``/``measure``, never at module import.

    Args:
        settings: the measurement protocol.
        device: the device profile (threads, accelerator, ssh); a local CPU default when None.
        qkv_dim: the search space's fixed q/k/v width (the SubnetConfig alone does not carry it).
    """

    name = ""

    def __init__(self, settings: ProfileSettings, device: Optional[DeviceConfig] = None, qkv_dim: int = 512):
        self.settings = settings
        self.device = device or DeviceConfig(name="cpu", runtime=self.name or "debug", threads=settings.threads)
        self.qkv_dim = int(qkv_dim)

    @property
    def threads(self) -> int:
        """Intra-op threads: the device's pin."""
        return self.device.threads

    def measure(self, subnet: SubnetConfig) -> Measurement:
        """Time one SubTransformer."""
        raise NotImplementedError

    def measure_many(self, subnets: Iterable[SubnetConfig]) -> Iterator[tuple[SubnetConfig, Measurement]]:
        """Yield ``(subnet, measurement)`` as each finishes (the caller records it before the next one starts)."""
        for s in subnets:
            yield s, self.measure(s)

    def close(self) -> None:
        """Release sessions / connections."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
