"""CTranslate2 backend: the random-init static SubTransformer converted to a CTranslate2 model directory
(:mod:`hat.export.ctranslate2`) and timed by ``device_profiling/runner.py`` in a process of its own, here or on a
remote device (CTranslate2 publishes aarch64 wheels for the Raspberry Pi).

HAT's protocol shape: batch 1, ``src_len`` source tokens, beam ``beam``, exactly ``tgt_len`` decoder steps (the
length is forced), CTranslate2's whole beam search timed. It computes on a thread pool of its own, so the calling
thread's clock (``thread_cpu``) would miss its work: its CPU timer is ``process_cpu`` (the runner process does nothing
else). ``quantize: int8`` loads the model with ``compute_type="int8"``. It executes only what
:data:`hat.export.ctranslate2.EXECUTES` allows (one head count per encoder and per decoder, attention to the last
encoder layer): the search on a ``ctranslate2`` device never leaves that part of the space.
"""

from __future__ import annotations

import json
import os

from hat.export.ctranslate2 import EXECUTES
from hat.latency.backends.runner import RunnerBackend
from hat.space import SubnetConfig


class CTranslate2Backend(RunnerBackend):
    """CTranslate2 on the device's CPU (``intra_threads`` = the device's threads, ``inter_threads`` 1)."""

    name = "ctranslate2"
    runner_runtime = "ctranslate2"
    timers = ("wall", "process_cpu")
    quantize = ("none", "int8")
    executes = EXECUTES

    def export_config(self, subnet: SubnetConfig, out_dir: str) -> None:
        from hat.export.ctranslate2 import build_spec, convert_spec, latency_symbols
        from hat.latency.backends.eager import build_static_model
        s = self.settings
        symbols = latency_symbols(s.vocab_size)
        # HAT's source has no EOS (ProfileSettings.source_tokens): keep CTranslate2 from appending one
        spec = build_spec(build_static_model(subnet, s, self.qkv_dim), symbols, symbols, add_source_eos=False)
        convert_spec(spec, out_dir)
        with open(os.path.join(out_dir, "meta.json"), "w") as f:
            json.dump({"format": "hat-ct2-latency-1", "src_vocab_size": s.vocab_size,
                       "tgt_vocab_size": s.vocab_size}, f)
