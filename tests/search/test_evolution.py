import dataclasses
import json
import random

import pytest

from hat.errors import ConfigError, HatError
from hat.search import (FitnessCache, SearchLog, SearchSettings, evolution_search, latency_range, load_settings)

from hat.search.synthetic import Counting, mismatch, toy_latency, toy_loss


@pytest.mark.parametrize("budget", [25.0, 35.0])
def test_result_and_every_candidate_meet_budget(tiny_space, small_settings, tmp_path, budget):
    log = SearchLog(tmp_path / "log.jsonl", {"t": 1})
    r = evolution_search(tiny_space, toy_loss, toy_latency, budget, small_settings, random.Random(0), log=log)
    assert r.best_latency_ms <= budget and toy_latency([r.best])[0] == r.best_latency_ms
    assert tiny_space.contains(r.best)
    assert r.best_loss == toy_loss([r.best])[0]
    assert len(r.history) == small_settings.iterations
    recs = log.records()
    assert all(l <= budget for rec in recs for l in rec["latencies_ms"])
    # elitism: the best loss never gets worse
    best = [h.best_loss for h in r.history]
    assert best == sorted(best, reverse=True)


def test_finds_known_optimum(tiny_space):
    target = tiny_space.sample(random.Random(5))
    budget = toy_latency([target])[0] + 1e-9

    def score(configs):
        return [float(mismatch(c, target)) for c in configs]
    r = evolution_search(tiny_space, score, toy_latency, budget, load_settings("fast"), random.Random(1))
    assert r.best == target and r.best_loss == 0.0


def test_tighter_budget_gives_faster_worse_configs(tiny_space, small_settings):
    out = [evolution_search(tiny_space, toy_loss, toy_latency, b, small_settings, random.Random(0))
           for b in (16.0, 22.0, 28.0)]
    lats = [r.best_latency_ms for r in out]
    losses = [r.best_loss for r in out]
    assert lats == sorted(lats) and losses == sorted(losses, reverse=True)
    assert losses[0] > losses[-1]


def test_same_seed_same_result(tiny_space, small_settings):
    a, b, c = (evolution_search(tiny_space, toy_loss, toy_latency, 28.0, small_settings, random.Random(s))
               for s in (3, 3, 4))
    assert a.best == b.best and [h.best_loss for h in a.history] == [h.best_loss for h in b.history]
    assert [h.mean_parent_loss for h in a.history] == [h.mean_parent_loss for h in b.history]
    assert [h.mean_parent_loss for h in a.history] != [h.mean_parent_loss for h in c.history]


def test_cache_counts_and_does_not_change_result(tiny_space, small_settings):
    on, off = Counting(toy_loss), Counting(toy_loss)
    s_off = SearchSettings(**{**small_settings.__dict__, "cache": False})
    r_on = evolution_search(tiny_space, on, toy_latency, 28.0, small_settings, random.Random(0))
    r_off = evolution_search(tiny_space, off, toy_latency, 28.0, s_off, random.Random(0))
    assert r_on.best == r_off.best and r_on.best_loss == r_off.best_loss
    # without cache every member of every population is scored (HAT)
    assert off.configs == sum(h.population for h in r_off.history) == r_off.evaluations
    assert r_off.cache_hits == 0
    # with cache: one batched call per iteration, each distinct config scored once, parents always hit
    assert on.calls == small_settings.iterations
    assert on.configs == r_on.evaluations == sum(h.evaluated for h in r_on.history)
    assert r_on.evaluations + r_on.cache_hits == sum(h.population for h in r_on.history)
    assert all(h.cache_hits >= small_settings.parent_size for h in r_on.history[1:])


def test_cache_dedupes_within_batch(tiny_space, rng):
    calls = Counting(toy_loss)
    cache = FitnessCache(calls)
    a, b = tiny_space.sample(rng), tiny_space.sample(rng)
    assert cache([a, b, a, a]) == toy_loss([a, b, a, a])
    assert calls.configs == 2 and cache.hits == 2
    cache([b, a])
    assert calls.configs == 2 and cache.hits == 4 and calls.calls == 1


def test_infeasible_budget_reports_fastest(tiny_space, small_settings):
    fastest = toy_latency([tiny_space.smallest()])[0]
    s = SearchSettings(**{**small_settings.__dict__, "max_sample_attempts": 1000})
    with pytest.raises(HatError, match=f"fastest predicted latency is {fastest:.2f} ms"):
        evolution_search(tiny_space, toy_loss, toy_latency, fastest - 0.5, s, random.Random(0))
    (lo, cfg_lo), (hi, cfg_hi) = latency_range(tiny_space, toy_latency, random.Random(0))
    assert lo == pytest.approx(fastest) and cfg_lo == tiny_space.smallest()
    # toy_latency grows with every gene, so its maximum is the largest config with every decoder layer attending to
    # the last 3 encoder layers (largest() has arbitrary_ende_attn -1): 31.036 ms, above largest()'s 28.036 ms.
    slowest = dataclasses.replace(tiny_space.largest(), decoder_arbitrary_ende_attn=[2, 2, 2])
    assert hi == pytest.approx(toy_latency([slowest])[0]) == pytest.approx(31.036)
    assert cfg_hi == slowest


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_after", [1, 5])
def test_resume_equals_uninterrupted(tiny_space, small_settings, tmp_path, stop_after):
    header = {"budget": 28.0, "seed": 0}
    full = evolution_search(tiny_space, toy_loss, toy_latency, 28.0, small_settings, random.Random(0),
                            log=SearchLog(tmp_path / "full.jsonl", header))
    calls = {"n": 0}

    def flaky(configs):
        calls["n"] += 1
        if calls["n"] > stop_after:
            raise Interrupt
        return toy_loss(configs)
    path = tmp_path / "cut.jsonl"
    with pytest.raises(Interrupt):
        evolution_search(tiny_space, flaky, toy_latency, 28.0, small_settings, random.Random(0),
                         log=SearchLog(path, header))
    assert len(SearchLog(path, header, resume=True).records()) == stop_after
    with open(path, "a") as f:  # a torn last line, as a crash mid-write leaves it
        f.write('{"type":"iteration","run":0,"iter')
    counted = Counting(toy_loss)
    resumed = evolution_search(tiny_space, counted, toy_latency, 28.0, small_settings, random.Random(12345),
                               log=SearchLog(path, header, resume=True))
    assert resumed.best == full.best and resumed.best_loss == full.best_loss
    assert [h.best_loss for h in resumed.history] == [h.best_loss for h in full.history]
    strip = lambda recs: [{k: v for k, v in r.items() if k != "stats"} for r in recs]
    assert strip(SearchLog(path, header, resume=True).records()) == \
        strip(SearchLog(tmp_path / "full.jsonl", header, resume=True).records())
    assert counted.configs == full.evaluations - sum(h.evaluated for h in full.history[:stop_after])


def test_resume_with_other_settings_is_an_error(tmp_path):
    SearchLog(tmp_path / "l.jsonl", {"budget": 1.0})
    with pytest.raises(HatError, match="differs in: budget"):
        SearchLog(tmp_path / "l.jsonl", {"budget": 2.0}, resume=True)


def test_settings_files():
    hat, fast = load_settings("hat"), load_settings("fast")
    for s in (hat, fast):
        assert (s.population_size, s.parent_size, s.mutation_size, s.crossover_size) == (125, 25, 50, 50)
        assert (s.mutation_prob, s.iterations) == (0.3, 30)
    # HAT re-scores everything on the full set and keeps duplicates; ours caches, dedups and subsamples.
    assert (hat.cache, hat.unique_population, hat.valid_subset) == (False, False, None)
    assert (fast.cache, fast.unique_population) == (True, True) and fast.valid_subset is not None


def test_settings_strict(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("population_sise: 10\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(p)
    p.write_text("population_size: 10\n")
    with pytest.raises(ConfigError, match="must equal population_size"):
        load_settings(p)


def test_log_is_jsonl_with_rng_state(tiny_space, small_settings, tmp_path):
    log = SearchLog(tmp_path / "log.jsonl", {"x": 1})
    evolution_search(tiny_space, toy_loss, toy_latency, 28.0, small_settings, random.Random(0), log=log)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header" and len(lines) == 1 + small_settings.iterations
    rec = json.loads(lines[1])
    assert {"iteration", "population", "losses", "latencies_ms", "best", "rng"} <= set(rec)
    assert len(rec["population"]) == len(rec["losses"]) == small_settings.population_size
