"""Measurement noise: the same SubTransformer measured N times in separate runs (model / session rebuilt each time);
coefficient of variation (std / mean) of the per-run trimmed means, per backend.

    python benchmarks/latency_noise.py --space multi30k_tiny --runs 10 --backends onnxruntime eager

Raw record (every run's numbers): ``benchmarks/results/latency_noise_<space>_<config>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord, load_average  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--config", choices=["largest", "smallest"], default="largest")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "eager"])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results",
                    help="raw record path (default benchmarks/results/latency_noise_<space>_<config>.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from hat.latency.backends import get_backend
    from hat.latency.devices import DeviceConfig
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    space = load_space(args.space)
    rec = RunRecord(f"latency_noise_{space.name}_{args.config}", out=args.results)
    samples, summary = [], {}
    subnet = getattr(space, args.config)()
    settings = ProfileSettings(warmup=args.warmup, repeats=args.repeats, vocab_size=args.vocab_size)
    print(f"space {space.name}, {args.config} config, HAT protocol (src 30, 30 steps, beam 5, vocab "
          f"{args.vocab_size}), warmup {args.warmup}, repeats {args.repeats}, {args.threads} thread(s), "
          f"{args.runs} separate runs")
    print(f"{'backend':<12} {'mean_ms':>9} {'cv_total':>9} {'cv_enc':>8} {'cv_dec':>8} {'within_run_cv':>14} {'s':>6}")
    for rt in args.backends:
        backend = get_backend(DeviceConfig(name="cpu", runtime=rt, threads=args.threads), settings, space.qkv_dim)
        t0 = time.time()
        enc, dec, within = [], [], []
        for run in range(args.runs):
            load = load_average()
            em, dm, es, ds = backend.measure(subnet).stats(settings.trim)
            samples.append({"backend": rt, "run": run, "encoder_ms": em, "decoder_ms": dm, "encoder_std_ms": es,
                            "decoder_std_ms": ds, "load_average": load})
            enc.append(em)
            dec.append(dm)
            within.append((es + ds) / (em + dm))
        tot = [e + d for e, d in zip(enc, dec)]

        def cv(xs):
            return statistics.pstdev(xs) / statistics.fmean(xs)
        print(f"{rt:<12} {statistics.fmean(tot):9.2f} {cv(tot):9.3f} {cv(enc):8.3f} {cv(dec):8.3f} "
              f"{statistics.fmean(within):14.3f} {time.time() - t0:6.0f}")
        summary[rt] = {"mean_total_ms": statistics.fmean(tot), "cv_total": cv(tot), "cv_encoder": cv(enc),
                       "cv_decoder": cv(dec), "mean_within_run_cv": statistics.fmean(within),
                       "seconds": time.time() - t0}
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")


if __name__ == "__main__":
    main()
