"""hat's whole decode with ONNX Runtime's C-level graph calls vs its public Python API, same exports, interleaved.

Each architecture of ``--record`` (the 9 models of ``docs/results.md``) and of ``--subnets`` is exported once and
decoded on HAT's protocol shape (batch 1, 30 source tokens, beam 5, exactly 30 decoder steps, 1 thread, random
weights) by two translators that differ only in how they call the decoder step
(:class:`hat.runtime.ort_calls.OrtCalls` with ``fast`` on and off). Per round both arms run ``--repeats`` decodes,
in alternating order; wall time of the whole decode (``min`` over all runs per arm, and the median). Raw JSON:
``benchmarks/results/ort_call_overhead.json``.

    python benchmarks/ort_call_overhead.py --subnets runs/repro_ct2/search_ct2/subnet_*ms.yaml

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol_race import ab_main, interleaved  # noqa: E402


def whole_ms(loop) -> float:
    """Wall time of one whole decode, in ms."""
    t = time.perf_counter()
    loop.run_once()
    return (time.perf_counter() - t) * 1e3


def race(subnet, vocab: int, qkv_dim: int, rounds: int, repeats: int) -> dict:
    """``{"fast": [ms...], "public": [ms...]}``: whole-decode wall times of one architecture, interleaved."""
    from hat.latency.backends.onnxruntime import export_subnet, load_runner
    from hat.latency.protocol import ProfileSettings
    from hat.runtime.ort_calls import OrtCalls
    settings = ProfileSettings(vocab_size=vocab, threads=1)
    with tempfile.TemporaryDirectory() as d:
        export_subnet(subnet, settings, qkv_dim, d)
        loops = {arm: load_runner().Loop(d, dict(settings.to_json_dict(), timer="wall")) for arm in ("fast", "public")}
        loops["public"].tr.decoder_calls = OrtCalls(loops["public"].tr.decoder, fast=False)
        assert loops["fast"].tr.decoder_calls.fast, "this onnxruntime has no C-level calls: nothing to compare"
        for loop in loops.values():  # warm-up
            loop.run_once()
        out = interleaved(loops, rounds, repeats, whole_ms)
    return out


def summarize(name: str, ms: dict) -> dict:
    """One table row: min and median whole-decode ms per arm, and the speed-up of the minima."""
    row = {"model": name, **{f"{arm}_min_ms": min(v) for arm, v in ms.items()},
           **{f"{arm}_median_ms": statistics.median(v) for arm, v in ms.items()}}
    row["speedup_min"] = row["public_min_ms"] / row["fast_min_ms"]
    return row


def line(row: dict) -> str:
    return (f"| {row['model']} | {row['public_min_ms']:.2f} | {row['fast_min_ms']:.2f} | {row['speedup_min']:.2f}x | "
            f"{row['public_median_ms']:.2f} | {row['fast_median_ms']:.2f} |")


def main(argv=None) -> int:
    return ab_main("ort_call_overhead", race, summarize, "| model | public API min ms | C-level min ms | speed-up | "
                   "public median | C-level median |\n|---|---|---|---|---|---|", line, argv)


if __name__ == "__main__":
    sys.exit(main())
