"""Apache TVM backend (extra ``hat[tvm]``): the static SubTransformer compiled with Relax for the local CPU.

``torch.export`` -> ``tvm.relax.frontend.torch.from_exported_program`` -> ``tvm.compile(target llvm)``, for the
graphs every export uses (:func:`hat.export.graphs.build_graphs`: encoder -> cross K/V; one decoder step with a
dynamic-length self K/V cache), then HAT's loop in the Relax VM. Compiling takes tens of seconds per SubTransformer; meant for spot checks.
"""

from __future__ import annotations

import os
import time

from hat.latency.backends.base import Backend, Prepared
from hat.latency.protocol import host_info
from hat.space import SubnetConfig


class TvmBackend(Backend):
    """TVM Relax on this machine's CPU (``TVM_NUM_THREADS`` = the device's threads, set before first use)."""

    name = "tvm"

    def runtime_info(self) -> tuple[str, str]:
        from hat.export.tvm import import_tvm
        tvm = import_tvm("runtime tvm")
        version = f"tvm {tvm.__version__}"
        return host_info(version), version

    def prepare(self, subnet: SubnetConfig) -> Prepared:
        # TVM's thread pool reads this once, when it starts.
        os.environ.setdefault("TVM_NUM_THREADS", str(self.threads))
        from hat.export.tvm import import_tvm
        tvm = import_tvm("runtime tvm")
        import numpy as np
        import torch
        from tvm import relax
        from tvm.relax.frontend.torch import from_exported_program

        from hat.export.graphs import build_graphs
        from hat.latency.backends.eager import build_static_model
        s = self.settings
        model = build_static_model(subnet, s, self.qkv_dim)
        enc_graph, step_graph = build_graphs(model)
        target = tvm.target.Target({"kind": "llvm"})
        src = torch.tensor(s.source_tokens(), dtype=torch.long)
        with torch.no_grad():
            enc_vm = relax.VirtualMachine(tvm.compile(from_exported_program(torch.export.export(enc_graph, (src,))),
                                                      target=target), tvm.cpu())
            enc_example = enc_graph(src)
            rows = src.shape[0] * s.beam
            cross = [x.repeat_interleave(s.beam, 0) for x in enc_example]
            caches = []
            for h in subnet.decoder_self_attention_heads:
                caches += [torch.zeros(rows, h, 2, self.qkv_dim // h)] * 2
            past = torch.export.Dim("past_len", min=0, max=max(s.tgt_len, 2))
            shapes = (None, None, None, tuple([None] * (len(cross) - 1) + [{2: past}] * len(caches)))
            ep = torch.export.export(step_graph, (torch.full((rows, 1), 2), torch.tensor(2), *cross, *caches),
                                     dynamic_shapes=shapes)
        dec_vm = relax.VirtualMachine(tvm.compile(from_exported_program(ep), target=target), tvm.cpu())

        def arr(x):
            return tvm.runtime.tensor(np.require(x, requirements="C"))

        src_t = arr(src.numpy())
        tokens = [arr(np.asarray(t, dtype=np.int64).reshape(-1, 1)) for t in s.target_tokens()]
        steps = [arr(np.array(i, dtype=np.int64)) for i in range(s.tgt_len)]
        empty = [arr(np.zeros((rows, h, 0, self.qkv_dim // h), np.float32))
                 for h in subnet.decoder_self_attention_heads for _ in range(2)]
        beam = s.beam

        class _TvmRun(Prepared):
            def run_once(self) -> tuple[float, float]:
                t0 = time.perf_counter_ns()
                enc_out = enc_vm["main"](src_t)
                t1 = time.perf_counter_ns()
                feeds = [arr(np.repeat(o.numpy(), beam, axis=0)) for o in enc_out]
                cache = empty
                for tok, step in zip(tokens, steps):
                    out = dec_vm["main"](tok, step, *feeds, *cache)
                    cache = list(out)[1:]
                t2 = time.perf_counter_ns()
                return (t1 - t0) / 1e6, (t2 - t1) / 1e6

        return _TvmRun()
