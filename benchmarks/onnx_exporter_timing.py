"""ONNX export time of one SubTransformer: ``torch.onnx.export(dynamo=False)`` ("legacy", TorchScript tracing, our
default) vs ``dynamo=True`` (torch.export + onnxscript), both through ``hat.export.onnx.export_onnx`` (encoder and
explicit-cache decoder step, dynamic axes, ``onnx.checker`` on).

The exporters alternate run by run (legacy first in even runs) so load from other processes hits both alike; every
run's wall and CPU seconds go to ``benchmarks/results/onnx_exporter_timing.json``; the docs quote the median.

    python benchmarks/onnx_exporter_timing.py [--space multi30k_tiny] [--config largest] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord, load_average  # noqa: E402

EXPORTERS = ("legacy", "dynamo")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--config", default="largest", help="largest, smallest, or sample:SEED")
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--exporters", default=",".join(EXPORTERS))
    ap.add_argument("--results", help="raw record path (default benchmarks/results/onnx_exporter_timing.json)")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rec = RunRecord("onnx_exporter_timing", out=args.results)

    from hat.export.onnx import export_onnx
    from hat.nn import ModelConfig, Transformer
    from hat.space import load_space
    space = load_space(args.space)
    if args.config.startswith("sample:"):
        subnet = space.sample(random.Random(int(args.config.split(":", 1)[1])))
    else:
        subnet = getattr(space, args.config)()
    torch.manual_seed(0)
    model = Transformer(subnet, ModelConfig(src_vocab_size=args.vocab_size, tgt_vocab_size=args.vocab_size),
                        qkv_dim=space.qkv_dim).eval()
    exporters = [e.strip() for e in args.exporters.split(",") if e.strip()]
    samples = []
    for run in range(args.runs):
        for ex in (exporters if run % 2 == 0 else exporters[::-1]):
            with tempfile.TemporaryDirectory() as tmp:
                load = load_average()
                w0, c0 = time.perf_counter(), time.process_time()
                export_onnx(model, tmp, exporter=ex)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            samples.append({"run": run, "exporter": ex, "wall_s": wall, "cpu_s": cpu, "load_average": load})
            print(f"run {run} {ex:7s} {wall:7.2f} s wall, {cpu:7.2f} CPU-s", flush=True)
    summary = {ex: {"median_wall_s": statistics.median(s["wall_s"] for s in samples if s["exporter"] == ex),
                    "median_cpu_s": statistics.median(s["cpu_s"] for s in samples if s["exporter"] == ex)}
               for ex in exporters}
    summary["subnet"] = subnet.to_dict()
    for ex in exporters:
        print(f"{ex:7s} median {summary[ex]['median_wall_s']:.2f} s wall, {summary[ex]['median_cpu_s']:.2f} CPU-s")
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
