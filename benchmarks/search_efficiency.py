"""Search efficiency: HAT's search settings vs ours on the same trained SuperTransformer, same latency budget.

HAT (``configs/search/hat.yaml``): every population member re-scored each iteration (no cache) on the full
validation set, duplicates allowed. Ours (``configs/search/fast.yaml``): fitness cache by config, duplicate-free
populations, candidates scored in batches on a fixed seeded validation subset. Both run HAT's evolution (125 = 25 +
50 + 50, p = 0.3, 30 iterations) from the same seed and the same latency predictor. The best config of each is then
re-scored on the FULL validation set (a fair "best inherited loss"), and the script prints the wall-time ratio and
both losses in one run. Goal: ours reaches an equal or better loss in at most 1/5 of HAT's time.

Usage::

    python benchmarks/search_efficiency.py --supernet runs/super/checkpoint_best.pt --data data-bin/multi30k_de_en \
        --predictor runs/predictor_cpu.pt --latency 30ms [--seed 1] [--iterations 30] [--json out.json]

``--iterations`` shortens both searches alike (for a quick look); the acceptance numbers use the default 30.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", required=True)
    p.add_argument("--data", required=True, help="binarized data directory (the supernet's)")
    p.add_argument("--predictor", required=True)
    p.add_argument("--latency", required=True, help="budget, e.g. 30ms")
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument("--split", default="valid")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--iterations", type=int, help="override both settings' iterations (quick look)")
    p.add_argument("--hat-config", default="hat")
    p.add_argument("--fast-config", default="fast")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    from hat.units import parse_latency_ms
    from hat.data import infer_langs, load_split
    from hat.predictor import load_predictor
    from hat.search import FitnessCache, evolution_search, load_settings
    from hat.search.scoring import (make_predictor_latency_fn, make_supernet_score_fn, make_valid_batches,
                                    valid_subset_indices)
    from hat.train.checkpoint import load_model

    budget = parse_latency_ms(args.latency)
    model, _ = load_model(args.supernet)
    predictor = load_predictor(args.predictor)
    predictor.check_space(model.space)
    src, tgt = infer_langs(args.data, args.split, args.src_lang, args.tgt_lang)
    ds = load_split(args.data, args.split, src, tgt)
    latency_fn = make_predictor_latency_fn(predictor)

    rows = {}
    full_batches = None
    for name, cfg_name in (("hat", args.hat_config), ("ours", args.fast_config)):
        s = load_settings(cfg_name)
        if args.iterations:
            s = dataclasses.replace(s, iterations=args.iterations)
        t0 = time.perf_counter()
        idx = valid_subset_indices(len(ds), s.valid_subset, s.valid_subset_seed)
        batches = make_valid_batches(ds, idx, s.valid_max_tokens)  # data preparation is part of the cost
        if s.valid_subset is None and full_batches is None:
            full_batches = batches
        cache = FitnessCache(make_supernet_score_fn(model, batches), enabled=s.cache)
        r = evolution_search(model.space, cache, latency_fn, budget, s, random.Random(args.seed), progress=True,
                             desc=name)
        wall = time.perf_counter() - t0
        rows[name] = {"settings": cfg_name, "wall_s": wall, "evaluations": r.evaluations, "cache_hits": r.cache_hits,
                      "valid_sentences": len(idx), "search_loss": r.best_loss,
                      "predicted_latency_ms": r.best_latency_ms, "subnet": r.best.to_dict(), "_best": r.best}
    if full_batches is None:
        full_batches = make_valid_batches(ds, range(len(ds)), 4096)
    full = make_supernet_score_fn(model, full_batches)
    for row in rows.values():
        row["full_valid_loss"] = full([row.pop("_best")])[0]

    h, o = rows["hat"], rows["ours"]
    ratio = o["wall_s"] / h["wall_s"]
    print(f"\nbudget {budget:g} ms, seed {args.seed}, {len(ds)} validation sentences")
    print(f"{'':6s} {'wall s':>9s} {'evals':>7s} {'hits':>6s} {'sents':>6s} {'loss (full valid)':>18s} {'pred ms':>8s}")
    for name, r in rows.items():
        print(f"{name:6s} {r['wall_s']:9.1f} {r['evaluations']:7d} {r['cache_hits']:6d} {r['valid_sentences']:6d} "
              f"{r['full_valid_loss']:18.4f} {r['predicted_latency_ms']:8.2f}")
    ok = ratio <= 0.2 and o["full_valid_loss"] <= h["full_valid_loss"] + 1e-9
    print(f"time ratio ours/hat = {ratio:.3f} (goal <= 0.2); loss ours - hat = "
          f"{o['full_valid_loss'] - h['full_valid_loss']:+.4f} (goal <= 0): {'PASS' if ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"budget_ms": budget, "seed": args.seed, "ratio": ratio, "pass": ok,
                                               **rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
