"""Deterministic synthetic latency (for tests and dry runs): proportional to the analytic FLOPs."""

from __future__ import annotations

import socket

from hat.latency.backends.base import Backend, Measurement
from hat.latency.flops import subnet_macs
from hat.space import SubnetConfig

# Synthetic machine: 1 GMAC/s plus a fixed cost per layer call, so layer count matters as on real hardware.
MACS_PER_MS = 1e6
LAYER_OVERHEAD_MS = 0.05


class DebugBackend(Backend):
    """``latency = MACs / 1 GMAC/s + 0.05 ms per layer call``; every run returns the same value (std 0)."""

    name = "debug"

    def measure(self, subnet: SubnetConfig) -> Measurement:
        s = self.settings
        m = subnet_macs(subnet, self.qkv_dim, s.src_len, s.tgt_len, s.vocab_size, rows=s.batch_size * s.beam)
        enc = (m.encoder + m.cross_kv) / MACS_PER_MS + LAYER_OVERHEAD_MS * subnet.encoder_layer_num
        dec = (m.decoder + m.output) / MACS_PER_MS + LAYER_OVERHEAD_MS * subnet.decoder_layer_num * s.tgt_len
        return Measurement([enc] * s.repeats, [dec] * s.repeats, host=f"{socket.gethostname()}; debug",
                           threads=self.threads, runtime_version="debug")
