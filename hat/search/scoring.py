"""Fitness and latency functions for the search: SuperTransformer validation loss, predictor latency.

The fitness of a config is the validation loss (per target token) of the SuperTransformer with that SubTransformer
active, i.e. with inherited weights (HAT Sec. 3.3), on a fixed validation subset. Under ``torchrun`` (initialized
``torch.distributed`` with WORLD_SIZE > 1) every rank scores an interleaved share of each batch of candidates and the
losses are all-gathered, so every rank holds every loss and runs the same evolution in lock-step.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from hat.space import SubnetConfig


def valid_subset_indices(n_total: int, n: Optional[int], seed: int) -> list[int]:
    """A fixed, seeded choice of ``n`` sentence indices out of ``n_total`` (all of them when ``n`` is None or larger)."""
    if n is None or n >= n_total:
        return list(range(n_total))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n_total, size=n, replace=False))


def make_valid_batches(dataset, indices: Sequence[int], max_tokens: int = 4096,
                       device: torch.device | str = "cpu") -> list[dict]:
    """Collate the sentences ``indices`` of a ``LanguagePairDataset`` once into length-sorted batches of at most
    ``max_tokens`` padded tokens, on ``device`` (reused for every candidate)."""
    idx = sorted(indices, key=lambda i: (dataset.num_tokens(i), i))
    batches, cur, cur_max = [], [], 0
    for i in idx:
        n = dataset.num_tokens(i)
        if cur and (len(cur) + 1) * max(cur_max, n) > max_tokens:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    from hat.train.evaluate import move_batch
    return [move_batch(dataset.batch(b), device) for b in batches]


def _dist_world() -> tuple[int, int]:
    """(rank, world size) of an initialized process group, else (0, 1)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def distributed_map(fn: Callable[[SubnetConfig], float], items: Sequence, device: Optional[torch.device] = None
                    ) -> list[float]:
    """``[fn(x) for x in items]``, computed sharded over the ranks of the default process group.

    Rank ``r`` computes ``items[r::world]``; the results are exchanged with ``all_gather`` (float64 tensors padded to
    equal length), so every rank returns the full list, in order. Without a process group it is a plain loop.
    """
    rank, world = _dist_world()
    if world == 1:
        return [float(fn(x)) for x in items]
    import torch.distributed as dist
    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
            else torch.device("cpu")
    per = math.ceil(len(items) / world) if items else 0
    mine = [float(fn(x)) for x in items[rank::world]]
    t = torch.full((max(per, 1),), float("nan"), dtype=torch.float64, device=device)
    if mine:
        t[:len(mine)] = torch.tensor(mine, dtype=torch.float64, device=device)
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t)
    parts = [p.cpu().tolist() for p in parts]
    return [parts[i % world][i // world] for i in range(len(items))]


def make_supernet_score_fn(supernet, batches: Sequence[dict], label_smoothing: float = 0.0,
                           loss_fn: Optional[Callable] = None, distributed: Optional[bool] = None
                           ) -> Callable[[list[SubnetConfig]], list[float]]:
    """Fitness function: validation loss of each config with the SuperTransformer's inherited weights.

    Args:
        supernet: a ``SuperTransformer`` (``set_active_subnet``); evaluated in eval mode, no grad.
        batches: collated validation batches (:func:`make_valid_batches` on :func:`valid_subset_indices`), fixed
            for the whole search so losses are comparable and cacheable.
        label_smoothing: 0 = plain NLL per token (HAT's search uses the validation loss; NLL keeps it comparable
            across settings).
        loss_fn: ``(model, batches) -> float`` (default :func:`hat.train.evaluate.valid_loss`).
        distributed: shard candidates over ranks (default: when a process group with > 1 ranks is initialized).

    Returns:
        ``score_fn(configs) -> list[float]`` (lower is better).
    """
    if loss_fn is None:
        from hat.train.evaluate import valid_loss

        def loss_fn(model, b):
            return valid_loss(model, b, label_smoothing=label_smoothing)
    batches = list(batches)

    def one(cfg: SubnetConfig) -> float:
        supernet.set_active_subnet(cfg)
        with torch.no_grad():
            return float(loss_fn(supernet, batches))

    use_dist = _dist_world()[1] > 1 if distributed is None else distributed

    def score_fn(configs: list[SubnetConfig]) -> list[float]:
        return distributed_map(one, list(configs)) if use_dist else [one(c) for c in configs]

    return score_fn


def make_predictor_latency_fn(predictor) -> Callable[[list[SubnetConfig]], list[float]]:
    """Latency function from a latency predictor (``predict_ms(configs) -> array``), in ms."""
    def latency_fn(configs: list[SubnetConfig]) -> list[float]:
        return [float(v) for v in np.asarray(predictor.predict_ms(list(configs)), dtype=np.float64).reshape(-1)]
    return latency_fn


def fitness_as_searched(supernet: str, settings_file: str, data_bin: str, search_log: str,
                        subnets: Sequence[SubnetConfig], pair: tuple[str, str] = ("de", "en")
                        ) -> list[tuple[float, bool]]:
    """Each subnet's fitness as a finished search saw it: its inherited validation loss in the search's
    SuperTransformer on the search's fixed validation subset (the settings file it ran with, the scoring functions
    of hat-search), and whether the search ever evaluated it (from its log). This tells a model the search missed
    (never sampled) from one its fitness ranked worse."""
    import json
    from pathlib import Path

    from hat.checkpoints import load_model
    from hat.data import load_split
    from hat.search.settings import load_settings
    settings = load_settings(str(settings_file))
    model, _ = load_model(str(supernet))
    model.eval()
    valid = load_split(data_bin, "valid", *pair)
    idx = valid_subset_indices(len(valid), settings.valid_subset, settings.valid_subset_seed)
    losses = make_supernet_score_fn(model, make_valid_batches(valid, idx, settings.valid_max_tokens,
                                                              torch.device("cpu")))(list(subnets))
    seen = set()
    log = Path(search_log)
    for line in log.read_text().splitlines() if log.is_file() else ():
        row = json.loads(line) if line.strip() else {}
        seen.update(SubnetConfig.from_dict(c).key() for c in row.get("population", ()))
    return [(round(float(x), 6), c.key() in seen) for x, c in zip(losses, subnets)]
