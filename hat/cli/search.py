"""``hat-search``: evolutionary search for the SubTransformer with the lowest validation loss under a latency budget.

Examples::

    hat-search --supernet runs/super/checkpoint_best.pt --device cpu --latency 30ms --out runs/search
    hat-search --supernet CKPT --device cpu --predictor runs/predictor_cpu.pt --latency 20ms,30ms,40ms --out runs/s
    hat-search --supernet CKPT --device cpu --pareto --out runs/front          # budgets spread over the space
    hat-search ... --resume                                                    # continue an interrupted search
    torchrun --nproc_per_node 2 -m hat.cli.search ...                          # candidates scored on 2 ranks

Writes ``OUT/subnet.yaml`` (best config under the loosest budget; loadable by ``hat-train --subnet`` and
``hat-profile --config``) and the same SubTransformer in HAT's format, ``OUT/subnet_hat.yml`` (for HAT's ``train.py`` /
``generate.py --configs``), ``OUT/subnet_<budget>ms.yaml`` per budget when several are searched, ``front.png``
(scored configs and their loss/latency Pareto front), ``results.json`` and ``search_log.jsonl`` (one line per
iteration, for ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.errors import HatError
from hat.units import latency_unit, parse_latency_list_ms


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-search", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--supernet", required=True, metavar="CKPT", help="trained SuperTransformer checkpoint")
    p.add_argument("--device", required=True, help="device name (configs/devices) or device YAML")
    p.add_argument("--latency", help="latency budget, or comma-separated budgets (e.g. 200ms or 100ms,150ms,0.2s)")
    p.add_argument("--pareto", action="store_true",
                   help="search budgets spread between the fastest and slowest predicted configs "
                        "(settings.pareto_budgets of them) unless --latency lists them")
    p.add_argument("--predictor", metavar="P.pt",
                   help="latency predictor (default: the one for this device and space in "
                        "latency_predictors/index.yaml; "
                        "our own measurements first, else HAT's published ones)")
    p.add_argument("--config", default="fast", help="search settings name (configs/search: fast, hat) or YAML")
    p.add_argument("--space", help="search this space (default: the supernet's); must fit the supernet")
    p.add_argument("--out", default="search_out", help="output directory")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--valid-subset", type=int, metavar="N",
                   help="score on a fixed seeded subset of N validation sentences (0 = all; overrides the config)")
    p.add_argument("--iterations", type=int, help="evolution iterations (overrides the config)")
    p.add_argument("--data", metavar="BIN_DIR", help="binarized data (default: the supernet's training data)")
    p.add_argument("--src-lang", help="source language (default: the supernet's training config, else the data)")
    p.add_argument("--tgt-lang", help="target language")
    p.add_argument("--split", default=None, help="validation split name (default: the training config's, 'valid')")
    p.add_argument("--cpu", action="store_true", help="score on CPU even when CUDA is available")
    p.add_argument("--resume", action="store_true", help="continue the search logged in OUT/search_log.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


@cli_main("hat-search")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.latency and not args.pareto:
        raise HatError("give a latency budget (--latency 200ms or 100ms,200ms) or --pareto")
    budgets = parse_latency_list_ms(args.latency) if args.latency else []
    if args.latency and not budgets:
        raise HatError(f"bad latency '{args.latency}': no budget given")

    from hat.search import load_settings
    from hat.search.run import SearchJob, run_search

    settings = load_settings(args.config)
    if args.valid_subset is not None:
        if args.valid_subset < 0:
            raise HatError(f"--valid-subset must be >= 0, got {args.valid_subset}")
        settings.valid_subset = args.valid_subset or None
    if args.iterations is not None:
        settings.iterations = args.iterations
    settings.__post_init__()
    done = run_search(SearchJob(
        supernet=args.supernet, device=args.device, settings=settings, budgets_ms=budgets, pareto=args.pareto,
        predictor=args.predictor, space=args.space, out=args.out, seed=args.seed, data=args.data,
        src_lang=args.src_lang, tgt_lang=args.tgt_lang, split=args.split, cpu=args.cpu, resume=args.resume,
        progress=not args.no_progress, budget_unit=latency_unit(args.latency) if args.latency else "ms"))
    if done is None:  # not rank 0
        return 0
    print("\n".join(done.summary_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
