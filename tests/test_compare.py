"""Searched vs baselines at equal latency (hat.compare): verdict, rivals, diagnostics, bootstrap, records."""

import json

import pytest

from hat import compare


def rec(name, kind, lat, bleu, budget=10.0):
    return {"name": name, "kind": kind, "latency_ms": lat, "bleu": list(bleu),
            "budget_ms": budget if kind == "searched" else None}


@pytest.mark.parametrize("searched,expect", [
    ((21.0, 20.0, 20.5), "holds (by more than one std)"),
    ((19.0, 19.2, 19.1), "does NOT hold"),
    ((21.0,), "holds (seeds 1 vs 3: no std yet)"),
])
def test_verdict(searched, expect):
    records = [rec("HAT@10ms", "searched", 10.0, searched), rec("fast", "baseline", 8.0, (19.5, 19.6, 19.4)),
               rec("slow", "baseline", 12.0, (30.0, 30.0, 30.0))]  # slower: not a rival
    (line,) = compare.verdict(records)
    assert "best baseline at <= latency fast" in line and line.endswith(expect)


def test_verdict_names_a_slower_baseline_within_the_budget():
    """The rule compares at the searched model's measured latency; the report also says whether a baseline slower
    than the pick but still within the budget (one the user could have deployed instead) scores higher."""
    records = [rec("HAT@11ms", "searched", 10.0, (21.0, 20.0, 20.5), 11.0), rec("fast", "baseline", 8.0, (19.5, 19.6)),
               rec("in_budget", "baseline", 10.9, (21.0, 20.6)), rec("over", "baseline", 11.5, (30.0, 30.0))]
    assert compare.budget_rival(records[0], records) is records[2]
    first, second = compare.verdict(records)
    assert "best baseline at <= latency fast" in first and first.endswith("holds (by more than one std)")
    assert second == ("  within its 11 ms budget: in_budget (10.90 ms) 20.80 ± 0.28: the searched model is lower by "
                      "0.30 (within one std)")
    records[2]["latency_ms"] = 11.2  # over the budget: no second line
    assert len(compare.verdict(records)) == 1


def test_search_miss_lines_tell_a_ranking_miss_from_a_sampling_miss():
    searched = {"name": "HAT@11ms", "kind": "searched", "budget_ms": 11.0, "latency_ms": 10.0, "bleu": [20.0, 20.2],
                "valid_nll_loss": [1.9, 1.9], "inherited_valid_loss": 2.10, "evaluated_by_search": True}
    rival = {"name": "in_budget", "kind": "baseline", "budget_ms": None, "latency_ms": 10.9, "bleu": [21.0, 21.2],
             "valid_nll_loss": [1.8, 1.8], "inherited_valid_loss": 2.12, "evaluated_by_search": False}
    (line,) = compare.search_miss_lines([searched, rival])
    assert line == ("in_budget is within HAT@11ms's budget and scores higher from scratch; the search's fitness "
                    "(inherited validation loss) ranks it worse: 2.1200 vs 2.1000 (from scratch, validation NLL "
                    "1.800 vs 1.900); the search never evaluated it, nor would it have picked it: a ranking miss, "
                    "not a sampling one")
    rival["inherited_valid_loss"] = 2.05
    (line,) = compare.search_miss_lines([searched, rival])
    assert "ranks it better: 2.0500 vs 2.1000" in line and line.endswith("never evaluated it: a sampling miss")
    rival["bleu"] = [19.0, 19.0]  # scores lower: nothing to explain
    assert compare.search_miss_lines([searched, rival]) == []


def test_better_at_latency_and_seed_std_lines():
    records = [{"name": "HAT@10ms", "kind": "searched", "budget_ms": 10.0, "predicted_latency_ms": 9.9,
                "bleu": [30.0, 31.0]},
               {"name": "Transformer-largest", "kind": "baseline", "budget_ms": None, "bleu": [33.0]}]
    assert compare.seed_std_line(records) == "seed std of SacreBLEU: median 0.71, max 0.71 over 1 models"
    assert compare.seed_std_line(records[1:]) is None
    (line,) = compare.better_at_latency_lines(records, {"HAT@10ms": 2.0, "random0": 1.9, "Transformer-largest": 1.8},
                                              {"HAT@10ms": 9.5, "random0": 9.0, "Transformer-largest": 18.0})
    assert line == ("HAT@10ms: budget 10 ms, predicted 9.90 ms, measured 9.50 ms; seed-0 validation NLL 2.000, "
                    "beaten at <= latency by random0 1.900")


def test_paired_bootstrap_per_shared_seed(tmp_path):
    """Each seed's BLEU gap is tested against the test set's sampling noise, on the seeds both models have."""
    refs = [f"a dog number {i} runs across the white fence" for i in range(50)]
    for name, seeds, hyp in (("HAT@10ms", (0, 1), lambda x: x), ("fast", (0,), lambda x: " ".join(x.split()[:3]))):
        for s in seeds:
            d = tmp_path / name / f"seed{s}"
            d.mkdir(parents=True)
            (d / "test.hyp").write_text("".join(hyp(x) + "\n" for x in refs))
            (d / "test.ref").write_text("".join(x + "\n" for x in refs))
    searched = {"name": "HAT@10ms", "kind": "searched", "seeds": [0, 1], "bleu": [100.0, 100.0], "latency_ms": 9.0,
                "budget_ms": 10.0}
    rival = {"name": "fast", "kind": "baseline", "seeds": [0], "bleu": [5.0], "latency_ms": 8.0}
    run_dir = lambda n, s: tmp_path / n / f"seed{s}"  # noqa: E731
    assert compare.best_rival(searched, [searched, rival]) is rival
    (pb,) = compare.paired_bootstrap_per_seed(searched, rival, run_dir)  # seed 1 has no baseline run
    assert pb["seed"] == 0 and pb["rival"] == "fast" and pb["bleu_b"] == 100.0 and pb["p_value"] < 0.01
    assert compare.paired_bootstrap_per_seed(searched, None, run_dir) == []
    searched["paired_bootstrap"] = [pb, {**pb, "rival": "other"}]
    first, second = compare.bootstrap_lines([searched, rival])  # one per rival
    assert first.startswith("HAT@10ms vs fast, paired bootstrap on the test set per seed: seed 0 +")
    assert second.startswith("HAT@10ms vs other, paired bootstrap")
    json.dumps(pb)  # goes into the results JSON
    records = [searched, rival]
    compare.annotate(records, run_dir)
    assert searched["paired_bootstrap"][0]["rival"] == "fast" and rival["inherited_valid_loss"] is None


def test_predictor_error_line(tmp_path):
    import random

    from hat.latency.records import LatencyRecord
    from hat.predictor import fit_predictor
    from hat.space import load_space
    space = load_space("multi30k_cpu")
    rng = random.Random(0)
    recs = []
    for _ in range(40):  # latency = 2 ms per decoder layer + 1 ms
        c = space.sample(rng)
        recs.append(LatencyRecord.from_subnet(c, 1.0, 2.0 * c.decoder_layer_num, runtime="debug", device="cpu",
                                              host="h"))
    fit_predictor(recs, "cpu", space).save(str(tmp_path / "p.pt"))
    line = compare.predictor_error_line(tmp_path / "p.pt", {"Transformer-largest": space.largest()},
                                        {"Transformer-largest": 7.0 / 1.1})  # 3 decoder layers: 7 ms predicted
    assert line.startswith("latency predictor vs measured over 1 models: mean absolute error 10.0%, largest +10.0% "
                           "(Transformer-largest)"), line


def test_table_and_ranking_line():
    records = [{**rec("HAT@10ms", "searched", 9.0, (30.0, 31.0)), "params": 1234},
               {**rec("slow", "baseline", None, ()), "params": 99}]
    lines = compare.table(records)
    assert lines[2] == "| HAT@10ms | searched | 10.0 | 9.00 | 1,234 | 2 | 30.50 ± 0.71 |"
    assert lines[3] == "| slow | baseline | - | - | 99 | 0 | - |"
    rk = {"a": {"kendall_tau": 0.7, "kendall_tau_bleu": 0.6, "n_subnets": 10}}
    assert compare.ranking_line(rk, "a", ["a", "b"]).endswith("over 10 SubTransformers: a 0.70 (BLEU 0.60); the "
                                                              "search used a")
    assert compare.ranking_line(rk, "b", ["a"]) is None
