"""One evolutionary search run, from a SuperTransformer checkpoint to the files ``hat-search`` writes.

:func:`run_search` is the library entry behind ``hat-search`` and the quickstart's search stage: it checks that the
supernet fits the space and the predictor fits the device, scores candidates on a fixed validation subset (on every
torchrun rank), logs each iteration for resume, and writes ``OUT/subnet.yaml``, ``OUT/subnet_hat.yml``,
``OUT/subnet_<budget>ms.yaml`` (several budgets), ``front.png`` and ``results.json``.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from hat.errors import HatError
from hat.io import atomic_write_json
from hat.search.settings import SearchSettings


@dataclass
class SearchJob:
    """What one search run needs (``hat-search``'s options, parsed).

    Attributes:
        supernet: trained SuperTransformer checkpoint.
        device: device name (configs/devices) or device YAML.
        settings: search settings (validated).
        budgets_ms: latency budgets; empty with ``pareto`` = spread ``settings.pareto_budgets`` over the space.
        pareto: one Pareto run over several budgets (implied by more than one budget).
        predictor: latency predictor file; None = :func:`hat.predictor.registry.resolve_predictor`'s.
        space: search space name or YAML; None = the supernet's.
        out: output directory.
        seed: seed of the evolution (``random.Random``) and of the budget spread.
        data: binarized validation data; None = the supernet's training data.
        src_lang: source language; None = the training config's, else inferred from the data.
        tgt_lang: target language (as ``src_lang``).
        split: validation split; None = the training config's, else ``valid``.
        cpu: score on CPU even when CUDA is available.
        resume: continue the search logged in ``OUT/search_log.jsonl``.
        progress: tqdm progress bar (rank 0).
        budget_unit: unit (``ms``, ``s``, ``us``) the budgets were given in, for messages.
    """

    supernet: str
    device: str
    settings: SearchSettings
    budgets_ms: list[float] = field(default_factory=list)
    pareto: bool = False
    predictor: Optional[str] = None
    space: Optional[str] = None
    out: str = "search_out"
    seed: int = 1
    data: Optional[str] = None
    src_lang: Optional[str] = None
    tgt_lang: Optional[str] = None
    split: Optional[str] = None
    cpu: bool = False
    resume: bool = False
    progress: bool = True
    budget_unit: str = "ms"


@dataclass
class SearchOutcome:
    """What :func:`run_search` wrote: ``results`` has one entry per budget (loosest last) with the subnet's
    predicted latency, params, FLOPs, validation loss and config."""

    out: Path
    results: list[dict]
    pareto: bool

    def summary_lines(self) -> list[str]:
        """One line per budget (loss, predicted latency, size) and one naming the files written."""
        lines = [f"budget {s['budget_ms']:g} ms: valid loss {s['valid_loss']:.4f}, predicted "
                 f"{s['predicted_latency_ms']:.2f} ms, {s['params'] / 1e6:.2f}M params" for s in self.results]
        lines.append(f"wrote {self.out / 'subnet.yaml'}"
                     + (f" and {len(self.results)} subnet_<budget>ms.yaml" if self.pareto else "")
                     + f", {self.out / 'front.png'}, {self.out / 'search_log.jsonl'}")
        return lines


def run_search(job: SearchJob, log: Callable[[str], None] = print) -> Optional[SearchOutcome]:
    """Run the search ``job`` describes and write its files (rank 0); ``log`` gets the notes (which predictor).

    Returns:
        What was written, on rank 0; None on the other torchrun ranks.

    Raises:
        HatError: no budget, a checkpoint that is not a SuperTransformer, a space or predictor that does not fit,
            an infeasible budget, missing validation data.
    """
    if not job.budgets_ms and not job.pareto:
        raise HatError("give a latency budget (e.g. 200ms or 100ms,200ms) or ask for a Pareto search")
    from hat.latency.devices import load_device

    settings = job.settings
    budgets = sorted(job.budgets_ms)
    device_cfg = load_device(job.device)

    import torch
    from hat.nn import SuperTransformer
    from hat.predictor import load_predictor
    from hat.space import load_space
    from hat.checkpoints import load_model

    model, ckpt = load_model(job.supernet)
    if not isinstance(model, SuperTransformer):
        raise HatError(f"{job.supernet}: not a SuperTransformer checkpoint (it holds one fixed SubTransformer)")
    space = model.space
    if job.space:
        space = load_space(job.space)
        problems = []
        if space.qkv_dim != model.space.qkv_dim:
            problems.append(f"qkv_dim {space.qkv_dim} != {model.space.qkv_dim}")
        for name in ("max_encoder_embed_dim", "max_decoder_embed_dim", "max_encoder_ffn_embed_dim",
                     "max_decoder_ffn_embed_dim", "max_encoder_layer_num", "max_decoder_layer_num"):
            if getattr(space, name) > getattr(model.space, name):
                problems.append(f"{name} {getattr(space, name)} > {getattr(model.space, name)}")
        if problems:
            raise HatError(f"supernet {job.supernet} (space '{model.space.name}') does not match search space "
                           f"'{space.name}': {'; '.join(problems)}")

    if job.predictor:
        pred_path = Path(job.predictor)
    else:
        from hat.predictor.registry import resolve_predictor
        resolved = resolve_predictor(device_cfg.name, space)
        pred_path = resolved.path
        if resolved.note:
            log(f"hat-search: note: {resolved.note}")
    predictor = load_predictor(pred_path)
    if predictor.device != device_cfg.name:
        raise HatError(f"latency predictor {pred_path} was fit for device '{predictor.device}', not "
                       f"'{device_cfg.name}'")
    predictor.check_space(space)
    from hat.latency.runtimes import executable_space
    # search only what the device's runtime executes (its backend declares it): sampling, mutation and crossover
    # never leave that part of the space
    space = executable_space(space, device_cfg.runtime)
    if space.constraint is not None:
        log(f"hat-search: searching the part of space '{space.name}' that runtime {device_cfg.runtime} executes")

    from hat.search import (FitnessCache, LatencyCache, ParetoResult, SearchLog, budget_subnet_filename,
                            evolution_search, latency_range, pareto_front, pareto_search, plot_front, scored_archive)
    from hat.search.scoring import (make_predictor_latency_fn, make_supernet_score_fn, make_valid_batches,
                                    valid_subset_indices)

    latency = LatencyCache(make_predictor_latency_fn(predictor))
    (fastest_ms, _), (slowest_ms, _) = latency_range(space, latency, random.Random(job.seed))
    if job.pareto and not budgets:
        from hat.search import spread_budgets
        budgets = spread_budgets(space, latency, settings.pareto_budgets, random.Random(job.seed))
    if budgets[0] < fastest_ms:
        from hat.units import format_latency
        unit = job.budget_unit
        raise HatError(f"latency budget {format_latency(budgets[0], unit)} is infeasible on device "
                       f"'{device_cfg.name}': the fastest predicted latency in space '{space.name}' is "
                       f"{format_latency(fastest_ms, unit)}")

    # ----- validation data (fixed subset) and scoring -----
    tcfg = ckpt.get("train_config") or {}
    data_dir = Path(job.data or tcfg.get("data") or "")
    if not str(data_dir) or not data_dir.is_dir():
        raise HatError(f"validation data directory '{data_dir}' not found; pass --data BIN_DIR")
    split = job.split or tcfg.get("valid_subset") or "valid"
    src, tgt = job.src_lang or tcfg.get("src_lang"), job.tgt_lang or tcfg.get("tgt_lang")
    if not (src and tgt):
        from hat.data import infer_langs
        src, tgt = infer_langs(data_dir, split, src, tgt)
    from hat.data import load_split
    dataset = load_split(data_dir, split, src, tgt)
    if len(dataset.src_dict) != model.cfg.src_vocab_size:
        raise HatError(f"{data_dir}: dictionary has {len(dataset.src_dict)} symbols but the supernet was trained "
                       f"with {model.cfg.src_vocab_size}; pass the supernet's --data")
    use_cuda = torch.cuda.is_available() and not job.cpu
    from hat.distributed import init_distributed, local_device
    tdev = local_device(use_cuda)
    dist_info = init_distributed(tdev)
    rank, world = dist_info.rank, dist_info.world_size
    model.to(tdev).eval()
    indices = valid_subset_indices(len(dataset), settings.valid_subset, settings.valid_subset_seed)
    batches = make_valid_batches(dataset, indices, settings.valid_max_tokens, tdev)
    cache = FitnessCache(make_supernet_score_fn(model, batches), enabled=settings.cache)

    # ----- log (rank 0 writes; every rank runs the same evolution on the same gathered losses) -----
    out = Path(job.out)
    header = {"space_fingerprint": space.fingerprint(), "budgets_ms": budgets, "seed": job.seed,
              "settings": dataclasses.asdict(settings), "device": device_cfg.name,
              "predictor_fingerprint": predictor.space_fingerprint, "valid_sentences": len(indices),
              "pareto": bool(job.pareto or len(budgets) > 1)}
    if rank == 0:
        log = SearchLog(out / "search_log.jsonl", header, resume=job.resume)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()  # rank 0 has repaired a torn log line before the others read it
        if rank != 0:
            log = SearchLog(out / "search_log.jsonl", header, resume=job.resume, write=False)

    rng = random.Random(job.seed)
    progress = rank == 0 and not not job.progress
    pareto_mode = job.pareto or len(budgets) > 1
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
        return None
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
    return SearchOutcome(out=out, results=summary, pareto=bool(pareto_mode))
