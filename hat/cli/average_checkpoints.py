"""``hat-average-checkpoints``: average the weights of the last N checkpoints (fairseq's average_checkpoints.py).

Examples::

    hat-average-checkpoints --inputs runs/sub --num-epoch-checkpoints 10 --output runs/sub/averaged.pt
    hat-average-checkpoints --inputs a.pt b.pt --output avg.pt
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from hat.errors import cli_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-average-checkpoints", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inputs", nargs="+", required=True,
                   help="checkpoint files, or one directory with --num-epoch-checkpoints / --num-update-checkpoints")
    p.add_argument("--output", required=True, help="averaged checkpoint to write")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--num-epoch-checkpoints", type=int, help="average the last N checkpoint<epoch>.pt in the directory")
    g.add_argument("--num-update-checkpoints", type=int,
                   help="average the last N checkpoint_<epoch>_<update>.pt in the directory")
    p.add_argument("--checkpoint-upper-bound", type=int,
                   help="only checkpoints with epoch (or update) <= this number")
    return p


@cli_main("hat-average-checkpoints")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from hat.train.average import average_checkpoints, last_n_checkpoints
    from hat.errors import HatError
    from hat.checkpoints import save_checkpoint

    n = args.num_epoch_checkpoints or args.num_update_checkpoints
    if n is not None:
        if len(args.inputs) != 1:
            raise HatError("--num-*-checkpoints takes exactly one directory in --inputs")
        paths = last_n_checkpoints(args.inputs[0], n, by_update=args.num_update_checkpoints is not None,
                                   upper_bound=args.checkpoint_upper_bound)
    else:
        paths = args.inputs
    state = average_checkpoints(paths)
    save_checkpoint(state, args.output)
    print(f"averaged {len(paths)} checkpoints -> {args.output}: {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
