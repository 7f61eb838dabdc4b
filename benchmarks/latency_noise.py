"""Measurement noise: the same SubTransformer measured N times in separate runs (model / session rebuilt each time);
coefficient of variation (std / mean) of the per-run trimmed means, per backend.

    python benchmarks/latency_noise.py --space multi30k_tiny --runs 10 --backends onnxruntime eager
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from hat.latency.backends import get_backend
    from hat.latency.devices import DeviceConfig
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    space = load_space(args.space)
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
        for _ in range(args.runs):
            em, dm, es, ds = backend.measure(subnet).stats(settings.trim)
            enc.append(em)
            dec.append(dm)
            within.append((es + ds) / (em + dm))
        tot = [e + d for e, d in zip(enc, dec)]

        def cv(xs):
            return statistics.pstdev(xs) / statistics.fmean(xs)
        print(f"{rt:<12} {statistics.fmean(tot):9.2f} {cv(tot):9.3f} {cv(enc):8.3f} {cv(dec):8.3f} "
              f"{statistics.fmean(within):14.3f} {time.time() - t0:6.0f}")


if __name__ == "__main__":
    main()
