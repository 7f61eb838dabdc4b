"""Several latency budgets in one run, and the loss/latency Pareto front of everything scored.

Two ways (the search strategies ``per_budget`` and ``shared`` of :mod:`hat.search.strategies`):

* ``per_budget`` (default): one HAT evolution per budget, every one starting from the same RNG state (as separate
  runs with the same seed would) and all sharing one fitness cache, so a config scored for one budget is free for
  the others. Each budget's result is then the best scored config meeting it, over all runs: never worse than a
  separate run with that seed (equal or better, by construction), and somewhat cheaper.
* ``shared``: one population evolved under the loosest budget; the best config per budget is read from the archive
  of all scored candidates. Budgets the archive cannot serve fall back to their own evolution.

Measured on the synthetic knapsack problem (``hat.search.synthetic``, space ``multi30k_tiny``, ``fast.yaml``, 5
budgets spread over the predicted range, seed 0), best loss per budget from tightest to loosest and configs scored:

==============  ======  ======  ======  ======  ======  ======
strategy          13.2    17.6    22.1    26.6    31.0   evals
==============  ======  ======  ======  ======  ======  ======
separate runs   2.0557 -0.2381 -2.2442 -3.9626 -4.0626    8877
per_budget      2.0557 -0.2381 -2.2442 -3.9626 -4.0626    8223
shared          2.3634  1.3803 -1.3411 -3.9426 -4.0626    1891
==============  ======  ======  ======  ======  ======  ======

``shared`` costs a fifth but its population drifts to the loosest budget's region, so tight budgets get clearly
worse configs; ``per_budget`` equals separate runs at 7% fewer evaluations, hence the default. (With a real
SuperTransformer the evaluations dominate the time; ``shared`` remains available for a quick look at the front.)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from hat.errors import HatError
from hat.search.evolution import (FitnessCache, LatencyCache, LatencyFn, ScoreFn, SearchResult, evolution_search,
                                  latency_range)
from hat.search.log import SearchLog
from hat.search.settings import SearchSettings
from hat.space import SearchSpace, SubnetConfig


@dataclass
class FrontPoint:
    """One scored config on (or off) the Pareto front."""

    config: SubnetConfig
    loss: float
    latency_ms: float


@dataclass
class ParetoResult:
    """Outcome of :func:`pareto_search`.

    Attributes:
        budgets_ms: the budgets, ascending.
        results: best config per budget (same order), each meeting its budget.
        front: non-dominated (latency, loss) points of every scored config, by ascending latency.
        archive: every scored config (all meet the loosest budget).
        evaluations: configs passed to ``score_fn`` in total.
        cache_hits: fitness lookups answered by the shared cache.
        seconds: wall time.
        strategy: ``per_budget`` or ``shared``.
    """

    budgets_ms: list[float]
    results: list[SearchResult]
    front: list[FrontPoint] = field(default_factory=list)
    archive: list[FrontPoint] = field(default_factory=list)
    evaluations: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    strategy: str = "per_budget"


def pareto_front(points: Sequence[FrontPoint]) -> list[FrontPoint]:
    """Points not dominated by another (lower-or-equal latency and loss, one strictly), by ascending latency."""
    front, best = [], float("inf")
    for p in sorted(points, key=lambda p: (p.latency_ms, p.loss)):
        if p.loss < best:
            front.append(p)
            best = p.loss
    return front


def spread_budgets(space: SearchSpace, latency_fn: LatencyFn | LatencyCache, n: int, rng: random.Random) -> list[float]:
    """``n`` budgets evenly spread between the fastest and slowest predicted configs (``--pareto``).

    The fastest config itself is left out (a budget there admits a single config): budgets are
    ``lo + (hi - lo) * k / n`` for ``k = 1..n``.
    """
    (lo, _), (hi, _) = latency_range(space, latency_fn, rng)
    return [round(lo + (hi - lo) * k / n, 3) for k in range(1, n + 1)]


def pareto_search(space: SearchSpace, score_fn: ScoreFn | FitnessCache, latency_fn: LatencyFn | LatencyCache,
                  budgets_ms: Sequence[float], settings: Optional[SearchSettings] = None,
                  rng: Optional[random.Random] = None, *, log: Optional[SearchLog] = None,
                  progress: bool = False, loosest_only: bool = False) -> ParetoResult:
    """Search several budgets in one run and return the best config per budget plus the Pareto front.

    Args:
        space, score_fn, latency_fn, settings, rng: as for :func:`~hat.search.evolution.evolution_search`.
        budgets_ms: the latency budgets (any order; duplicates dropped).
        log: search log; records are tagged with the budget's index (``run``), so ``--resume`` continues the
            budget that was running and reuses the finished ones.
        progress: one tqdm bar per evolution.
        loosest_only: evolve one population under the loosest budget and read the others from the archive
            (``shared``), instead of one evolution per budget (``per_budget``).

    Raises:
        HatError: a budget is infeasible (the message gives the fastest predicted latency).
    """
    settings = settings or SearchSettings()
    rng = rng if rng is not None else random.Random(0)
    budgets = sorted(set(float(b) for b in budgets_ms))
    if not budgets:
        raise HatError("no latency budget given")
    cache = score_fn if isinstance(score_fn, FitnessCache) else FitnessCache(score_fn, enabled=settings.cache)
    latency = latency_fn if isinstance(latency_fn, LatencyCache) else LatencyCache(latency_fn)
    t0 = time.perf_counter()
    hits0, evals0 = cache.hits, cache.evaluations
    # Every evolution starts from this state, exactly as a separate run seeded alike would.
    base_seed = rng.getrandbits(64)

    runs: dict[int, SearchResult] = {}
    if loosest_only:
        runs[len(budgets) - 1] = evolution_search(space, cache, latency, budgets[-1], settings,
                                                  random.Random(base_seed), log=log, run=len(budgets) - 1,
                                                  progress=progress, desc=f"search {budgets[-1]:g}ms (shared)")
    else:
        for j, b in enumerate(budgets):
            runs[j] = evolution_search(space, cache, latency, b, settings, random.Random(base_seed), log=log, run=j,
                                       progress=progress, desc=f"search {b:g}ms ({j + 1}/{len(budgets)})")

    results = []
    for j, b in enumerate(budgets):
        best = _best_in_archive(cache, latency, b)
        if best is None:  # shared strategy: the archive holds nothing this fast; give it its own evolution
            runs[j] = evolution_search(space, cache, latency, b, settings, random.Random(base_seed), log=log, run=j,
                                       progress=progress, desc=f"search {b:g}ms")
            best = _best_in_archive(cache, latency, b)
        r = runs.get(j)
        results.append(SearchResult(best=best.config, best_loss=best.loss, best_latency_ms=best.latency_ms,
                                    budget_ms=b, history=r.history if r else [],
                                    evaluations=r.evaluations if r else 0, cache_hits=r.cache_hits if r else 0,
                                    seconds=r.seconds if r else 0.0))
    archive = scored_archive(cache, latency)
    return ParetoResult(budgets_ms=budgets, results=results, front=pareto_front(archive), archive=archive,
                        evaluations=cache.evaluations - evals0, cache_hits=cache.hits - hits0,
                        seconds=time.perf_counter() - t0, strategy="shared" if loosest_only else "per_budget")


def scored_archive(cache: FitnessCache, latency: LatencyCache) -> list[FrontPoint]:
    """Every config ``cache`` has scored, with its loss and (cached) latency: the points a front is taken from."""
    cfgs = list(cache.configs.values())
    lats = latency(cfgs)
    return [FrontPoint(c, cache.losses[c.key()], l) for c, l in zip(cfgs, lats)]


def _best_in_archive(cache: FitnessCache, latency: LatencyCache, budget_ms: float) -> Optional[FrontPoint]:
    ok = [p for p in scored_archive(cache, latency) if p.latency_ms <= budget_ms]
    return min(ok, key=lambda p: (p.loss, p.latency_ms)) if ok else None


def budget_subnet_filename(budget_ms: float) -> str:
    """File name of the config found under ``budget_ms`` by a multi-budget search: ``subnet_<budget>ms.yaml``
    (``12.5`` -> ``subnet_12.5ms.yaml``; ``hat-search`` writes it, the quickstart reads it)."""
    return f"subnet_{budget_ms:g}ms.yaml".replace("+", "")


def plot_front(result: ParetoResult, path, title: str = "") -> None:
    """Plot every scored config, the Pareto front, the budgets and the best config per budget to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.scatter([p.latency_ms for p in result.archive], [p.loss for p in result.archive], s=6, c="0.75",
               label=f"scored configs ({len(result.archive)})")
    ax.step([p.latency_ms for p in result.front], [p.loss for p in result.front], where="post", c="C0",
            marker="o", ms=3, label="Pareto front")
    for r in result.results:
        ax.axvline(r.budget_ms, c="C3", lw=0.8, ls="--")
        ax.scatter([r.best_latency_ms], [r.best_loss], c="C3", marker="*", s=90, zorder=3)
    ax.scatter([], [], c="C3", marker="*", s=90, label="best per budget (dashed: budget)")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("validation loss (inherited weights)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from hat.io import atomic_path
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
