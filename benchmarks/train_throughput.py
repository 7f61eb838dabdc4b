"""Training throughput (target tokens/s) of the weight-sharing SuperTransformer vs a static Transformer.

Three trainers run the same real batches through ``Trainer.train_step`` (forward, backward, Adam), interleaved batch
by batch so load from other processes hits all of them alike:

- ``super_largest``: SuperTransformer with the largest SubTransformer active every update;
- ``static_largest``: the same architecture as a plain static ``Transformer``;
- ``super_sampled``: SuperTransformer sampling a random SubTransformer per update (real HAT training).

Prints tokens/s and the ratios ``super_largest / static_largest`` (slicing overhead; goal >= 0.9) and
``super_sampled / super_largest``.

Usage::

    python benchmarks/train_throughput.py [--data ../shared/fixtures/fairseq_multi30k_tiny/bin] [--space multi30k_tiny]
        [--batches 12] [--max-tokens 1024] [--threads 1]

Raw record (every update's tokens and seconds): ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord  # noqa: E402

from hat.resources import project_root
from hat.train.config import TrainConfig
from hat.train.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(project_root().parent / "shared/fixtures/fairseq_multi30k_tiny/bin"))
    ap.add_argument("--src", default="de")
    ap.add_argument("--tgt", default="en")
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--batches", type=int, default=12, help="timed updates per trainer")
    ap.add_argument("--warmup", type=int, default=2, help="untimed updates per trainer first")
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--results", help="raw record path (default benchmarks/results/train_throughput.json)")
    args = ap.parse_args()
    rec = RunRecord("train_throughput", out=args.results)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        def make(name: str, subnet: str | None = None) -> Trainer:
            cfg = TrainConfig(data=args.data, src_lang=args.src, tgt_lang=args.tgt, space=args.space,
                              max_update=10**6, max_tokens=args.max_tokens, lr=5e-4, warmup_updates=100,
                              save_dir=str(Path(tmp) / name), subnet=subnet, threads=args.threads,
                              device=args.device, model={"dropout": 0.1})
            return Trainer(cfg, progress=False)

        sup_l = make("super_largest")
        largest = sup_l.space.largest()
        sub_yaml = Path(tmp) / "largest.yaml"
        largest.save_yaml(sub_yaml)
        trainers = {"super_largest": sup_l, "static_largest": make("static_largest", str(sub_yaml)),
                    "super_sampled": make("super_sampled")}
        sup_l.active_subnet_for = lambda update: largest  # fixed largest subnet each update

        batches = sup_l.epoch_batches(1)[: args.warmup + args.batches]
        samples = [sup_l.train_data.batch(b) for b in batches]
        ntok = {k: 0 for k in trainers}
        secs = {k: 0.0 for k in trainers}
        raw = []
        for i, s in enumerate(samples):
            for name, t in trainers.items():
                t0 = time.perf_counter()
                st = t.train_step([s])
                dt = time.perf_counter() - t0
                raw.append({"batch": i, "trainer": name, "warmup": i < args.warmup, "ntokens": st["ntokens"],
                            "seconds": dt})
                if i >= args.warmup:
                    ntok[name] += st["ntokens"]
                    secs[name] += dt
        for t in trainers.values():
            if t.logger is not None:
                t.logger.close()

    tps = {k: ntok[k] / secs[k] for k in trainers}
    print(f"space {args.space}, largest subnet {largest.encoder_embed_dim}d x {largest.encoder_layer_num}+"
          f"{largest.decoder_layer_num} layers, {args.batches} timed updates of <= {args.max_tokens} tokens, "
          f"{args.threads} thread(s), device {args.device}")
    for k in trainers:
        print(f"{k:15s} {tps[k]:9.1f} target tokens/s  ({secs[k]:.1f} s)")
    print(f"ratio super_largest/static_largest = {tps['super_largest'] / tps['static_largest']:.3f} (goal >= 0.9)")
    print(f"ratio super_sampled/super_largest  = {tps['super_sampled'] / tps['super_largest']:.3f}")
    summary = {"tokens_per_s": tps, "super_largest_over_static_largest": tps["super_largest"] / tps["static_largest"],
               "super_sampled_over_super_largest": tps["super_sampled"] / tps["super_largest"]}
    print(f"raw record: {rec.write(args=vars(args), samples=raw, summary=summary)}")


if __name__ == "__main__":
    main()
