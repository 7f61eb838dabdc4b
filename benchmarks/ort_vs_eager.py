"""ONNX Runtime vs PyTorch eager latency of the same SubTransformer (HAT protocol, one run each); goal: ORT >= 1.5x
faster on CPU.

    python benchmarks/ort_vs_eager.py --space wmt14_space0 --config smallest
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="wmt14_space0")
    ap.add_argument("--config", choices=["largest", "smallest"], default="smallest")
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
    res = {}
    for rt in ("eager", "onnxruntime"):
        b = get_backend(DeviceConfig(name="cpu", runtime=rt, threads=args.threads), settings, space.qkv_dim)
        res[rt] = b.measure(subnet).stats(settings.trim)
    print(f"space {space.name} {args.config}: {subnet.to_json()}")
    print(f"HAT protocol (src 30, 30 steps, beam 5, vocab {args.vocab_size}), {args.threads} thread(s), "
          f"warmup {args.warmup}, repeats {args.repeats}")
    print(f"{'':<12} {'enc_ms':>8} {'dec_ms':>9} {'total_ms':>9}")
    for rt, (em, dm, _, _) in res.items():
        print(f"{rt:<12} {em:8.2f} {dm:9.2f} {em + dm:9.2f}")
    (ee, ed, _, _), (oe, od, _, _) = res["eager"], res["onnxruntime"]
    print(f"speed-up ORT vs eager: encoder {ee / oe:.2f}x, decoder {ed / od:.2f}x, total "
          f"{(ee + ed) / (oe + od):.2f}x")


if __name__ == "__main__":
    main()
