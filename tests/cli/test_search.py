"""hat-search end to end: a tiny random-weight SuperTransformer, a predictor fit on synthetic latencies, real data."""

import json
import random

import pytest
import torch

from hat.cli.search import main
from hat.space import SubnetConfig, load_space

SETTINGS = """population_size: 8
parent_size: 2
mutation_size: 3
crossover_size: 3
iterations: 3
valid_subset: 8
valid_max_tokens: 300
pareto_budgets: 2
"""


def _records(space, device, n=120, seed=0):
    from hat.latency.records import LatencyRecord
    from hat.search.synthetic import toy_latency
    rng = random.Random(seed)
    cfgs = [space.sample(rng) for _ in range(n)] + [space.smallest(), space.largest()]
    return [LatencyRecord(*c.hat_features(), lat * 0.4, lat * 0.6, 0.0, 0.0, subnet=c, runtime="debug", device=device)
            for c, lat in zip(cfgs, toy_latency(cfgs))]


@pytest.fixture(scope="module")
def setup(fairseq_fixture, tmp_path_factory):
    from hat.data import load_split
    from hat.nn import ModelConfig, SuperTransformer
    from hat.predictor import fit_predictor
    from hat.checkpoints import save_checkpoint

    d = tmp_path_factory.mktemp("search_cli")
    space = load_space("multi30k_tiny")
    v = len(load_split(fairseq_fixture / "bin", "valid", "de", "en").src_dict)
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=v, tgt_vocab_size=v)
    model = SuperTransformer(space, cfg)
    from dataclasses import asdict
    save_checkpoint({"model": model.state_dict(), "space": space.to_dict(), "model_config": asdict(cfg),
                     "subnet": None, "train_config": {"data": str(fairseq_fixture / "bin"), "src_lang": "de",
                                                      "tgt_lang": "en", "valid_subset": "valid"}},
                    d / "super.pt")
    fit_predictor(_records(space, "cpu"), "cpu", space, model_kind="cost_linear").save(d / "pred_cpu.pt")
    fit_predictor(_records(space, "gpu"), "gpu", space, model_kind="cost_linear").save(d / "pred_gpu.pt")
    other = load_space("iwslt14_space1")
    fit_predictor(_records(other, "cpu"), "cpu", other, model_kind="cost_linear").save(d / "pred_other.pt")
    (d / "settings.yaml").write_text(SETTINGS)
    return d


def _args(d, *extra):
    return ["--supernet", str(d / "super.pt"), "--device", "cpu", "--predictor", str(d / "pred_cpu.pt"),
            "--config", str(d / "settings.yaml"), "--no-progress", *extra]


def test_single_budget_writes_subnet_log_and_plot(setup, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args(setup, "--latency", "25ms", "--out", str(out))) == 0
    sub = SubnetConfig.load_yaml(out / "subnet.yaml")
    load_space("multi30k_tiny").check(sub)
    import yaml
    meta = yaml.safe_load((out / "subnet.yaml").read_text())
    assert meta["predicted_latency_ms"] <= 25 and meta["budget_ms"] == 25 and meta["device"] == "cpu"
    assert meta["params"] > 0 and meta["flops"] > 0 and 0 < meta["valid_loss"] < 20
    assert (out / "front.png").stat().st_size > 1000
    lines = (out / "search_log.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3
    res = json.loads((out / "results.json").read_text())
    assert res["results"][0]["subnet"] == sub.to_dict()
    # --resume of a finished search scores nothing new and gives the same result
    before = (out / "subnet.yaml").read_text()
    assert main(_args(setup, "--latency", "25ms", "--out", str(out), "--resume")) == 0
    assert (out / "subnet.yaml").read_text() == before
    assert len((out / "search_log.jsonl").read_text().splitlines()) == 4


def test_pareto_budgets_write_one_subnet_each(setup, tmp_path):
    out = tmp_path / "p"
    assert main(_args(setup, "--latency", "30ms,20ms", "--out", str(out))) == 0
    for b in (20, 30):
        SubnetConfig.load_yaml(out / f"subnet_{b}ms.yaml")
        import yaml
        assert yaml.safe_load((out / f"subnet_{b}ms.yaml").read_text())["predicted_latency_ms"] <= b
    assert SubnetConfig.load_yaml(out / "subnet.yaml") == SubnetConfig.load_yaml(out / "subnet_30ms.yaml")
    res = json.loads((out / "results.json").read_text())
    lat = [p["latency_ms"] for p in res["front"]]
    loss = [p["loss"] for p in res["front"]]
    assert lat == sorted(lat) and loss == sorted(loss, reverse=True)


def test_pareto_spread_budgets(setup, tmp_path):
    out = tmp_path / "s"
    assert main(_args(setup, "--pareto", "--out", str(out))) == 0
    res = json.loads((out / "results.json").read_text())
    assert len(res["budgets_ms"]) == 2 and res["fastest_predicted_ms"] < res["budgets_ms"][0]
    assert len(list(out.glob("subnet_*ms.yaml"))) == 2


@pytest.mark.parametrize("extra,needle", [
    (["--latency", "1ms"], "fastest predicted latency"),
    (["--latency", "fast"], "bad latency"),
    (["--latency", "20ms", "--device", "nosuchdevice"], "unknown device"),
    (["--latency", "20ms", "--predictor", "{d}/pred_gpu.pt"], "fit for device 'gpu'"),
    (["--latency", "20ms", "--predictor", "{d}/pred_other.pt"], "search space"),
    (["--latency", "20ms", "--space", "wmt14_space0"], "does not match search space"),
    ([], "give a latency budget"),
])
def test_errors_are_one_line_exit_2(setup, tmp_path, capsys, extra, needle):
    extra = [e.format(d=setup) for e in extra]
    assert main(_args(setup, "--out", str(tmp_path / "e")) + extra) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("hat-search: error:")
