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


@dataclass
class SearchInputs:
    """What :func:`resolve_inputs` found for a job: the device, the SuperTransformer (and its checkpoint dict), the
    space searched (narrowed to what the device's runtime executes) and the latency predictor."""

    device: object
    model: object
    ckpt: dict
    space: object
    predictor: object


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
    from hat.search.evolution import LatencyCache
    from hat.search.scoring import make_predictor_latency_fn
    from hat.search.strategies import search_strategy
    inputs = resolve_inputs(job, log)
    latency = LatencyCache(make_predictor_latency_fn(inputs.predictor))
    budgets, fastest_ms, slowest_ms = choose_budgets(job, inputs, latency)
    fitness, n_valid, rank, world = make_fitness(job, inputs)
    search_log = open_log(job, inputs, budgets, n_valid, rank, world)
    pareto = job.pareto or len(budgets) > 1
    strategy = search_strategy(job.settings.pareto_strategy if pareto else "per_budget")
    res = strategy.search(inputs.space, fitness, latency, budgets, job.settings, random.Random(job.seed),
                          log=search_log, progress=rank == 0 and bool(job.progress))
    if rank != 0:
        return None
    return write_outputs(job, inputs, res, fitness, (fastest_ms, slowest_ms), pareto)


def resolve_inputs(job: SearchJob, log: Callable[[str], None] = print) -> SearchInputs:
    """Load the device, the SuperTransformer, the space (``job.space`` must fit the supernet) and the predictor
    (``job.predictor``, else the registry's for this device and space), checked against each other; the space is
    then narrowed to what the device's runtime executes."""
    from hat.checkpoints import load_model
    from hat.latency.devices import load_device
    from hat.latency.runtimes import executable_space
    from hat.nn import SuperTransformer
    from hat.predictor import load_predictor
    device = load_device(job.device)
    model, ckpt = load_model(job.supernet)
    if not isinstance(model, SuperTransformer):
        raise HatError(f"{job.supernet}: not a SuperTransformer checkpoint (it holds one fixed SubTransformer)")
    space = model.space
    if job.space:
        from hat.nn.supertransformer import space_fits
        from hat.space import load_space
        space = load_space(job.space)
        problems = space_fits(space, model.space)
        if problems:
            raise HatError(f"supernet {job.supernet} (space '{model.space.name}') does not match search space "
                           f"'{space.name}': {'; '.join(problems)}")
    if job.predictor:
        pred_path = Path(job.predictor)
    else:
        from hat.predictor.registry import resolve_predictor
        resolved = resolve_predictor(device.name, space)
        pred_path = resolved.path
        if resolved.note:
            log(f"hat-search: note: {resolved.note}")
    predictor = load_predictor(pred_path)
    if predictor.device != device.name:
        raise HatError(f"latency predictor {pred_path} was fit for device '{predictor.device}', not '{device.name}'")
    predictor.check_space(space)
    # search only what the device's runtime executes (its backend declares it): sampling, mutation and crossover
    # never leave that part of the space
    space = executable_space(space, device.runtime)
    if space.constraint is not None:
        log(f"hat-search: searching the part of space '{space.name}' that runtime {device.runtime} executes")
    return SearchInputs(device, model, ckpt, space, predictor)


def choose_budgets(job: SearchJob, inputs: SearchInputs, latency) -> tuple[list[float], float, float]:
    """The sorted budgets (spread over the space's predicted range for a Pareto search without budgets) and the
    fastest / slowest predicted latencies.

    Raises:
        HatError: the tightest budget is infeasible (in the unit the budget was given in).
    """
    from hat.search.evolution import latency_range
    from hat.search.pareto import spread_budgets
    budgets = sorted(job.budgets_ms)
    (fastest_ms, _), (slowest_ms, _) = latency_range(inputs.space, latency, random.Random(job.seed))
    if job.pareto and not budgets:
        budgets = spread_budgets(inputs.space, latency, job.settings.pareto_budgets, random.Random(job.seed))
    if budgets[0] < fastest_ms:
        from hat.units import format_latency
        unit = job.budget_unit
        raise HatError(f"latency budget {format_latency(budgets[0], unit)} is infeasible on device "
                       f"'{inputs.device.name}': the fastest predicted latency in space '{inputs.space.name}' is "
                       f"{format_latency(fastest_ms, unit)}")
    return budgets, fastest_ms, slowest_ms


def make_fitness(job: SearchJob, inputs: SearchInputs):
    """The fitness cache scoring configs on a fixed validation subset (on every torchrun rank): ``(cache, sentences
    scored, rank, world)``.

    Raises:
        HatError: no validation data, or data of another vocabulary than the supernet's.
    """
    import torch

    from hat.data import infer_langs, load_split
    from hat.distributed import init_distributed, local_device
    from hat.search.evolution import FitnessCache
    from hat.search.scoring import make_supernet_score_fn, make_valid_batches, valid_subset_indices
    tcfg, model, settings = inputs.ckpt.get("train_config") or {}, inputs.model, job.settings
    data_dir = Path(job.data or tcfg.get("data") or "")
    if not str(data_dir) or not data_dir.is_dir():
        raise HatError(f"validation data directory '{data_dir}' not found; pass --data BIN_DIR")
    split = job.split or tcfg.get("valid_subset") or "valid"
    src, tgt = job.src_lang or tcfg.get("src_lang"), job.tgt_lang or tcfg.get("tgt_lang")
    if not (src and tgt):
        src, tgt = infer_langs(data_dir, split, src, tgt)
    dataset = load_split(data_dir, split, src, tgt)
    if len(dataset.src_dict) != model.cfg.src_vocab_size:
        raise HatError(f"{data_dir}: dictionary has {len(dataset.src_dict)} symbols but the supernet was trained "
                       f"with {model.cfg.src_vocab_size}; pass the supernet's --data")
    tdev = local_device(torch.cuda.is_available() and not job.cpu)
    dist_info = init_distributed(tdev)
    model.to(tdev).eval()
    indices = valid_subset_indices(len(dataset), settings.valid_subset, settings.valid_subset_seed)
    batches = make_valid_batches(dataset, indices, settings.valid_max_tokens, tdev)
    cache = FitnessCache(make_supernet_score_fn(model, batches), enabled=settings.cache)
    return cache, len(indices), dist_info.rank, dist_info.world_size


def open_log(job: SearchJob, inputs: SearchInputs, budgets: list[float], n_valid: int, rank: int, world: int):
    """The search log (rank 0 writes; every rank runs the same evolution on the same gathered losses)."""
    from hat.search.log import SearchLog
    header = {"space_fingerprint": inputs.space.fingerprint(), "budgets_ms": budgets, "seed": job.seed,
              "settings": dataclasses.asdict(job.settings), "device": inputs.device.name,
              "predictor_fingerprint": inputs.predictor.space_fingerprint, "valid_sentences": n_valid,
              "pareto": bool(job.pareto or len(budgets) > 1)}
    path = Path(job.out) / "search_log.jsonl"
    if rank == 0:
        search_log = SearchLog(path, header, resume=job.resume)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()  # rank 0 has repaired a torn log line before the others read it
        if rank != 0:
            search_log = SearchLog(path, header, resume=job.resume, write=False)
    return search_log


def write_outputs(job: SearchJob, inputs: SearchInputs, res, fitness, range_ms: tuple[float, float],
                  pareto: bool) -> SearchOutcome:
    """``subnet.yaml`` (loosest budget), ``subnet_hat.yml``, ``subnet_<budget>ms.yaml`` (several budgets),
    ``front.png`` and ``results.json``."""
    from hat.interop.hat_configs import save_hat_subnet
    from hat.latency.flops import subnet_flops
    from hat.search.pareto import budget_subnet_filename, plot_front
    out, space = Path(job.out), inputs.space
    summary = []
    for r in res.results:
        meta = dict(predicted_latency_ms=round(r.best_latency_ms, 4), params=int(inputs.model.count_params(r.best)),
                    flops=int(subnet_flops(r.best, space.qkv_dim)), valid_loss=round(r.best_loss, 6),
                    device=inputs.device.name, budget_ms=r.budget_ms, space=space.name)
        if pareto:
            r.best.save_yaml(out / budget_subnet_filename(r.budget_ms), **meta)
        summary.append({**meta, "subnet": r.best.to_dict()})
    loosest = res.results[-1]
    loosest.best.save_yaml(out / "subnet.yaml", **{k: v for k, v in summary[-1].items() if k != "subnet"})
    save_hat_subnet(loosest.best, out / "subnet_hat.yml")  # for HAT's train.py/generate.py --configs
    plot_front(res, out / "front.png", title=f"{space.name} on {inputs.device.name}")
    atomic_write_json(out / "results.json", {
        "budgets_ms": res.budgets_ms, "fastest_predicted_ms": range_ms[0], "slowest_predicted_ms": range_ms[1],
        "results": summary, "front": [{"loss": p.loss, "latency_ms": p.latency_ms} for p in res.front],
        "evaluations": fitness.evaluations, "cache_hits": fitness.hits}, indent=1)
    return SearchOutcome(out=out, results=summary, pareto=bool(pareto))
