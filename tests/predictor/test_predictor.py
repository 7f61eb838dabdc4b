"""Latency predictor: fit, artifact, space check, metrics, CLI."""

from __future__ import annotations

import itertools
import json
import random
import time

import numpy as np
import pytest
import torch

from hat.cli.predictor import main
from hat.errors import HatError
from hat.latency.records import CsvAppender, LatencyRecord, read_latency_csv
from hat.predictor import (FeatureSchema, fit_predictor, kendall_tau, load_predictor, regression_metrics,
                           split_indices)
from hat.space import load_space


@pytest.fixture(scope="module")
def xeon(shared_dir):
    return read_latency_csv(shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_xeon_all.csv")


@pytest.fixture(scope="module")
def wmt():
    return load_space("wmt14_space0")


def _synthetic(space, n, seed=0):
    """Our-format rows with a subnet column; latency = a made-up but layer-dependent cost."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = space.sample(rng)
        enc = 1.0 + 1e-4 * c.encoder_embed_dim * sum(c.encoder_ffn_embed_dim) / 100
        dec = 2.0 + sum(1e-5 * c.decoder_embed_dim * f / 10 + 0.3 * (a + 2) for f, a in
                        zip(c.decoder_ffn_embed_dim, c.decoder_arbitrary_ende_attn))
        out.append(LatencyRecord.from_subnet(c, enc * (1 + 0.01 * rng.random()), dec, runtime="debug"))
    return out


def test_fit_small_subset_then_predict(xeon, wmt, tmp_path):
    tr, va, te = split_indices(len(xeon), 0)
    p = fit_predictor([xeon[i] for i in tr[:300]], "xeon", wmt, val_records=[xeon[i] for i in va])
    m = p.evaluate([xeon[i] for i in te])
    assert m["mape"] < 0.08 and m["kendall_tau"] > 0.8
    cfgs = [wmt.sample(random.Random(i)) for i in range(50)]
    ms = p.predict_ms(cfgs)
    assert ms.shape == (50,) and np.all(ms > 0)
    assert p.predict_ms([]).shape == (0,)
    path = tmp_path / "p.pt"
    p.save(path)
    raw = torch.load(path, weights_only=True)
    assert raw["model_kind"] == "cost_linear" and raw["device"] == "xeon" and raw["space"]["name"] == "wmt14_space0"
    q = load_predictor(path)
    assert (q.device, q.space_name, q.feature_kind, q.space_fingerprint) == ("xeon", "wmt14_space0", "hat10_cost",
                                                                             wmt.fingerprint())
    np.testing.assert_allclose(q.predict_ms(cfgs), ms)
    q.check_space(wmt)
    with pytest.raises(HatError, match="fit for search space 'wmt14_space0'"):
        q.check_space(load_space("iwslt14_space1"))


@pytest.mark.parametrize("kind,opts", [("hat_mlp", {"train_steps": 20, "hidden_dim": 32}),
                                       ("mlp", {"steps": 50, "ensemble": 2, "width": 16})])
def test_mlp_models_round_trip(xeon, wmt, tmp_path, kind, opts):
    p = fit_predictor(xeon[:200], "xeon", wmt, kind, model_options=opts)
    path = tmp_path / f"{kind}.pt"
    p.save(path)
    q = load_predictor(path)
    np.testing.assert_allclose(q.predict_records(xeon[:20]), p.predict_records(xeon[:20]), rtol=1e-6)
    assert q.feature_kind == ("hat10" if kind == "hat_mlp" else "hat10_cost")
    # few-shot transfer from it
    t = fit_predictor(xeon[200:230], "xeon2", wmt, init=q, model_options=opts)
    assert t.model_kind == kind and np.all(np.isfinite(t.predict_records(xeon[:5])))


def test_layer_features_with_subnets(wmt, tmp_path):
    recs = _synthetic(wmt, 300)
    p = fit_predictor(recs[:250], "synthetic", wmt)
    assert p.feature_kind == "layers"
    assert p.evaluate(recs[250:])["mape"] < 0.05
    p.save(tmp_path / "s.pt")
    assert load_predictor(tmp_path / "s.pt").feature_kind == "layers"


def test_features_consistent_between_configs_and_hat_rows(wmt):
    cfgs = [wmt.sample(random.Random(i)) for i in range(30)]
    h = np.array([c.hat_features() for c in cfgs])
    for kind in ("hat10", "hat10_cost"):
        f = FeatureSchema.for_space(kind, wmt)
        np.testing.assert_allclose(f.from_configs(cfgs), f.from_hat(h))
    lay = FeatureSchema.for_space("layers", wmt).from_configs(cfgs)
    assert lay.shape == (30, FeatureSchema.for_space("layers", wmt).dim)
    with pytest.raises(HatError, match="subnet"):
        FeatureSchema.for_space("layers", wmt).from_hat(h)


def test_transfer_few_shot(shared_dir, xeon, wmt):
    rpi = read_latency_csv(shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_raspberrypi_all.csv")
    src = fit_predictor(xeon, "xeon", wmt)
    mapes = []
    for seed in (0, 1, 2):  # the rows of docs/benchmarks.md's transfer table (xeon -> raspberrypi, k = 10)
        tr, _, te = split_indices(len(rpi), seed)
        t = fit_predictor([rpi[i] for i in tr[:10]], "rpi", wmt, init=src)
        assert t.train["init_device"] == "xeon"
        mapes.append(t.evaluate([rpi[i] for i in te])["mape"])
    # Measured 0.0825 / 0.0591 / 0.0564, mean 0.066 (the reported number); bounds leave ~15-20 % of margin.
    assert max(mapes) < 0.10 and sum(mapes) / 3 < 0.075, mapes


def _tau_brute(x, y):
    c = d = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        c += sx * sy > 0
        d += sx * sy < 0
        tx += sx != 0
        ty += sy != 0
    return (c - d) / np.sqrt(tx * ty)


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True)])
def test_kendall_tau_matches_brute_force(seed, ties):
    r = np.random.default_rng(seed)
    x = r.normal(size=60)
    y = x + r.normal(size=60)
    if ties:
        x, y = np.round(x), np.round(y * 2) / 2
    assert kendall_tau(x, y) == pytest.approx(_tau_brute(x, y))
    assert kendall_tau(x, x) == pytest.approx(1.0)
    assert kendall_tau([1, 1, 1], [1, 2, 3]) == 0.0


def test_regression_metrics():
    m = regression_metrics([110, 95, 200], [100, 100, 100])
    assert m["n"] == 3 and m["acc10"] == pytest.approx(2 / 3) and m["mape"] == pytest.approx((0.1 + 0.05 + 1) / 3)


def test_predict_throughput_sanity(xeon, wmt):
    """Not a timed assertion: prints configs / CPU-second (benchmarks report the real number)."""
    p = fit_predictor(xeon[:300], "xeon", wmt)
    cfgs = [wmt.sample(random.Random(i)) for i in range(5000)]
    t = time.process_time()
    ms = p.predict_ms(cfgs)
    dt = max(time.process_time() - t, 1e-9)
    assert ms.shape == (5000,) and np.all(np.isfinite(ms))
    print(f"predict_ms: {len(cfgs) / dt:,.0f} configs per CPU-second")


def test_cli_fit_eval(shared_dir, tmp_path, capsys):
    src = shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_xeon_all.csv"
    small = tmp_path / "x.csv"
    small.write_text("".join(src.read_text().splitlines(keepends=True)[:301]))
    out = tmp_path / "x.pt"
    assert main(["fit", "--data", str(small), "--device", "xeon", "--out", str(out)]) == 0
    rep = tmp_path / "r.json"
    assert main(["eval", "--predictor", str(out), "--data", str(src), "--report", str(rep), "--plot",
                 str(tmp_path / "s.png")]) == 0
    r = json.loads(rep.read_text())
    assert {"rmse_ms", "mape", "acc10", "kendall_tau", "n"} <= set(r) and r["n"] == 2000
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "mape" in capsys.readouterr().out


def test_cli_register_needs_provenance(shared_dir, wmt, tmp_path, capsys):
    hat_csv = str(shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_xeon_all.csv")
    idx = tmp_path / "index.yaml"
    assert main(["fit", "--data", hat_csv, "--device", "x", "--out", str(tmp_path / "x.pt"), "--register",
                 "--index", str(idx)]) == 2
    assert "needs provenance" in capsys.readouterr().err and not idx.exists()
    assert main(["fit", "--data", hat_csv, "--device", "x", "--out", str(tmp_path / "x.pt"), "--register",
                 "--index", str(idx), "--source", "HAT (Wang et al. 2020) published measurements",
                 "--runtime", "pytorch"]) == 0
    ours = tmp_path / "ours.csv"
    with CsvAppender(ours) as a:
        for r in _synthetic(wmt, 60):
            r.host = "testhost"
            a.append(r)
    assert main(["fit", "--data", str(ours), "--device", "cpu", "--out", str(tmp_path / "c.pt"), "--register",
                 "--index", str(idx)]) == 0
    from hat.config import load_yaml
    e = load_yaml(idx)["predictors"]
    assert [x["device"] for x in e] == ["x", "cpu"]
    assert e[0]["source"].startswith("HAT") and e[0]["runtime"] == "pytorch" and e[0]["metrics_split"] == "cv5"
    assert e[1]["path"] == "c.pt" and len(e[1]["data"][0]["sha256"]) == 64
    assert e[1]["runtime"] == "debug" and e[1]["hosts"] == ["testhost"] and e[1]["source"].startswith("measured")


@pytest.mark.parametrize("argv,match", [
    (["fit", "--data", "/nonexistent.csv", "--device", "x", "--out", "o.pt"], "no such latency file"),
    (["eval", "--predictor", "/nonexistent.pt", "--data", "x.csv", "--report", "r.json"], "no such predictor"),
])
def test_cli_bad_input_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_cli_not_a_predictor(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save({"hello": 1}, bad)
    assert main(["eval", "--predictor", str(bad), "--data", "x.csv", "--report", str(tmp_path / "r.json")]) == 2
    assert "not a latency predictor" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    assert main(["eval", "--predictor", str(junk), "--data", "x.csv", "--report", str(tmp_path / "r.json")]) == 2


def test_cli_fit_metrics_equal_independent_heldout_computation(shared_dir, wmt, tmp_path, capsys):
    """The metrics `fit` reports are out-of-fold: recompute them here, fold by fold, from fits that never saw
    the fold's rows (hyperparameters chosen inside each fit)."""
    src = shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_xeon_all.csv"
    small = tmp_path / "x.csv"
    small.write_text("".join(src.read_text().splitlines(keepends=True)[:91]))
    rep = tmp_path / "r.json"
    assert main(["fit", "--data", str(small), "--device", "xeon", "--out", str(tmp_path / "x.pt"), "--cv", "4",
                 "--seed", "3", "--report", str(rep), "--plot", str(tmp_path / "cv.png")]) == 0
    printed = capsys.readouterr().out
    recs = read_latency_csv(small)
    n = len(recs)
    assert n == 90
    order = list(range(n))
    random.Random(3).shuffle(order)
    oof = np.zeros(n)
    for j in range(4):
        test = order[j::4]
        train = [recs[i] for i in range(n) if i not in set(test)]
        p = fit_predictor(train, "xeon", wmt, seed=3, cv_folds=0)
        assert p.train["n_train"] + p.train["n_val"] == len(train)
        oof[test] = p.predict_records([recs[i] for i in test])
    y = np.array([r.latency_ms for r in recs])
    want = regression_metrics(oof, y)
    r = json.loads(rep.read_text())
    assert r["metrics_split"] == "cv4"
    for k in ("mape", "rmse_ms", "acc10", "kendall_tau"):
        assert r[k] == pytest.approx(want[k], rel=1e-9)
    assert f"cv4 held-out mape {want['mape']:.4f}" in printed
    saved = load_predictor(tmp_path / "x.pt")
    assert saved.metrics["cv"]["mape"] == pytest.approx(want["mape"]) and saved.metrics_split == "cv4"
    # not the in-sample number
    assert saved.metrics["train"]["mape"] != pytest.approx(want["mape"])
    assert (tmp_path / "cv.png").stat().st_size > 0


def test_fit_too_few_rows_reports_no_metrics(wmt):
    p = fit_predictor(_synthetic(wmt, 2), "d", wmt)
    assert p.metrics_split == "none" and p.heldout_metrics is None
