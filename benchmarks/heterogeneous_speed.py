"""Does hat's runtime run a heterogeneous SubTransformer as fast as a uniform one of the same FLOPs?

For each uniform reference of ``multi30k_cpu`` (the reproduction's layer- and width-scaled baselines), configs are
sampled from the space until ``--per-reference`` heterogeneous ones (per-layer FFN widths or head counts differ, or
a decoder layer attends to several encoder layers) have FLOPs within ``--tolerance`` of the reference's. All are
timed with HAT's protocol as the runtime ships it (hat's ONNX runtime, its whole decode, 1 thread, the ``cpu``
device's timer and estimator) in interleaved rounds (:func:`hat.latency.deployed.protocol_rounds`); the summary is
each heterogeneous config's latency / its reference's. Raw JSON: ``benchmarks/results/heterogeneous_speed.json``
(``--same-depth``: ``heterogeneous_speed_same_depth.json``).

    python benchmarks/heterogeneous_speed.py --rounds 7 --repeats 10

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import RunRecord  # noqa: E402


def heterogeneous(cfg) -> bool:
    """Per-layer genes differ across layers (``is_uniform`` lists those genes), or arbitrary encoder-decoder
    attention."""
    return bool(cfg.is_uniform()) or any(v != -1 for v in cfg.decoder_arbitrary_ende_attn)


def same_depth(cfg, ref) -> bool:
    return (cfg.encoder_layer_num, cfg.decoder_layer_num) == (ref.encoder_layer_num, ref.decoder_layer_num)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="multi30k_cpu")
    p.add_argument("--references", nargs="+", default=["Transformer-e2d1", "Transformer-e2d2", "Transformer-w144"])
    p.add_argument("--per-reference", type=int, default=3)
    p.add_argument("--tolerance", type=float, default=0.03, help="relative FLOPs difference allowed")
    p.add_argument("--vocab", type=int, default=3956, help="target vocabulary (the reproduction's)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--same-depth", action="store_true",
                   help="only configs with the reference's layer counts (the decoder's depth, not its FLOPs, sets "
                        "most of a small model's step time: this isolates per-layer heterogeneity)")
    args = p.parse_args(argv)
    from hat.baselines import baselines
    from hat.latency.deployed import protocol_rounds
    from hat.latency.flops import subnet_flops
    from hat.space import load_space
    space = load_space(args.space)
    base, rng, items, pairs = baselines(space), random.Random(args.seed), {}, []
    for ref in args.references:
        target = subnet_flops(base[ref], space.qkv_dim)
        items[ref] = (base[ref], "onnxruntime", "none")
        found = 0
        for _ in range(200_000):
            c = space.sample(rng)
            if heterogeneous(c) and (not args.same_depth or same_depth(c, base[ref])) and abs(subnet_flops(c, space.qkv_dim) / target - 1) <= args.tolerance:
                name = f"{ref}~het{found}"
                items[name] = (c, "onnxruntime", "none")
                pairs.append((name, ref))
                found += 1
                if found == args.per_reference:
                    break
    res = protocol_rounds(items, args.vocab, space.qkv_dim, args.rounds, args.repeats,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    lat = res["latency_ms"]
    rows = [{"config": n, "reference": ref, "latency_ms": lat[n], "reference_ms": lat[ref],
             "ratio": lat[n] / lat[ref], "flops_ratio": subnet_flops(items[n][0], space.qkv_dim) /
             subnet_flops(items[ref][0], space.qkv_dim), "subnet": items[n][0].to_dict()} for n, ref in pairs]
    print("| heterogeneous config | reference | ms | reference ms | latency ratio | FLOPs ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['reference']} | {r['latency_ms']:.2f} | {r['reference_ms']:.2f} | "
              f"{r['ratio']:.3f} | {r['flops_ratio']:.3f} |")
    ratios = [r["ratio"] for r in rows]
    summary = {"rows": rows, "median_ratio": statistics.median(ratios), "max_ratio": max(ratios),
               "timer": res["timer"], "estimator": res["estimator"], "loadavg_before": res["loadavg_before"],
               "loadavg_after": res["loadavg_after"]}
    print(f"median latency ratio {summary['median_ratio']:.3f}, max {summary['max_ratio']:.3f}")
    rec = RunRecord("heterogeneous_speed_same_depth" if args.same_depth else "heterogeneous_speed")
    print(f"raw record: {rec.write(args=vars(args), samples=[{'name': k, **s} for k, v in res['samples'].items() for s in v], summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
