"""Few-shot transfer of latency predictors across devices (HAT's published data).

A source predictor (default model) is fit on all rows of the source device (Xeon or TITAN Xp). On the target
device (Raspberry Pi), rows are shuffled with ``random.Random(seed)`` and cut 80/10/10; the test split is fixed and
the first k rows of the train split are the target samples. For each k we compare:

- ``scratch``: the default model fit on the k target rows alone (model selection by leave-one-out);
- ``transfer``: fit with ``init=source`` (ridge towards the source coefficients, rescaled to the target).

Usage::

    python benchmarks/predictor_transfer.py [--data-dir ../shared/data/hat_latency] [--seeds 0 1 2] \
        [--k 10 30 100 300]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAIRS = (("wmt14ende_cpu_xeon_all", "wmt14ende_cpu_raspberrypi_all"),
         ("wmt14ende_gpu_titanxp_all", "wmt14ende_cpu_raspberrypi_all"))


def main(argv=None) -> int:
    import torch
    torch.set_num_threads(1)
    from hat.latency.records import read_latency_csv
    from hat.predictor import fit_predictor, split_indices
    from hat.space import load_space
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "hat_latency"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--k", type=int, nargs="+", default=[10, 30, 100, 300])
    args = ap.parse_args(argv)
    space = load_space("wmt14_space0")
    d = Path(args.data_dir)
    print("| source -> target | k | scratch MAPE | transfer MAPE | scratch acc10 | transfer acc10 | scratch tau | "
          "transfer tau |")
    print("|---|---|---|---|---|---|---|---|")
    for src_name, tgt_name in PAIRS:
        src = fit_predictor(read_latency_csv(d / f"{src_name}.csv"), src_name, space, cv_folds=0)
        tgt = read_latency_csv(d / f"{tgt_name}.csv")
        for k in args.k:
            res = {"scratch": [], "transfer": []}
            for seed in args.seeds:
                tr, _, te = split_indices(len(tgt), seed)
                rows, test = [tgt[i] for i in tr[:k]], [tgt[i] for i in te]
                res["scratch"].append(fit_predictor(rows, tgt_name, space, seed=seed, val_fraction=0,
                                                    cv_folds=0).evaluate(test))
                res["transfer"].append(fit_predictor(rows, tgt_name, space, seed=seed, init=src,
                                                     val_fraction=0, cv_folds=0).evaluate(test))
            mean = {m: {q: float(np.mean([r[q] for r in v])) for q in ("mape", "acc10", "kendall_tau")}
                    for m, v in res.items()}
            print(f"| {src_name.split('_')[2]} -> {tgt_name.split('_')[2]} | {k} | {mean['scratch']['mape']:.4f} | "
                  f"{mean['transfer']['mape']:.4f} | {mean['scratch']['acc10']:.3f} | {mean['transfer']['acc10']:.3f} | "
                  f"{mean['scratch']['kendall_tau']:.3f} | {mean['transfer']['kendall_tau']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
