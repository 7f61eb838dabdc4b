import dataclasses
import random

import pytest

from hat.search import (FrontPoint, SearchLog, evolution_search, pareto_front, pareto_search,
                        plot_front, spread_budgets)
from hat.search.synthetic import Counting, toy_latency, toy_loss

BUDGETS = [18.0, 24.0, 30.0]


def test_pareto_front_of_points():
    pts = [FrontPoint(None, l, t) for l, t in [(5, 10), (4, 12), (4.5, 13), (3, 20), (3, 21), (6, 9), (6, 11)]]
    front = pareto_front(pts)
    assert [(p.loss, p.latency_ms) for p in front] == [(6, 9), (5, 10), (4, 12), (3, 20)]


def test_per_budget_results_as_good_as_separate_runs_and_cheaper(tiny_space, small_settings):
    calls = Counting(toy_loss)
    res = pareto_search(tiny_space, calls, toy_latency, BUDGETS[::-1], small_settings, random.Random(0))
    assert res.budgets_ms == BUDGETS and calls.configs == res.evaluations
    base = random.Random(0).getrandbits(64)  # every budget's evolution starts from this state
    separate_evals = 0
    for b, r in zip(BUDGETS, res.results):
        sep_calls = Counting(toy_loss)
        sep = evolution_search(tiny_space, sep_calls, toy_latency, b, small_settings, random.Random(base))
        separate_evals += sep_calls.configs
        assert r.best_latency_ms <= b and r.best_loss <= sep.best_loss
    assert res.evaluations < separate_evals
    losses = [r.best_loss for r in res.results]
    assert losses == sorted(losses, reverse=True)
    # front: nobody in the archive dominates a front point, and each budget's best is on the front
    for p in res.front:
        assert not any(q.loss <= p.loss and q.latency_ms <= p.latency_ms and (q.loss, q.latency_ms) !=
                       (p.loss, p.latency_ms) for q in res.archive)
    front_keys = {p.config.key() for p in res.front}
    assert all(r.best.key() in front_keys for r in res.results)


def test_per_budget_never_worse_than_shared(tiny_space, small_settings):
    a = pareto_search(tiny_space, toy_loss, toy_latency, BUDGETS, small_settings, random.Random(3))
    b = pareto_search(tiny_space, toy_loss, toy_latency, BUDGETS, small_settings, random.Random(3), loosest_only=True)
    assert all(x.best_loss <= y.best_loss for x, y in zip(a.results, b.results))
    assert all(r.best_latency_ms <= bud for r, bud in zip(b.results, BUDGETS))
    assert b.evaluations < a.evaluations


class Interrupt(Exception):
    pass


def test_pareto_resume_equals_uninterrupted(tiny_space, small_settings, tmp_path):
    s = dataclasses.replace(small_settings, iterations=4)
    header = {"budgets": BUDGETS}
    full = pareto_search(tiny_space, toy_loss, toy_latency, BUDGETS, s, random.Random(0),
                         log=SearchLog(tmp_path / "a.jsonl", header))
    n = {"calls": 0}

    def flaky(cfgs):  # dies in the second budget's evolution
        n["calls"] += 1
        if n["calls"] > s.iterations + 2:
            raise Interrupt
        return toy_loss(cfgs)
    with pytest.raises(Interrupt):
        pareto_search(tiny_space, flaky, toy_latency, BUDGETS, s, random.Random(0),
                      log=SearchLog(tmp_path / "b.jsonl", header))
    res = pareto_search(tiny_space, toy_loss, toy_latency, BUDGETS, s, random.Random(0),
                        log=SearchLog(tmp_path / "b.jsonl", header, resume=True))
    assert [(r.best, r.best_loss) for r in res.results] == [(r.best, r.best_loss) for r in full.results]
    assert [(p.loss, p.latency_ms) for p in res.front] == [(p.loss, p.latency_ms) for p in full.front]


def test_spread_budgets_and_plot(tiny_space, small_settings, tmp_path):
    budgets = spread_budgets(tiny_space, toy_latency, 3, random.Random(0))
    fastest = toy_latency([tiny_space.smallest()])[0]
    assert len(budgets) == 3 and fastest < budgets[0] < budgets[1] < budgets[2]
    assert budgets[2] >= toy_latency([tiny_space.largest()])[0] - 1e-6
    res = pareto_search(tiny_space, toy_loss, toy_latency, budgets, dataclasses.replace(small_settings, iterations=3),
                        random.Random(0))
    plot_front(res, tmp_path / "front.png", title="toy")
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
