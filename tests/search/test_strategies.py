"""The contract every registered search strategy keeps (parametrized over the registry, so a new strategy is tested
without editing this file): one result per budget, ascending, each meeting its budget and scored by the fitness
cache; the front holds every result's loss or better; the same seed gives the same result."""

from __future__ import annotations

import random

import pytest

from hat.search.evolution import FitnessCache, LatencyCache
from hat.search.settings import SEARCH_STRATEGIES
from hat.search.strategies import SearchStrategy, search_strategy
from hat.search.synthetic import toy_latency, toy_loss

BUDGETS = [32.0, 24.0]


def run(name, space, settings, seed=3):
    fitness = FitnessCache(toy_loss)
    return fitness, search_strategy(name).search(space, fitness, LatencyCache(toy_latency), sorted(BUDGETS),
                                                 settings, random.Random(seed))


@pytest.mark.parametrize("name", list(SEARCH_STRATEGIES))
def test_search_strategy_contract(name, tiny_space, small_settings):
    assert isinstance(search_strategy(name), SearchStrategy) and search_strategy(name).name == name
    fitness, res = run(name, tiny_space, small_settings)
    assert res.budgets_ms == sorted(BUDGETS) and len(res.results) == len(BUDGETS)
    for r, b in zip(res.results, sorted(BUDGETS)):
        assert r.budget_ms == b and r.best_latency_ms <= b
        tiny_space.check(r.best)
        assert fitness.losses[r.best.key()] == r.best_loss
        assert any(p.loss <= r.best_loss and p.latency_ms <= r.best_latency_ms for p in res.front)
    assert res.evaluations == fitness.evaluations > 0
    _, again = run(name, tiny_space, small_settings)
    assert [r.best.key() for r in again.results] == [r.best.key() for r in res.results]
