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
import dataclasses
import random
import sys
from pathlib import Path
from typing import Optional, Sequence

from hat.cli.common import cli_main, format_latency, latency_unit, parse_latency_list_ms
from hat.errors import HatError
from hat.io import atomic_write_json


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

    from hat.latency.devices import load_device
    from hat.search import load_settings

    settings = load_settings(args.config)
    if args.valid_subset is not None:
        if args.valid_subset < 0:
            raise HatError(f"--valid-subset must be >= 0, got {args.valid_subset}")
        settings.valid_subset = args.valid_subset or None
    if args.iterations is not None:
        settings.iterations = args.iterations
    settings.__post_init__()
    device_cfg = load_device(args.device)

    import torch
    from hat.nn import SuperTransformer
    from hat.predictor import load_predictor
    from hat.predictor.registry import resolve_predictor
    from hat.space import load_space
    from hat.train.checkpoint import load_model

    model, ckpt = load_model(args.supernet)
    if not isinstance(model, SuperTransformer):
        raise HatError(f"{args.supernet}: not a SuperTransformer checkpoint (it holds one fixed SubTransformer)")
    space = model.space
    if args.space:
        space = load_space(args.space)
        problems = []
        if space.qkv_dim != model.space.qkv_dim:
            problems.append(f"qkv_dim {space.qkv_dim} != {model.space.qkv_dim}")
        for name in ("max_encoder_embed_dim", "max_decoder_embed_dim", "max_encoder_ffn_embed_dim",
                     "max_decoder_ffn_embed_dim", "max_encoder_layer_num", "max_decoder_layer_num"):
            if getattr(space, name) > getattr(model.space, name):
                problems.append(f"{name} {getattr(space, name)} > {getattr(model.space, name)}")
        if problems:
            raise HatError(f"supernet {args.supernet} (space '{model.space.name}') does not match search space "
                           f"'{space.name}': {'; '.join(problems)}")

    if args.predictor:
        pred_path = Path(args.predictor)
    else:
        resolved = resolve_predictor(device_cfg.name, space)
        pred_path = resolved.path
        if resolved.note:
            print(f"hat-search: note: {resolved.note}")
    predictor = load_predictor(pred_path)
    if predictor.device != device_cfg.name:
        raise HatError(f"latency predictor {pred_path} was fit for device '{predictor.device}', not "
                       f"'{device_cfg.name}'")
    predictor.check_space(space)

    from hat.search import (FitnessCache, LatencyCache, ParetoResult, SearchLog, budget_subnet_filename,
                            evolution_search, latency_range, pareto_front, pareto_search, plot_front, scored_archive)
    from hat.search.scoring import (make_predictor_latency_fn, make_supernet_score_fn, make_valid_batches,
                                    valid_subset_indices)

    latency = LatencyCache(make_predictor_latency_fn(predictor))
    (fastest_ms, _), (slowest_ms, _) = latency_range(space, latency, random.Random(args.seed))
    if args.pareto and not budgets:
        from hat.search import spread_budgets
        budgets = spread_budgets(space, latency, settings.pareto_budgets, random.Random(args.seed))
    if budgets[0] < fastest_ms:
        unit = latency_unit(args.latency) if args.latency else "ms"
        raise HatError(f"latency budget {format_latency(budgets[0], unit)} is infeasible on device "
                       f"'{device_cfg.name}': the fastest predicted latency in space '{space.name}' is "
                       f"{format_latency(fastest_ms, unit)}")

    # ----- validation data (fixed subset) and scoring -----
    tcfg = ckpt.get("train_config") or {}
    data_dir = Path(args.data or tcfg.get("data") or "")
    if not str(data_dir) or not data_dir.is_dir():
        raise HatError(f"validation data directory '{data_dir}' not found; pass --data BIN_DIR")
    split = args.split or tcfg.get("valid_subset") or "valid"
    src, tgt = args.src_lang or tcfg.get("src_lang"), args.tgt_lang or tcfg.get("tgt_lang")
    if not (src and tgt):
        from hat.data import infer_langs
        src, tgt = infer_langs(data_dir, split, src, tgt)
    from hat.data import load_split
    dataset = load_split(data_dir, split, src, tgt)
    if len(dataset.src_dict) != model.cfg.src_vocab_size:
        raise HatError(f"{data_dir}: dictionary has {len(dataset.src_dict)} symbols but the supernet was trained "
                       f"with {model.cfg.src_vocab_size}; pass the supernet's --data")
    use_cuda = torch.cuda.is_available() and not args.cpu
    from hat.distributed import init_distributed, local_device
    tdev = local_device(use_cuda)
    job = init_distributed(tdev)
    rank, world = job.rank, job.world_size
    model.to(tdev).eval()
    indices = valid_subset_indices(len(dataset), settings.valid_subset, settings.valid_subset_seed)
    batches = make_valid_batches(dataset, indices, settings.valid_max_tokens, tdev)
    cache = FitnessCache(make_supernet_score_fn(model, batches), enabled=settings.cache)

    # ----- log (rank 0 writes; every rank runs the same evolution on the same gathered losses) -----
    out = Path(args.out)
    header = {"space_fingerprint": space.fingerprint(), "budgets_ms": budgets, "seed": args.seed,
              "settings": dataclasses.asdict(settings), "device": device_cfg.name,
              "predictor_fingerprint": predictor.space_fingerprint, "valid_sentences": len(indices),
              "pareto": bool(args.pareto or len(budgets) > 1)}
    if rank == 0:
        log = SearchLog(out / "search_log.jsonl", header, resume=args.resume)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()  # rank 0 has repaired a torn log line before the others read it
        if rank != 0:
            log = SearchLog(out / "search_log.jsonl", header, resume=args.resume, write=False)

    rng = random.Random(args.seed)
    progress = rank == 0 and not args.no_progress
    pareto_mode = args.pareto or len(budgets) > 1
    if pareto_mode:
        res = pareto_search(space, cache, latency, budgets, settings, rng, log=log, progress=progress)
        results = res.results
    else:
        r = evolution_search(space, cache, latency, budgets[0], settings, rng, log=log, progress=progress)
        results = [r]
        archive = scored_archive(cache, latency)
        res = ParetoResult(budgets_ms=budgets, results=results, front=pareto_front(archive), archive=archive,
                           evaluations=r.evaluations, cache_hits=r.cache_hits, seconds=r.seconds)

    if rank != 0:
        return 0
    # ----- outputs -----
    from hat.latency.flops import subnet_flops
    summary = []
    for r in results:
        meta = dict(predicted_latency_ms=round(r.best_latency_ms, 4), params=int(model.count_params(r.best)),
                    flops=int(subnet_flops(r.best, space.qkv_dim)), valid_loss=round(r.best_loss, 6),
                    device=device_cfg.name, budget_ms=r.budget_ms, space=space.name)
        if pareto_mode:
            r.best.save_yaml(out / budget_subnet_filename(r.budget_ms), **meta)
        summary.append({**meta, "subnet": r.best.to_dict()})
    loosest = results[-1]
    loosest.best.save_yaml(out / "subnet.yaml", **{k: v for k, v in summary[-1].items() if k != "subnet"})
    from hat.interop.hat_configs import save_hat_subnet
    save_hat_subnet(loosest.best, out / "subnet_hat.yml")  # for HAT's train.py/generate.py --configs
    plot_front(res, out / "front.png", title=f"{space.name} on {device_cfg.name}")
    atomic_write_json(out / "results.json", ({"budgets_ms": budgets, "fastest_predicted_ms": fastest_ms,
                               "slowest_predicted_ms": slowest_ms, "results": summary,
                               "front": [{"loss": p.loss, "latency_ms": p.latency_ms} for p in res.front],
                               "evaluations": cache.evaluations, "cache_hits": cache.hits}), indent=1)
    for s in summary:
        print(f"budget {s['budget_ms']:g} ms: valid loss {s['valid_loss']:.4f}, predicted {s['predicted_latency_ms']:.2f} ms, "
              f"{s['params'] / 1e6:.2f}M params")
    print(f"wrote {out / 'subnet.yaml'}" + (f" and {len(results)} subnet_<budget>ms.yaml" if pareto_mode else "")
          + f", {out / 'front.png'}, {out / 'search_log.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
