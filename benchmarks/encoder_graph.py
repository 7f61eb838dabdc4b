"""hat's ONNX encoder built node by node vs traced by torch.onnx, same weights, interleaved.

Each architecture of ``--record`` (the 9 models of ``docs/results.md``) and of ``--subnets`` is built once (random
weights) and exported twice, differing only in ``encoder.onnx`` (:func:`hat.export.onnx.export_onnx` with
``exporter="built"``, the default, and ``"legacy"``, TorchScript tracing); both decode on HAT's protocol shape
(batch 1, 30 source tokens, beam 5, exactly 30 decoder steps, 1 thread) as hat's runtime ships it. Per round both
arms run ``--repeats`` decodes in alternating order; the encoder call's and the whole decode's wall time (``min``
over all runs per arm, and the median). Raw JSON: ``benchmarks/results/encoder_graph.json``.

    python benchmarks/encoder_graph.py --subnets runs/repro_ct2/search_ct2/subnet_*ms.yaml

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol_race import ab_main, interleaved  # noqa: E402

ARMS = {"traced": "legacy", "built": "built"}


def encoder_and_whole_ms(loop) -> tuple[float, float]:
    """``(encoder_ms, whole_ms)`` of one decode."""
    enc_ms, dec_ms = loop.run_once()
    return enc_ms, enc_ms + dec_ms


def race(subnet, vocab: int, qkv_dim: int, rounds: int, repeats: int) -> dict:
    """``{arm: [(encoder_ms, whole_ms), ...]}`` of one architecture, interleaved."""
    from hat.export.onnx import export_onnx
    from hat.latency.backends.eager import build_static_model
    from hat.latency.backends.onnxruntime import load_runner
    from hat.latency.protocol import ProfileSettings
    settings = ProfileSettings(vocab_size=vocab, threads=1)
    model = build_static_model(subnet, settings, qkv_dim)
    with tempfile.TemporaryDirectory() as d:
        loops = {}
        for arm, exporter in ARMS.items():
            export_onnx(model, Path(d) / arm, exporter=exporter)
            loops[arm] = load_runner().Loop(Path(d) / arm, dict(settings.to_json_dict(), timer="wall"))
            loops[arm].run_once()  # warm-up
        out = interleaved(loops, rounds, repeats, encoder_and_whole_ms)
    return out


def summarize(name: str, ms: dict) -> dict:
    """One table row: min and median of the encoder and the whole decode per arm."""
    row = {"model": name}
    for arm, runs in ms.items():
        for i, part in enumerate(("encoder", "whole")):
            row[f"{arm}_{part}_min_ms"] = min(x[i] for x in runs)
            row[f"{arm}_{part}_median_ms"] = statistics.median(x[i] for x in runs)
    row["encoder_speedup_min"] = row["traced_encoder_min_ms"] / row["built_encoder_min_ms"]
    row["whole_speedup_min"] = row["traced_whole_min_ms"] / row["built_whole_min_ms"]
    return row


def line(row: dict) -> str:
    return (f"| {row['model']} | {row['traced_encoder_min_ms']:.2f} | {row['built_encoder_min_ms']:.2f} | "
            f"{row['encoder_speedup_min']:.2f}x | {row['traced_whole_min_ms']:.2f} | {row['built_whole_min_ms']:.2f} | "
            f"{row['whole_speedup_min']:.2f}x |")


def main(argv=None) -> int:
    return ab_main("encoder_graph", race, summarize, "| model | traced encoder min ms | built encoder min ms | speed-up "
                   "| traced whole min ms | built whole min ms | speed-up |\n|---|---|---|---|---|---|---|", line, argv)


if __name__ == "__main__":
    sys.exit(main())
