"""ONNX Runtime vs PyTorch eager latency of the same SubTransformer (HAT protocol); goal: ORT >= 1.5x faster on CPU.

Reported as the median over ``--runs`` (>= 5) interleaved runs: each run measures both runtimes (model / session
rebuilt, warm-up, then ``--repeats`` timed passes, trimmed mean), eager first in even runs and ORT first in odd ones,
so load from other processes hits both alike. Every run's numbers go to the raw record
``benchmarks/results/ort_vs_eager_<space>_<config>.json``.

    python benchmarks/ort_vs_eager.py --space wmt14_space0 --config smallest --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord, load_average  # noqa: E402

RUNTIMES = ("eager", "onnxruntime")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="wmt14_space0")
    ap.add_argument("--config", choices=["largest", "smallest"], default="smallest")
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs (the median is reported; >= 5)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", help="raw record path (default benchmarks/results/ort_vs_eager_<space>_<config>.json)")
    args = ap.parse_args(argv)
    if args.runs < 5:
        ap.error("--runs must be >= 5 (the reported number is a median of interleaved runs)")
    torch.set_num_threads(args.threads)

    from hat.latency.backends import get_backend
    from hat.latency.devices import DeviceConfig
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    space = load_space(args.space)
    rec = RunRecord(f"ort_vs_eager_{space.name}_{args.config}", out=args.results)
    subnet = getattr(space, args.config)()
    settings = ProfileSettings(warmup=args.warmup, repeats=args.repeats, vocab_size=args.vocab_size)
    backends = {rt: get_backend(DeviceConfig(name="cpu", runtime=rt, threads=args.threads), settings, space.qkv_dim)
                for rt in RUNTIMES}
    samples = []
    for run in range(args.runs):
        for rt in (RUNTIMES if run % 2 == 0 else RUNTIMES[::-1]):
            load = load_average()
            em, dm, es, ds = backends[rt].measure(subnet).stats(settings.trim)
            samples.append({"run": run, "runtime": rt, "encoder_ms": em, "decoder_ms": dm, "total_ms": em + dm,
                            "encoder_std_ms": es, "decoder_std_ms": ds, "load_average": load})
            print(f"run {run} {rt:<12} enc {em:8.2f} dec {dm:9.2f} total {em + dm:9.2f} ms", flush=True)

    def med(rt, key):
        return statistics.median(s[key] for s in samples if s["runtime"] == rt)
    summary = {rt: {k: med(rt, k) for k in ("encoder_ms", "decoder_ms", "total_ms")} for rt in RUNTIMES}
    per_run = [next(s["total_ms"] for s in samples if s["run"] == r and s["runtime"] == "eager")
               / next(s["total_ms"] for s in samples if s["run"] == r and s["runtime"] == "onnxruntime")
               for r in range(args.runs)]
    e, o = summary["eager"], summary["onnxruntime"]
    summary["speedup_total_of_medians"] = e["total_ms"] / o["total_ms"]
    summary["speedup_encoder_of_medians"] = e["encoder_ms"] / o["encoder_ms"]
    summary["speedup_decoder_of_medians"] = e["decoder_ms"] / o["decoder_ms"]
    summary["speedup_per_run"] = per_run
    summary["speedup_median_of_runs"] = statistics.median(per_run)
    summary["subnet"] = subnet.to_dict()
    print(f"space {space.name} {args.config}: {subnet.to_json()}")
    print(f"HAT protocol (src 30, 30 steps, beam 5, vocab {args.vocab_size}), {args.threads} thread(s), "
          f"warmup {args.warmup}, repeats {args.repeats}, median of {args.runs} interleaved runs")
    print(f"{'':<12} {'enc_ms':>8} {'dec_ms':>9} {'total_ms':>9}")
    for rt in RUNTIMES:
        print(f"{rt:<12} {summary[rt]['encoder_ms']:8.2f} {summary[rt]['decoder_ms']:9.2f} "
              f"{summary[rt]['total_ms']:9.2f}")
    print(f"speed-up ORT vs eager (medians): encoder {summary['speedup_encoder_of_medians']:.2f}x, decoder "
          f"{summary['speedup_decoder_of_medians']:.2f}x, total {summary['speedup_total_of_medians']:.2f}x; per run "
          f"{', '.join(f'{x:.2f}' for x in per_run)} (median {summary['speedup_median_of_runs']:.2f}x)")
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
