"""Latency-prediction throughput: ``predictor.predict_ms(configs)`` on many sampled configs (what the search calls).

Two predictors of the default model: ``hat10_cost`` features fitted on HAT's Xeon dataset, and ``layers`` features
(per-layer genes and MACs, used for our own CSVs with a ``subnet`` column) fitted on rows whose latency is a made-up
layer-dependent cost formula (only the feature path's speed matters here, not the fit). ``--configs`` configs of
``--space`` are sampled once (seed 0); each predictor predicts all of them ``--repeats`` times, 1 thread. Reports CPU
seconds (``time.process_time``, insensitive to other processes as long as this one is not starved) and wall seconds
per call; the docs quote the best of the repeats. Raw record: ``benchmarks/results/prediction_throughput.json``.

    python benchmarks/prediction_throughput.py [--configs 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord, load_average  # noqa: E402


def made_up_rows(space, n: int, seed: int = 0):
    """Our-format rows (with the subnet column) whose latency is a layer-dependent formula: enough to fit on."""
    from hat.latency.records import LatencyRecord
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = space.sample(rng)
        enc = 1.0 + 1e-6 * c.encoder_embed_dim * sum(c.encoder_ffn_embed_dim)
        dec = 2.0 + sum(1e-7 * c.decoder_embed_dim * f + 0.3 * (a + 2) for f, a in
                        zip(c.decoder_ffn_embed_dim, c.decoder_arbitrary_ende_attn))
        out.append(LatencyRecord.from_subnet(c, enc * (1 + 0.01 * rng.random()), dec, runtime="debug"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="wmt14_space0")
    ap.add_argument("--configs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "hat_latency"))
    ap.add_argument("--results", help="raw record path (default benchmarks/results/prediction_throughput.json)")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rec = RunRecord("prediction_throughput", out=args.results)

    from hat.latency.records import read_latency_csv
    from hat.predictor import fit_predictor
    from hat.space import load_space
    space = load_space(args.space)
    predictors = {
        "hat10_cost": fit_predictor(read_latency_csv(Path(args.data_dir) / "wmt14ende_cpu_xeon_all.csv"), "xeon",
                                    space),
        "layers": fit_predictor(made_up_rows(space, 400), "made_up", space),
    }
    rng = random.Random(0)
    configs = [space.sample(rng) for _ in range(args.configs)]
    samples, summary = [], {}
    for name, p in predictors.items():
        assert p.feature_kind == name, (name, p.feature_kind)
        for rep in range(args.repeats):
            load = load_average()
            w0, c0 = time.perf_counter(), time.process_time()
            out = p.predict_ms(configs)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            assert len(out) == len(configs)
            samples.append({"features": name, "repeat": rep, "configs": len(configs), "cpu_s": cpu, "wall_s": wall,
                            "load_average": load})
            print(f"{name:11s} repeat {rep}: {cpu:.3f} CPU-s, {wall:.3f} wall-s for {len(configs)} configs", flush=True)
        best = min(s["cpu_s"] for s in samples if s["features"] == name)
        summary[name] = {"best_cpu_s": best, "configs_per_cpu_s": len(configs) / best,
                         "best_wall_s": min(s["wall_s"] for s in samples if s["features"] == name)}
        print(f"{name:11s} best {best:.3f} CPU-s = {len(configs) / best:,.0f} configs per CPU-second")
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
