"""Every registered predictor model honours the model contract; HAT's MLP uses HAT's published hyperparameters."""

import random

import numpy as np
import pytest

from hat.predictor.models import (HAT_FEATURE_NORM, HAT_LAT_NORM, HAT_MLP_HPARAMS, MODELS, HatMLP, hat_lat_norm,
                                  make_model)

QUICK = {"cost_linear": {}, "hat_mlp": {"train_steps": 30, "hidden_dim": 16}, "mlp": {"steps": 40, "ensemble": 2,
                                                                                        "width": 16}}


def _data(n=80, seed=0):
    r = np.random.default_rng(seed)
    X = np.column_stack([r.choice([512, 640], n), np.full(n, 6), r.uniform(1024, 3072, n), r.uniform(4, 8, n),
                         r.choice([512, 640], n), r.integers(1, 7, n), r.uniform(1024, 3072, n), r.uniform(4, 8, n),
                         r.uniform(4, 8, n), r.uniform(-1, 2, n)])
    y = 20 + 0.01 * X[:, 2] + 15 * X[:, 5] + r.normal(0, 0.5, n)
    return X, y


def test_every_builtin_model_has_quick_options():
    assert set(QUICK) <= set(MODELS) and {"cost_linear", "hat_mlp", "mlp"} <= set(QUICK)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_model_contract(kind):
    """A model from outside the package is run as it is (its defaults); built-ins with quick options."""
    import torch
    X, y = _data()
    m = make_model(kind, **QUICK.get(kind, {}))
    assert m.kind == kind
    m.fit(X[:60], y[:60], X[60:], y[60:], seed=0)
    p = m.predict(X)
    assert p.shape == (len(X),) and np.all(np.isfinite(p))
    # state() is weights_only-loadable and round-trips exactly
    import io
    buf = io.BytesIO()
    torch.save(m.state(), buf)
    buf.seek(0)
    q = MODELS.get(kind).from_state(torch.load(buf, weights_only=True))
    np.testing.assert_allclose(q.predict(X), p, rtol=1e-9)
    # same seed, same model
    m2 = make_model(kind, **QUICK.get(kind, {})).fit(X[:60], y[:60], X[60:], y[60:], seed=0)
    np.testing.assert_allclose(m2.predict(X), p, rtol=1e-9)


def _hat_yaml(path):
    """HAT's latency_predictor YAMLs are flat `key: value` lines (ConfigArgParse), lists as [a, b]."""
    import yaml
    return yaml.safe_load(path.read_text())


def test_hat_mlp_uses_hats_published_hyperparameters(shared_dir):
    files = sorted((shared_dir / "data" / "hat_configs").glob("*/latency_predictor/*.yml"))
    assert len(files) == 8
    m = HatMLP()
    for f in files:
        c = _hat_yaml(f)
        assert (c["hidden-dim"], c["hidden-layer-num"], c["train-steps"], c["bsz"], float(c["lr"])) == \
               (400, 3, 5000, 128, 1e-5)
        assert (m.hidden_dim, m.hidden_layer_num, m.train_steps, m.bsz, m.lr) == \
               (c["hidden-dim"], c["hidden-layer-num"], c["train-steps"], c["bsz"], float(c["lr"]))
        assert tuple(float(v) for v in c["feature-norm"]) == HAT_FEATURE_NORM == tuple(m.feature_norm)
        stem = c["lat-dataset-path"].rsplit("/", 1)[-1].removesuffix(".csv")
        assert HAT_LAT_NORM[stem.removesuffix("_all")] == float(c["lat-norm"])
        assert hat_lat_norm([f"x/{stem}.csv"]) == float(c["lat-norm"])
    assert HAT_MLP_HPARAMS == {"hidden_dim": 400, "hidden_layer_num": 3, "train_steps": 5000, "bsz": 128, "lr": 1e-5}


def test_hat_mlp_architecture_and_fixed_norms():
    X, y = _data()
    m = HatMLP(train_steps=2, lat_norm=300.0).fit(X, y)
    shapes = [tuple(s["w"].shape) for s in m.net_layers]
    # HAT's Net: first_layer 10->400, hidden_layer_num x 400->400, predict 400->1
    assert shapes == [(400, 10), (400, 400), (400, 400), (400, 400), (1, 400)]
    assert m.lat_norm == 300.0  # fixed, not derived from the data
    assert HatMLP(train_steps=2).fit(X, y).lat_norm == pytest.approx(y.max())  # named deviation for unknown devices
    assert hat_lat_norm(["mine.csv"]) is None and hat_lat_norm([]) is None


def test_hat_mlp_batches_without_replacement(monkeypatch):
    """HAT draws each batch with random.sample (distinct rows); record the indices the fit uses."""
    seen = []
    orig = random.Random.sample

    def spy(self, population, k, **kw):
        out = orig(self, population, k, **kw)
        seen.append(out)
        return out
    monkeypatch.setattr(random.Random, "sample", spy)
    X, y = _data(n=200)
    HatMLP(train_steps=5, hidden_dim=8, lat_norm=100.0).fit(X, y)
    assert len(seen) == 5 and all(len(b) == 128 and len(set(b)) == 128 for b in seen)


def test_fit_predictor_gives_hat_mlp_hats_lat_norm_for_hat_files(shared_dir):
    from hat.latency.records import read_latency_csv
    from hat.predictor import fit_predictor
    from hat.space import load_space
    path = shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_raspberrypi_all.csv"
    recs = read_latency_csv(path)[:150]
    p = fit_predictor(recs, "rpi4", load_space("wmt14_space0"), "hat_mlp", sources=[str(path)], cv_folds=0,
                      model_options={"train_steps": 3, "hidden_dim": 8})
    assert p.model.lat_norm == 5000.0
