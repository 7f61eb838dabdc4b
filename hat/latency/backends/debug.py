"""Deterministic synthetic latency (for tests and dry runs): proportional to the analytic FLOPs."""

from __future__ import annotations

import socket
import time

from hat.latency.backends.base import Backend, Prepared
from hat.latency.flops import subnet_macs
from hat.space import SubnetConfig

# Synthetic machine: 1 GMAC/s plus a fixed cost per layer call, so layer count matters as on real hardware.
MACS_PER_MS = 1e6
LAYER_OVERHEAD_MS = 0.05


class _DebugRun(Prepared):
    def __init__(self, backend: "DebugBackend", enc: float, dec: float):
        self.backend, self.enc, self.dec = backend, enc, dec

    def run_once(self) -> tuple[float, float]:
        b = self.backend
        if b.sleep_ms:
            time.sleep(b.sleep_ms / 1000)
        scale = 1.0 + b.drift * b.configs_measured
        return self.enc * scale, self.dec * scale


class DebugBackend(Backend):
    """``latency = MACs / 1 GMAC/s + 0.05 ms per layer call``; every run returns the same value (std 0).

    Args:
        drift: synthetic drift for tests of the drift check: latencies are scaled by
            ``1 + drift * (configs measured so far)``.
        sleep_ms: really sleep this long per run (tests that must interrupt a run in progress).
        settings, device, qkv_dim: as :class:`~hat.latency.backends.base.Backend`.
    """

    name = "debug"
    timers = ("wall", "thread_cpu")

    def __init__(self, settings, device=None, qkv_dim: int = 512, trust_on_first_use: bool = False,
                 drift: float = 0.0, sleep_ms: float = 0.0):
        super().__init__(settings, device, qkv_dim, trust_on_first_use)
        self.drift, self.sleep_ms = float(drift), float(sleep_ms)
        self.configs_measured = 0

    def prepare(self, subnet: SubnetConfig) -> _DebugRun:
        s = self.settings
        m = subnet_macs(subnet, self.qkv_dim, s.src_len, s.tgt_len, s.vocab_size, rows=s.batch_size * s.beam)
        enc = (m.encoder + m.cross_kv) / MACS_PER_MS + LAYER_OVERHEAD_MS * subnet.encoder_layer_num
        dec = (m.decoder + m.output) / MACS_PER_MS + LAYER_OVERHEAD_MS * subnet.decoder_layer_num * s.tgt_len
        return _DebugRun(self, enc, dec)

    def runtime_info(self) -> tuple[str, str]:
        return f"{socket.gethostname()}; debug", "debug"

    def measure_chunk(self, subnets):
        out = super().measure_chunk(subnets)
        self.configs_measured += len(subnets)
        return out
