"""HAT's evolutionary search for the SubTransformer with the lowest loss under a latency budget.

Algorithm (HAT, Wang et al. 2020, Sec. 3.3 and ``evo_search.py``): sample an initial population of configs that meet
the budget; each iteration score the population (loss of the SuperTransformer with inherited weights, lower is
better), keep the best ``parent_size`` as parents, and refill the population with ``mutation_size`` mutations of
random parents and ``crossover_size`` uniform crossovers of random parent pairs; a child is kept only if
``latency_fn`` says it meets the budget. The best config of the last population is the result (parents survive, so
it is the best ever scored).

Everything random comes from the injected ``random.Random``; ``score_fn`` and ``latency_fn`` are injected too, so the
algorithm is testable with synthetic functions. Our additions (see :class:`~hat.search.settings.SearchSettings`):
a fitness cache keyed by :meth:`SubnetConfig.key` (parents and revisited children are not re-scored), candidates
scored and latency-checked in batches, duplicates scored once per batch, and a JSONL log from which an interrupted
search resumes to the same result.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from hat.errors import HatError
from hat.search.log import SearchLog, rng_state_from_json, rng_state_to_json
from hat.search.settings import SearchSettings
from hat.space import SearchSpace, SubnetConfig

ScoreFn = Callable[[list[SubnetConfig]], Sequence[float]]
LatencyFn = Callable[[list[SubnetConfig]], Sequence[float]]

# Smallest batch of candidates drawn at once while filling a population (latency is predicted per batch).
_MIN_DRAW = 16
# Give up filling after this many draws in a row brought nothing new (converged parents mostly cross over into
# configs already in the population); the population is then smaller for this iteration.
_STALL_DRAWS = 500


class FitnessCache:
    """Scores configs with ``score_fn`` in one batch per call, remembering every loss by config key.

    With ``enabled=False`` (HAT) every lookup calls ``score_fn`` again, duplicates included; the losses are still
    recorded, as the archive of scored candidates (Pareto front).

    Attributes:
        losses: config key -> loss of every config scored so far.
        configs: config key -> the config.
        hits: lookups answered from the cache (including duplicates within one batch).
        evaluations: configs passed to ``score_fn``.
        calls: calls of ``score_fn``.
    """

    def __init__(self, score_fn: ScoreFn, enabled: bool = True):
        self.score_fn = score_fn
        self.enabled = enabled
        self.losses: dict[tuple, float] = {}
        self.configs: dict[tuple, SubnetConfig] = {}
        self.hits = 0
        self.evaluations = 0
        self.calls = 0

    def __call__(self, configs: list[SubnetConfig]) -> list[float]:
        """Losses of ``configs`` (in order)."""
        if not configs:
            return []
        if not self.enabled:
            out = self._score(list(configs))
            for c, v in zip(configs, out):
                self.add(c, v)
            return out
        todo: dict[tuple, SubnetConfig] = {}
        for c in configs:
            k = c.key()
            if k not in self.losses and k not in todo:
                todo[k] = c
        self.hits += len(configs) - len(todo)
        if todo:
            for (k, c), v in zip(todo.items(), self._score(list(todo.values()))):
                self.add(c, v)
        return [self.losses[c.key()] for c in configs]

    def _score(self, configs: list[SubnetConfig]) -> list[float]:
        out = [float(v) for v in self.score_fn(configs)]
        if len(out) != len(configs):
            raise ValueError(f"score_fn returned {len(out)} losses for {len(configs)} configs")
        self.calls += 1
        self.evaluations += len(configs)
        return out

    def add(self, config: SubnetConfig, loss: float) -> None:
        """Record a known loss (scored now, or read back from a search log)."""
        k = config.key()
        self.losses[k] = float(loss)
        self.configs[k] = config


class LatencyCache:
    """Predicted latency (ms) of configs by key; the predictor is deterministic, so this is always safe."""

    def __init__(self, latency_fn: LatencyFn):
        self.latency_fn = latency_fn
        self.ms: dict[tuple, float] = {}

    def __call__(self, configs: list[SubnetConfig]) -> list[float]:
        todo: dict[tuple, SubnetConfig] = {}
        for c in configs:
            k = c.key()
            if k not in self.ms and k not in todo:
                todo[k] = c
        if todo:
            vals = [float(v) for v in self.latency_fn(list(todo.values()))]
            if len(vals) != len(todo):
                raise ValueError(f"latency_fn returned {len(vals)} values for {len(todo)} configs")
            self.ms.update(zip(todo.keys(), vals))
        return [self.ms[c.key()] for c in configs]


@dataclass
class IterationStats:
    """One iteration of the search (``SearchResult.history``)."""

    iteration: int
    best_loss: float
    best_latency_ms: float
    mean_parent_loss: float
    population: int
    # Configs passed to score_fn during this iteration (cache misses; with the cache off, the population size).
    evaluated: int
    cache_hits: int
    seconds: float


@dataclass
class SearchResult:
    """Outcome of :func:`evolution_search`.

    Attributes:
        best: the config with the lowest loss that meets the budget.
        best_loss: its loss (validation loss with inherited weights).
        best_latency_ms: its predicted latency.
        budget_ms: the latency budget searched under.
        history: per-iteration statistics.
        evaluations: configs passed to ``score_fn`` by this search.
        cache_hits: fitness lookups answered by the cache in this search.
        seconds: wall time of this search (of the resumed part, after ``--resume``).
    """

    best: SubnetConfig
    best_loss: float
    best_latency_ms: float
    budget_ms: float
    history: list[IterationStats] = field(default_factory=list)
    evaluations: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


def _draw_feasible(make: Callable[[], SubnetConfig], need: int, latency: LatencyCache, budget_ms: float,
                   max_attempts: int, seen: Optional[set], stall_draws: Optional[int] = _STALL_DRAWS
                   ) -> tuple[list[SubnetConfig], list[float], float]:
    """Draw candidates in batches until ``need`` meet the budget or ``max_attempts`` were drawn.

    Returns the accepted configs, their latencies and the lowest latency seen (for the infeasible-budget message).
    ``seen`` (when given) rejects duplicates and is updated with the accepted keys. ``stall_draws`` (None = no limit)
    stops early after that many draws in a row gave nothing.
    """
    out, lats, fastest, attempts, stall = [], [], float("inf"), 0, 0
    while len(out) < need and attempts < max_attempts and (stall_draws is None or stall < stall_draws):
        n = min(max(need - len(out), _MIN_DRAW), max_attempts - attempts)
        batch = [make() for _ in range(n)]
        attempts += n
        for c, lat in zip(batch, latency(batch)):
            fastest = min(fastest, lat)
            if len(out) >= need:
                break
            stall += 1
            if lat > budget_ms or (seen is not None and c.key() in seen):
                continue
            if seen is not None:
                seen.add(c.key())
            out.append(c)
            lats.append(lat)
            stall = 0
    return out, lats, fastest


def initial_population(space: SearchSpace, latency: LatencyCache, budget_ms: float, settings: SearchSettings,
                       rng: random.Random) -> tuple[list[SubnetConfig], list[float]]:
    """Uniformly sampled configs meeting the budget (up to ``population_size``; bounded attempts).

    Raises:
        HatError: no sampled config meets the budget; the message gives the fastest predicted latency.
    """
    seen = set() if settings.unique_population else None
    popu, lats, fastest = _draw_feasible(lambda: space.sample(rng), settings.population_size, latency, budget_ms,
                                         settings.max_sample_attempts, seen, stall_draws=None)
    if not popu:
        fastest = min(fastest, latency([space.smallest()])[0])
        raise HatError(f"latency budget {budget_ms:g} ms is infeasible: no config of space '{space.name}' meets it "
                       f"({settings.max_sample_attempts} sampled); the fastest predicted latency is {fastest:.2f} ms")
    return popu, lats


def _iteration_record(run: int, it: int, budget_ms: float, popu, losses, lats, best_i: int, stats: IterationStats,
                      cache: FitnessCache, rng: random.Random) -> dict:
    return {
        "type": "iteration", "run": run, "iteration": it, "budget_ms": budget_ms,
        "population": [c.to_dict() for c in popu], "losses": losses, "latencies_ms": lats,
        "best": {"subnet": popu[best_i].to_dict(), "loss": losses[best_i], "latency_ms": lats[best_i]},
        "stats": dataclasses.asdict(stats),
        "cache": {"hits": cache.hits, "evaluations": cache.evaluations, "calls": cache.calls},
        "rng": rng_state_to_json(rng),
    }


def evolution_search(space: SearchSpace, score_fn: ScoreFn | FitnessCache, latency_fn: LatencyFn | LatencyCache,
                     budget_ms: float, settings: Optional[SearchSettings] = None,
                     rng: Optional[random.Random] = None, *, log: Optional[SearchLog] = None, run: int = 0,
                     progress: bool = False, desc: Optional[str] = None) -> SearchResult:
    """Find the config with the lowest ``score_fn`` loss whose ``latency_fn`` latency is at most ``budget_ms``.

    Args:
        space: the search space (sampling, mutation, crossover).
        score_fn: ``configs -> losses`` (lower is better), or a :class:`FitnessCache` (shared between searches).
        latency_fn: ``configs -> latencies in ms``, or a :class:`LatencyCache`.
        budget_ms: latency budget; a config is kept only if its latency is ``<= budget_ms``.
        settings: evolution settings (default: ``SearchSettings()``, HAT's sizes with our cache).
        rng: the only source of randomness (default ``random.Random(0)``).
        log: write one record per iteration; when it holds records of ``run`` (``--resume``), the search restores
            population, losses, RNG state and cache from the last one and continues, giving the uninterrupted result.
        run: index of this search inside a multi-budget run (records are tagged with it).
        progress: show a tqdm bar (stderr) with the best loss and its latency.
        desc: label of the progress bar.

    Returns:
        SearchResult with the best config, its loss and latency, and per-iteration history.

    Raises:
        HatError: no sampled config meets the budget (the message gives the fastest predicted latency).
    """
    settings = settings or SearchSettings()
    rng = rng if rng is not None else random.Random(0)
    cache = score_fn if isinstance(score_fn, FitnessCache) else FitnessCache(score_fn, enabled=settings.cache)
    latency = latency_fn if isinstance(latency_fn, LatencyCache) else LatencyCache(latency_fn)
    t0 = time.perf_counter()
    hits0, evals0 = cache.hits, cache.evaluations

    history: list[IterationStats] = []
    losses: Optional[list[float]] = None
    records = log.records(run) if log is not None else []
    if records:
        _restore_cache(cache, log)
        last = records[-1]
        history = [IterationStats(**r["stats"]) for r in records]
        popu = [SubnetConfig.from_dict(d) for d in last["population"]]
        losses, lats = [float(v) for v in last["losses"]], [float(v) for v in last["latencies_ms"]]
        latency.ms.update((c.key(), v) for c, v in zip(popu, lats))
        rng.setstate(rng_state_from_json(last["rng"]))
        it = last["iteration"]
    else:
        popu, lats = initial_population(space, latency, budget_ms, settings, rng)
        it = 0

    from tqdm import tqdm
    bar = tqdm(total=settings.iterations, initial=len(history), disable=not progress, desc=desc or
               f"search {budget_ms:g}ms", unit="it", leave=True, dynamic_ncols=True)
    try:
        while True:
            if losses is None:
                t_it, h, e = time.perf_counter(), cache.hits, cache.evaluations
                losses = cache(popu)
                order = sorted(range(len(popu)), key=lambda i: losses[i])
                parents = order[:settings.parent_size]
                stats = IterationStats(
                    iteration=it, best_loss=losses[order[0]], best_latency_ms=lats[order[0]],
                    mean_parent_loss=sum(losses[i] for i in parents) / len(parents), population=len(popu),
                    evaluated=cache.evaluations - e, cache_hits=cache.hits - h,
                    seconds=time.perf_counter() - t_it)
                history.append(stats)
                if log is not None:
                    log.append(_iteration_record(run, it, budget_ms, popu, losses, lats, order[0], stats, cache, rng))
                bar.update(1)
                bar.set_postfix(best_loss=f"{stats.best_loss:.4f}", latency=f"{stats.best_latency_ms:.1f}ms")
            if it >= settings.iterations - 1:
                break
            popu, lats = _next_population(space, popu, losses, lats, latency, budget_ms, settings, rng)
            losses = None
            it += 1
    finally:
        bar.close()

    b = min(range(len(popu)), key=lambda i: losses[i])
    return SearchResult(best=popu[b], best_loss=losses[b], best_latency_ms=lats[b], budget_ms=budget_ms,
                        history=history, evaluations=cache.evaluations - evals0, cache_hits=cache.hits - hits0,
                        seconds=time.perf_counter() - t0)


def _next_population(space: SearchSpace, popu, losses, lats, latency: LatencyCache, budget_ms: float,
                     settings: SearchSettings, rng: random.Random):
    """Parents (best ``parent_size``, stable order) + feasible mutations + feasible crossovers."""
    order = sorted(range(len(popu)), key=lambda i: losses[i])[:settings.parent_size]
    parents, parent_lats = [popu[i] for i in order], [lats[i] for i in order]
    seen = {c.key() for c in parents} if settings.unique_population else None

    def mutation():
        return space.mutate(rng.choice(parents), settings.mutation_prob, rng)

    def crossover():
        a, b = rng.sample(parents, 2) if len(parents) > 1 else (parents[0], parents[0])
        return space.crossover(a, b, rng)

    mut, mut_lats, _ = _draw_feasible(mutation, settings.mutation_size, latency, budget_ms,
                                      settings.max_child_attempts, seen)
    cro, cro_lats, _ = _draw_feasible(crossover, settings.crossover_size, latency, budget_ms,
                                      settings.max_child_attempts, seen)
    return parents + mut + cro, parent_lats + mut_lats + cro_lats


def _restore_cache(cache: FitnessCache, log: SearchLog) -> None:
    """Refill the fitness cache from every logged population (every scored config was in one) and its counters."""
    recs = log.records()
    for r in recs:
        for d, v in zip(r["population"], r["losses"]):
            cache.add(SubnetConfig.from_dict(d), v)
    if recs and cache.calls == 0 and cache.evaluations == 0:
        c = recs[-1]["cache"]
        cache.hits, cache.evaluations, cache.calls = c["hits"], c["evaluations"], c["calls"]


def latency_range(space: SearchSpace, latency_fn: LatencyFn | LatencyCache, rng: random.Random,
                  samples: int = 500, rounds: int = 10) -> tuple[tuple[float, SubnetConfig], tuple[float, SubnetConfig]]:
    """Estimate the fastest and slowest predicted configs of ``space``.

    Predicts the smallest and largest configs plus ``samples`` random ones, then runs ``rounds`` of a small
    mutation-only evolution towards each extreme (a learned predictor need not be monotonic in every gene).

    Returns:
        ``((min_ms, fastest_config), (max_ms, slowest_config))``.
    """
    latency = latency_fn if isinstance(latency_fn, LatencyCache) else LatencyCache(latency_fn)
    pool = [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(samples)]
    lats = latency(pool)
    ranked = sorted(zip(lats, range(len(pool))))
    out = []
    for sign in (1, -1):
        elite = [pool[i] for _, i in (ranked if sign > 0 else ranked[::-1])[:10]]
        for _ in range(rounds):
            kids = [space.mutate(rng.choice(elite), 0.2, rng) for _ in range(50)]
            cand = elite + kids
            cl = latency(cand)
            elite = [cand[i] for i in sorted(range(len(cand)), key=lambda i: (sign * cl[i], i))[:10]]
        out.append((latency([elite[0]])[0], elite[0]))
    return out[0], out[1]
