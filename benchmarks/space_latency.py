"""How much measured latency each gene of a search space moves: corner configs measured back to back, interleaved.

Configs: the smallest and the largest SubTransformer, and for every gene group the smallest with that gene at its
maximum ("up") and the largest with that gene at its minimum ("down"). Every round measures every config once in
a seeded shuffled order (HAT's protocol: batch 1, 30 source tokens, 30 decoder steps of beam 5, ONNX Runtime),
so slow drifts of the machine's load hit all configs alike; the median over rounds is reported. Writes raw JSON
(every sample, load averages before and after, command, versions).

    python benchmarks/space_latency.py --space configs/spaces/multi30k_cpu.yaml --vocab-size 4000 --rounds 5 \
        --out benchmarks/results/space_latency_multi30k_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

GENES = ("encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim",
         "encoder_layer_num", "decoder_layer_num", "heads")


def with_gene(cfg, space, gene: str, pick):
    """``cfg`` with gene group ``gene`` set to ``pick`` (min or max) of its choices (per-layer lists resized)."""
    from hat.space import SubnetConfig
    d = cfg.to_dict()
    if gene == "heads":
        for g in ("encoder_self_attention_heads", "decoder_self_attention_heads", "decoder_ende_attention_heads"):
            d[g] = [pick(getattr(space, g))] * len(d[g])
    elif gene.endswith("_layer_num"):
        n = pick(getattr(space, gene))
        d[gene] = n
        side = gene.split("_")[0]
        for g in [k for k in d if k.startswith(side) and isinstance(d[k], list)]:
            d[g] = (d[g] * n)[:n]
    elif gene.endswith("ffn_embed_dim"):
        d[gene] = [pick(getattr(space, gene))] * len(d[gene])
    else:
        d[gene] = pick(getattr(space, gene))
    return SubnetConfig(**d)


def corner_configs(space) -> dict:
    """``{name: SubnetConfig}``: smallest, largest, ``<gene>_up`` and ``<gene>_down`` for every gene group that
    has a choice."""
    small, big = space.smallest(), space.largest()
    out = {"smallest": small, "largest": big}
    for g in GENES:
        choices = getattr(space, "encoder_self_attention_heads" if g == "heads" else g)
        if len(set(choices)) < 2:
            continue
        out[f"{g}_up"] = with_gene(small, space, g, max)
        out[f"{g}_down"] = with_gene(big, space, g, min)
    for name, c in out.items():
        space.check(c, name)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", required=True)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per measurement (after 5 warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import onnxruntime
    import torch
    torch.set_num_threads(args.threads)
    from hat.io import atomic_write
    from hat.latency.backends import get_backend
    from hat.latency.devices import DeviceConfig
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    space = load_space(args.space)
    configs = corner_configs(space)
    settings = ProfileSettings(vocab_size=args.vocab_size, repeats=args.repeats, threads=args.threads)
    backend = get_backend(DeviceConfig(name="cpu", runtime="onnxruntime", threads=args.threads), settings,
                          space.qkv_dim)
    rng = random.Random(args.seed)
    samples = {n: [] for n in configs}
    load_before = os.getloadavg()
    t0 = time.time()
    for r in range(args.rounds):
        order = list(configs)
        rng.shuffle(order)
        for n in order:
            em, dm, _, _ = backend.measure(configs[n]).stats(settings.trim)
            samples[n].append({"encoder_ms": em, "decoder_ms": dm, "latency_ms": em + dm, "round": r,
                               "loadavg": os.getloadavg()})
        print(f"round {r + 1}/{args.rounds} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    med = {n: statistics.median(s["latency_ms"] for s in v) for n, v in samples.items()}
    genes = {}
    for g in GENES:
        if f"{g}_up" in med:
            genes[g] = {"up_from_smallest_ms": med[f"{g}_up"] - med["smallest"],
                        "down_from_largest_ms": med["largest"] - med[f"{g}_down"]}
    result = {
        "command": " ".join([sys.executable, *sys.argv]), "space": space.to_dict(),
        "settings": {"vocab_size": args.vocab_size, "repeats": args.repeats, "threads": args.threads,
                     "rounds": args.rounds, "src_len": settings.src_len, "tgt_len": settings.tgt_len,
                     "beam": settings.beam},
        "host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "seconds": round(time.time() - t0, 1),
        "configs": {n: c.to_dict() for n, c in configs.items()},
        "median_latency_ms": med, "gene_effect_ms": genes, "samples": samples,
    }
    atomic_write(args.out, json.dumps(result, indent=1))
    print(f"{'config':<26}{'median ms':>10}")
    for n, v in med.items():
        print(f"{n:<26}{v:>10.2f}")
    for g, e in genes.items():
        print(f"{g:<26} up {e['up_from_smallest_ms']:+.2f} ms, down {e['down_from_largest_ms']:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
