"""Search settings (``configs/search/*.yaml``), strict-loaded.

``hat.yaml`` reproduces HAT's search exactly (Wang et al. 2020, ``evo_search.py``: population 125 = 25 parents +
50 mutations + 50 crossovers, mutation probability 0.3, 30 iterations, every population member re-scored every
iteration on the full validation set). ``fast.yaml`` keeps HAT's evolution but caches fitness by config, scores on a
seeded validation subset and keeps populations free of duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from hat.config import load_dataclass
from hat.registry import Registry
from hat.errors import ConfigError


# The registry of search strategies (hat.search.strategies defines and registers them; kept here so validating a
# settings file imports no search code).
SEARCH_STRATEGIES = Registry("search strategy", {"per_budget": "hat.search.strategies:PerBudget",
                                                 "shared": "hat.search.strategies:Shared"})


@dataclass
class SearchSettings:
    """Evolutionary search hyper-parameters (one YAML file in ``configs/search``)."""

    population_size: int = 125
    parent_size: int = 25
    mutation_size: int = 50
    crossover_size: int = 50
    # Probability that each gene (each layer's gene separately) is resampled by a mutation (HAT: 0.3).
    mutation_prob: float = 0.3
    iterations: int = 30
    # Reuse the loss of a config seen before (parents and revisited mutations). HAT re-scores: false.
    cache: bool = True
    # Redraw children that duplicate a member of the population being built (HAT allows duplicates: false).
    unique_population: bool = True
    # Candidates drawn (in total) while building the initial population before giving up on the budget.
    max_sample_attempts: int = 20000
    # Candidates drawn per iteration and child kind (mutation / crossover) while producing children that meet the
    # budget (HAT loops forever). When the parents have converged, crossovers rarely give new configs: the population
    # is then left smaller rather than burning time.
    max_child_attempts: int = 2000
    # Validation sentences scored per candidate (a fixed, seeded subset); null = the whole validation set (HAT).
    valid_subset: Optional[int] = None
    # Seed of the validation subset choice (independent of the search seed, so the fitness function is fixed).
    valid_subset_seed: int = 1
    # Token budget of a validation batch while scoring.
    valid_max_tokens: int = 4096
    # Pareto mode: number of budgets spread between the fastest and slowest predicted configs (--pareto).
    pareto_budgets: int = 5
    # Pareto mode strategy: "per_budget" = one evolution per budget sharing the fitness cache (as good as separate
    # runs); "shared" = one population evolved under the loosest budget, best per budget read from the archive.
    pareto_strategy: str = "per_budget"

    def __post_init__(self):
        for name in ("population_size", "parent_size", "iterations", "max_sample_attempts", "max_child_attempts",
                     "valid_max_tokens", "pareto_budgets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"search settings: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("mutation_size", "crossover_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"search settings: {name} must be >= 0, got {getattr(self, name)}")
        if self.parent_size + self.mutation_size + self.crossover_size != self.population_size:
            raise ConfigError(
                f"search settings: parent_size + mutation_size + crossover_size = "
                f"{self.parent_size + self.mutation_size + self.crossover_size} must equal population_size "
                f"{self.population_size}")
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise ConfigError(f"search settings: mutation_prob must be in [0, 1], got {self.mutation_prob}")
        if self.valid_subset is not None and self.valid_subset < 1:
            raise ConfigError(f"search settings: valid_subset must be >= 1 or null, got {self.valid_subset}")
        if self.pareto_strategy not in SEARCH_STRATEGIES:
            raise ConfigError(f"search settings: pareto_strategy must be one of {', '.join(SEARCH_STRATEGIES)}, "
                              f"got {self.pareto_strategy!r}")


def load_settings(name_or_path: str | os.PathLike = "fast") -> SearchSettings:
    """Load search settings by path or by name (``configs/search/<name>.yaml``: ``hat``, ``fast``).

    Raises:
        ConfigError: unknown name, unknown keys or bad values.
    """
    from hat.resources import resolve_config
    return load_dataclass(SearchSettings, resolve_config("search", name_or_path))
