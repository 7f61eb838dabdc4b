"""Latency regressors on feature matrices: HAT's MLP protocol, our cost-linear default, and an MLP ensemble.

Every model exposes ``fit(X, y, X_val, y_val, seed, init)``, ``predict(X) -> ms``, ``state() -> dict`` of tensors /
floats / lists (``torch.load(weights_only=True)``-safe) and ``from_state``. Prediction runs in numpy (batched
matmuls), so 10^5 configs take milliseconds once the features exist.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from hat.errors import HatError
from hat.registry import Registry, make_register

# HAT's latency_predictor.py hyperparameters, as every configs/<task>/latency_predictor/*.yml in HAT's repository
# (commit 70e5a279) gives them; tests/predictor/test_models.py checks them against those files.
# feature-norm, in the order of hat.space.HAT_FEATURE_NAMES
HAT_FEATURE_NORM = (640.0, 6.0, 2048.0, 6.0, 640.0, 6.0, 2048.0, 6.0, 6.0, 2.0)
HAT_MLP_HPARAMS = {"hidden_dim": 400, "hidden_layer_num": 3, "train_steps": 5000, "bsz": 128, "lr": 1e-5}
# lat-norm (ms) per HAT latency dataset (file stem without "_all"); HAT's argparse default is 200.
HAT_LAT_NORM = {
    "iwslt14deen_gpu_titanxp": 200.0,
    "wmt14ende_cpu_raspberrypi": 5000.0, "wmt14ende_cpu_xeon": 300.0, "wmt14ende_gpu_titanxp": 200.0,
    "wmt14enfr_cpu_raspberrypi": 5000.0, "wmt14enfr_cpu_xeon": 300.0, "wmt14enfr_gpu_titanxp": 200.0,
    "wmt19ende_gpu_titanxp": 200.0,
}
HAT_DEFAULT_LAT_NORM = 200.0


def hat_lat_norm(sources) -> float | None:
    """HAT's ``lat-norm`` for a latency file of HAT's (matched by file name, e.g. ``wmt14ende_cpu_xeon_all.csv``);
    None when the files are not all from one HAT dataset."""
    from pathlib import Path
    keys = set()
    for s in sources:
        stem = Path(str(s)).stem
        stem = stem[:-4] if stem.endswith("_all") else stem
        keys.add(HAT_LAT_NORM.get(stem))
    return keys.pop() if len(keys) == 1 and None not in keys else None

# Ridge strengths tried by cost_linear (relative to the weighted normal equations, whose scale is n).
RIDGE_GRID = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64) if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def _standardize_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = X.mean(0)
    sd = X.std(0)
    sd = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(mu)), sd, 1.0)  # constant columns (e.g. 6 encoder layers)
    return mu, sd


def _mape(p, y) -> float:
    return float(np.mean(np.abs(p - y) / y))


class CostLinear:
    """Relative-error weighted ridge regression of latency on analytic cost terms (default model).

    Latency of a dense Transformer at batch 1 is close to linear in MACs, weight bytes and kernel counts, with
    device-specific coefficients; weighting rows by 1/latency fits relative error (what MAPE and the search's
    latency constraint care about). Ridge strength is chosen on the validation rows when given, else by exact
    leave-one-out. With ``init`` (few-shot transfer) the source device's predicted latency is an extra, unpenalized
    feature: with few target rows the ridge keeps "a * source + b", with more it learns the target's own costs.
    """

    kind = "cost_linear"

    def __init__(self):
        self.mu = self.sd = self.w = None
        self.source = None  # few-shot transfer: the source device's model; its prediction is one more feature
        self.scale = 1.0
        self.floor_ms = 0.0
        self.ridge = 0.0

    def _design(self, X):
        cols = [(X - self.mu) / self.sd]
        if self.source is not None:
            cols.append(self.source.predict(X)[:, None] / self.scale)
        cols.append(np.ones((len(X), 1)))
        return np.concatenate(cols, axis=1)

    def fit(self, X, y, X_val=None, y_val=None, seed: int = 0, init: "CostLinear | None" = None) -> "CostLinear":
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64)
        if init is not None and init.mu.shape != (X.shape[1],):
            raise HatError(f"--init predictor has {init.mu.shape[0]} features, this data has {X.shape[1]}")
        self.source = init
        self.mu, self.sd = _standardize_stats(X)
        self.scale = float(np.exp(np.mean(np.log(y))))
        self.floor_ms = float(0.1 * y.min())
        A = self._design(X)
        t = y / self.scale
        B = A / t[:, None]  # row i scaled by 1/t_i: residual = relative error
        d = A.shape[1]
        # Penalize the cost-term coefficients only: the intercept (and, in transfer, the source device's
        # prediction) stay free, so a strong ridge falls back to "target = a * source + b".
        P = np.diag(np.r_[np.ones(X.shape[1]), np.zeros(d - X.shape[1])])
        G = B.T @ B
        rhs = B.T @ np.ones(len(y))
        n = len(y)
        best = None
        for lam in RIDGE_GRID:
            M = G + lam * n * P
            try:
                Minv = np.linalg.inv(M)
            except np.linalg.LinAlgError:
                continue
            w = Minv @ rhs
            if X_val is not None and y_val is not None and len(y_val) >= 5:
                self.w = w
                score = _mape(self.predict(X_val), np.asarray(y_val, np.float64))
            else:
                # exact leave-one-out relative residuals of (weighted) ridge: r_i / (1 - H_ii)
                r = B @ w - 1.0
                h = np.einsum("ij,jk,ik->i", B, Minv, B)
                score = float(np.mean(np.abs(r / np.maximum(1.0 - h, 1e-6))))
            if np.isfinite(score) and (best is None or score < best[0]):
                best = (score, lam, w)
        if best is None:
            raise HatError("cost_linear: could not fit (singular features)")
        _, self.ridge, self.w = best
        return self

    def predict(self, X) -> np.ndarray:
        p = self._design(np.asarray(X, np.float64)) @ self.w * self.scale
        # A linear model can go negative far outside the data; latency cannot.
        return np.maximum(p, self.floor_ms)

    def state(self) -> dict:
        return {"mu": _t(self.mu), "sd": _t(self.sd), "w": _t(self.w), "scale": self.scale,
                "floor_ms": self.floor_ms, "ridge": float(self.ridge),
                "source": self.source.state() if self.source is not None else {}}

    @classmethod
    def from_state(cls, s: dict) -> "CostLinear":
        m = cls()
        m.mu, m.sd, m.w = _np(s["mu"]), _np(s["sd"]), _np(s["w"])
        m.scale, m.floor_ms, m.ridge = float(s["scale"]), float(s["floor_ms"]), float(s["ridge"])
        m.source = cls.from_state(s["source"]) if s.get("source") else None
        return m


def _mlp(d_in: int, width: int, depth: int) -> torch.nn.Sequential:
    layers, d = [], d_in
    for _ in range(depth):
        layers += [torch.nn.Linear(d, width), torch.nn.ReLU()]
        d = width
    layers.append(torch.nn.Linear(d, 1))
    return torch.nn.Sequential(*layers)


def _net_state(net: torch.nn.Sequential) -> list:
    return [{"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()}
            for m in net if isinstance(m, torch.nn.Linear)]


def _load_net(net: torch.nn.Sequential, layers: list) -> None:
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for m, s in zip(lin, layers):
            m.weight.copy_(s["weight"])
            m.bias.copy_(s["bias"])


def _np_forward(layers: list, Z: np.ndarray) -> np.ndarray:
    h = Z
    for i, s in enumerate(layers):
        h = h @ s["w"].T + s["b"]
        if i < len(layers) - 1:
            np.maximum(h, 0.0, out=h)
    return h[:, 0]


class HatMLP:
    """HAT's latency predictor (``latency_predictor.py`` of HAT's repository) with HAT's protocol.

    Same as HAT: the 10 features divided by HAT's fixed ``feature-norm``; latency (encoder + decoder, ms) divided by
    a fixed ``lat-norm`` (HAT's per-device constant, :data:`HAT_LAT_NORM`: 5000 for the Raspberry Pi, 300 for the
    Xeon, 200 for the TITAN Xp); ``Linear(10, 400)`` + ``hidden_layer_num`` = 3 ``Linear(400, 400)``, ReLU after
    each, then ``Linear(400, 1)`` (PyTorch's default init); MSE loss; Adam lr 1e-5 (default betas); 5,000 steps,
    each on ``bsz`` = 128 rows drawn without replacement (``random.sample``, as HAT does) from the training rows;
    the last step is kept (HAT's validation loss is printed, never used).

    Remaining deviations from HAT:

    - ``lat_norm=None`` (the default when the data is not one of HAT's datasets): the max training latency. HAT has
      no constant for devices it never measured; its argparse default, 200 ms, would put a Raspberry Pi's seconds at
      25x the targets HAT's constant gives. Its effect on HAT's data is measured in docs/benchmarks.md ("HAT's MLP:
      the two former deviations"), as is ``sampling="with_replacement"``.
    - fewer training rows than ``bsz``: batches of all rows (HAT's ``random.sample`` would raise).
    - the random streams: an injected ``random.Random(seed)`` for batches and ``torch.manual_seed(seed)`` for the
      init, where HAT uses the unseeded global generators.
    - prediction in float64 numpy on the float32 weights (HAT: float32 torch); differences ~1e-7 relative.
    - ``sampling="with_replacement"`` reproduces this project's earlier (non-HAT) batches, to measure that effect.
    """

    kind = "hat_mlp"

    def __init__(self, hidden_dim: int = HAT_MLP_HPARAMS["hidden_dim"],
                 hidden_layer_num: int = HAT_MLP_HPARAMS["hidden_layer_num"], lr: float = HAT_MLP_HPARAMS["lr"],
                 train_steps: int = HAT_MLP_HPARAMS["train_steps"], bsz: int = HAT_MLP_HPARAMS["bsz"],
                 feature_norm=HAT_FEATURE_NORM, lat_norm: float | None = None,
                 sampling: str = "without_replacement"):
        if sampling not in ("without_replacement", "with_replacement"):
            raise HatError(f"hat_mlp: sampling must be without_replacement or with_replacement, got '{sampling}'")
        self.hidden_dim, self.hidden_layer_num, self.lr = hidden_dim, hidden_layer_num, lr
        self.train_steps, self.bsz, self.sampling = train_steps, bsz, sampling
        self.feature_norm = np.array(feature_norm, dtype=np.float64)
        self.lat_norm_option = lat_norm
        self.lat_norm = float(lat_norm) if lat_norm is not None else None
        self.net_layers = None

    def fit(self, X, y, X_val=None, y_val=None, seed: int = 0, init: "HatMLP | None" = None) -> "HatMLP":
        X = np.asarray(X, np.float64)[:, :10]
        y = np.asarray(y, np.float64)
        rng = random.Random(seed)
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # nn.Linear init draws from the global generator; seed it for reproducibility
        # HAT's Net: first_layer + hidden_layer_num hidden layers, ReLU after each, then the output layer.
        net = _mlp(10, self.hidden_dim, self.hidden_layer_num + 1)
        if init is not None:
            _load_net(net, init.net_layers_t)
            self.lat_norm, self.feature_norm = init.lat_norm, init.feature_norm
        elif self.lat_norm_option is None:
            self.lat_norm = float(y.max())
        Xt = torch.tensor(X / self.feature_norm, dtype=torch.float32)
        yt = torch.tensor(y / self.lat_norm, dtype=torch.float32)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        n, k = len(Xt), min(self.bsz, len(Xt))
        for _ in range(self.train_steps):
            if self.sampling == "without_replacement":
                i = torch.tensor(rng.sample(range(n), k=k))
            else:
                i = torch.randint(0, n, (self.bsz,), generator=g)
            loss = torch.nn.functional.mse_loss(net(Xt[i]).squeeze(1), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self._set_layers(_net_state(net))
        return self

    def _set_layers(self, layers):
        self.net_layers_t = layers
        self.net_layers = [{"w": _np(s["weight"]), "b": _np(s["bias"])} for s in layers]

    def predict(self, X) -> np.ndarray:
        Z = np.asarray(X, np.float64)[:, :10] / self.feature_norm
        return _np_forward(self.net_layers, Z) * self.lat_norm

    def state(self) -> dict:
        return {"feature_norm": _t(self.feature_norm), "lat_norm": self.lat_norm, "layers": self.net_layers_t,
                "hidden_dim": self.hidden_dim, "hidden_layer_num": self.hidden_layer_num}

    @classmethod
    def from_state(cls, s: dict) -> "HatMLP":
        # artifacts before HAT's names stored "hidden" and "depth" (= hidden_layer_num + 1)
        hidden = int(s.get("hidden_dim", s.get("hidden", 400)))
        layers = int(s["hidden_layer_num"]) if "hidden_layer_num" in s else int(s["depth"]) - 1
        if not s.get("layers"):
            raise HatError("hat_mlp artifact has no layers")
        m = cls(hidden_dim=hidden, hidden_layer_num=layers, lat_norm=float(s["lat_norm"]))
        m.feature_norm = _np(s["feature_norm"])
        m._set_layers(s["layers"])
        return m


class MLPEnsemble:
    """Our MLP: standardized features, log-latency target, AdamW + cosine decay, early stopping on validation
    MAPE, an ensemble averaged in log space. Slower to fit than :class:`CostLinear` and, measured on HAT's data,
    not more accurate (see docs/benchmarks.md); kept for devices where latency is far from linear in cost."""

    kind = "mlp"

    def __init__(self, width: int = 128, depth: int = 3, steps: int = 3000, lr: float = 3e-3, weight_decay: float = 1e-4,
                 batch: int = 128, ensemble: int = 3):
        self.width, self.depth, self.steps, self.lr, self.wd = width, depth, steps, lr, weight_decay
        self.batch, self.ensemble = batch, ensemble
        self.mu = self.sd = None
        self.tm, self.ts = 0.0, 1.0
        self.members = []  # list of layer lists (tensors)

    def fit(self, X, y, X_val=None, y_val=None, seed: int = 0, init: "MLPEnsemble | None" = None) -> "MLPEnsemble":
        X = np.asarray(X, np.float64)
        y = np.asarray(y, np.float64)
        if init is not None:
            self.mu, self.sd, self.tm, self.ts = init.mu, init.sd, init.tm, init.ts
            self.width, self.depth, self.ensemble = init.width, init.depth, len(init.members)
        else:
            self.mu, self.sd = _standardize_stats(X)
            t = np.log(y)
            self.tm, self.ts = float(t.mean()), float(t.std() or 1.0)
        has_val = X_val is not None and y_val is not None and len(y_val) >= 5
        Xt = torch.tensor((X - self.mu) / self.sd, dtype=torch.float32)
        yt = torch.tensor((np.log(y) - self.tm) / self.ts, dtype=torch.float32)
        Xv = torch.tensor((np.asarray(X_val, np.float64) - self.mu) / self.sd, dtype=torch.float32) if has_val else None
        steps = self.steps if init is None else max(200, self.steps // 5)
        lr = self.lr if init is None else self.lr / 10
        self.members = []
        for k in range(self.ensemble):
            g = torch.Generator().manual_seed(seed * 1000 + k)
            torch.manual_seed(seed * 1000 + k)
            net = _mlp(X.shape[1], self.width, self.depth)
            if init is not None:
                _load_net(net, init.members[k])
            opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=self.wd)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            best = (np.inf, _net_state(net))
            for s in range(steps):
                i = torch.randint(0, len(Xt), (min(self.batch, len(Xt)),), generator=g)
                loss = torch.nn.functional.mse_loss(net(Xt[i]).squeeze(1), yt[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if has_val and (s % 100 == 99 or s == steps - 1):
                    with torch.no_grad():
                        pv = np.exp(net(Xv).squeeze(1).numpy().astype(np.float64) * self.ts + self.tm)
                    m = _mape(pv, np.asarray(y_val, np.float64))
                    if m < best[0]:
                        best = (m, _net_state(net))
            self.members.append(best[1] if has_val else _net_state(net))
        self._cache()
        return self

    def _cache(self):
        self._np_members = [[{"w": _np(s["weight"]), "b": _np(s["bias"])} for s in m] for m in self.members]

    def predict(self, X) -> np.ndarray:
        Z = (np.asarray(X, np.float64) - self.mu) / self.sd
        logs = np.mean([_np_forward(m, Z) for m in self._np_members], axis=0)
        return np.exp(logs * self.ts + self.tm)

    def state(self) -> dict:
        return {"mu": _t(self.mu), "sd": _t(self.sd), "tm": self.tm, "ts": self.ts, "members": self.members,
                "width": self.width, "depth": self.depth}

    @classmethod
    def from_state(cls, s: dict) -> "MLPEnsemble":
        m = cls(width=int(s["width"]), depth=int(s["depth"]), ensemble=len(s["members"]))
        m.mu, m.sd, m.tm, m.ts = _np(s["mu"]), _np(s["sd"]), float(s["tm"]), float(s["ts"])
        m.members = s["members"]
        m._cache()
        return m


# name -> model class. The contract (tests/predictor/test_models.py runs it on every member): a ``kind`` attribute
# equal to its name, a constructor whose keyword options all have defaults, ``fit(X, y, X_val=None, y_val=None,
# seed=0, init=None) -> self`` (``init``: a fitted model to start from), ``predict(X) -> ndarray`` of positive
# latencies, ``state() -> dict`` that torch saves with weights_only, and the classmethod ``from_state(state)``.
MODELS: Registry = Registry("predictor model")
register_predictor_model = make_register(MODELS)
for _cls in (CostLinear, HatMLP, MLPEnsemble):
    register_predictor_model(_cls.kind, _cls)
DEFAULT_MODEL = "cost_linear"  # chosen on validation MAPE of HAT's four datasets (docs/benchmarks.md)


def model_kinds() -> list[str]:
    """The registered predictor model names (built-ins first)."""
    return MODELS.names()


def make_model(kind: str, **options):
    """A fresh, unfitted model of ``kind`` (one of :func:`model_kinds`); ``options`` go to its constructor
    (e.g. ``steps=200`` for a quick MLP)."""
    if kind not in MODELS:
        raise HatError(f"unknown predictor model '{kind}'; choose one of {', '.join(model_kinds())}")
    try:
        return MODELS.get(kind)(**options)
    except TypeError as e:
        raise HatError(f"bad options for predictor model '{kind}': {e}") from None


def default_feature_kind(model_kind: str, have_subnets: bool) -> str:
    """HAT's MLP uses its 10 features; others use cost terms, plus per-layer genes when subnets are known."""
    if model_kind == "hat_mlp":
        return "hat10"
    return "layers" if have_subnets else "hat10_cost"
