"""``hat-train``: train a SuperTransformer (random SubTransformer(s) per update) or one fixed SubTransformer.

Examples::

    hat-train --config configs/tasks/multi30k_de_en.yaml
    hat-train --config multi30k_de_en --max-update 2000 --set lr=7e-4 --set model.dropout=0.2
    hat-train --config multi30k_de_en --subnet-sampling sandwich --sandwich-random 2 --inplace-distill 1
    hat-train --config multi30k_de_en --subnet best.yaml --init-from-supernet runs/multi30k_de_en/checkpoint_best.pt \
        --save-dir runs/sub
    torchrun --nproc_per_node 2 -m hat.cli.train --config wmt14_en_de      # data parallel (gloo on CPU, NCCL on GPU)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from hat.errors import cli_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="task YAML, or a name under configs/tasks")
    p.add_argument("--space", help="search space name or YAML (overrides the config's)")
    p.add_argument("--subnet", help="train this SubTransformer (subnet YAML) as a static Transformer")
    p.add_argument("--init-from-supernet", metavar="CKPT",
                   help="with --subnet: start from this SuperTransformer checkpoint's inherited weights")
    p.add_argument("--resume", action="store_true", help="continue from <save_dir>/checkpoint_last.pt")
    p.add_argument("--data", help="binarized data directory (overrides the config's)")
    p.add_argument("--raw-dir", help="raw parallel text to binarize into --data when it is missing")
    p.add_argument("--save-dir", help="checkpoint and log directory")
    p.add_argument("--max-update", type=int, help="stop after this many updates")
    p.add_argument("--max-epoch", type=int, help="stop after this many epochs")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--amp", choices=("none", "bf16", "fp16"))
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--subnet-sampling", choices=("random", "sandwich"),
                   help="SubTransformers per SuperTransformer update: one random (HAT) or the sandwich rule "
                        "(largest + smallest + --sandwich-random sampled, gradients summed)")
    p.add_argument("--sandwich-random", type=int, help="sampled SubTransformers per sandwich update (default 2)")
    p.add_argument("--inplace-distill", type=float, metavar="W",
                   help="sandwich: weight of distillation from the largest SubTransformer for the others (0-1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field (YAML value; model.<field> for model settings); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


@cli_main("hat-train")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from hat.train.config import load_train_config
    from hat.train.trainer import train

    cfg = load_train_config(args.config, args.overrides, space=args.space, subnet=args.subnet,
                            init_from_supernet=args.init_from_supernet, data=args.data, raw_dir=args.raw_dir,
                            save_dir=args.save_dir, max_update=args.max_update, max_epoch=args.max_epoch,
                            seed=args.seed, device=args.device, amp=args.amp, threads=args.threads,
                            subnet_sampling=args.subnet_sampling, sandwich_random=args.sandwich_random,
                            inplace_distill=args.inplace_distill)
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"update": result.update, "epoch": result.epoch, "valid_loss": result.valid_loss,
                      "valid_nll_loss": result.valid_nll_loss, "best_valid_loss": result.best_valid_loss,
                      "save_dir": result.save_dir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
