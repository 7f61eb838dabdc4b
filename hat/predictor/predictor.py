"""The latency predictor artifact: fit, save, load, predict.

Artifact (one file, ``torch.save`` of plain containers, loads with ``torch.load(weights_only=True)``)::

    {"format": "hat-latency-predictor", "version": 1, "model_kind": str, "model": {...tensors/floats/lists},
     "feature_schema": {...}, "device": str, "space": space.to_dict(), "space_fingerprint": str,
     "space_name": str, "metrics": {"train": {...}, "val": {...}, "cv": {...}}, "train": {...}, "target": str,
     "cv": {"folds": int, "seed": int, "measured_ms": [...], "predicted_ms": [...]}}

Honest metrics: ``metrics["cv"]`` (and ``train["metrics_split"] == "cv<k>"``) come from k-fold cross-validation of
the whole fit procedure: each row is predicted by a model fit on the other folds, with every choice (validation
split, ridge strength, early stopping) made inside those folds. ``metrics["train"]`` is in-sample and
``metrics["val"]`` is on the rows the fit used to choose its hyperparameters: neither is a held-out estimate.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from hat.errors import HatError
from hat.predictor.features import FeatureSchema
from hat.predictor.metrics import regression_metrics
from hat.predictor.models import DEFAULT_MODEL, MODELS, default_feature_kind, hat_lat_norm, make_model
from hat.space import SearchSpace, SubnetConfig

FORMAT = "hat-latency-predictor"
VERSION = 1


def cv_fold_indices(n: int, folds: int, seed: int) -> list[list[int]]:
    """K-fold test indices: ``range(n)`` shuffled with ``random.Random(seed)``, fold j = positions j, j+k, j+2k, ..."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    k = max(1, min(folds, n))
    return [idx[j::k] for j in range(k)]


def split_indices(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[list[int], list[int], list[int]]:
    """Shuffle ``range(n)`` with ``random.Random(seed)`` and cut it into train / val / test by ``fractions``."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return idx[:a], idx[a:b], idx[b:]


class LatencyPredictor:
    """A fitted latency model for one device and search space.

    Attributes:
        model_kind: ``cost_linear``, ``hat_mlp`` or ``mlp``.
        schema: the :class:`FeatureSchema` (``feature_kind`` = ``schema.kind``).
        device: name of the device the training latencies were measured on.
        space: the :class:`SearchSpace` it was fit for.
        metrics: accuracy recorded at fit time: ``train`` (in-sample), ``val`` (the rows used for model
            selection, when any), ``cv`` (out-of-fold: the honest estimate).
        cv: out-of-fold predictions behind ``metrics["cv"]`` (``folds``, ``seed``, ``measured_ms``,
            ``predicted_ms``), or ``{}``.
    """

    def __init__(self, model, schema: FeatureSchema, device: str, space: SearchSpace, metrics: Optional[dict] = None,
                 train: Optional[dict] = None, cv: Optional[dict] = None):
        self.model = model
        self.model_kind = model.kind
        self.schema = schema
        self.device = device
        self.space = space
        self.metrics = metrics or {}
        self.train = train or {}
        self.cv = cv or {}

    @property
    def metrics_split(self) -> str:
        """Which rows the reported metrics come from: ``cv<k>`` (out-of-fold) or ``none`` (too few rows)."""
        return self.train.get("metrics_split", "none")

    @property
    def heldout_metrics(self) -> Optional[dict]:
        """The honest (out-of-fold) metrics, or None when there were too few rows to hold any out."""
        return self.metrics.get("cv")

    @property
    def space_fingerprint(self) -> str:
        return self.space.fingerprint()

    @property
    def space_name(self) -> str:
        return self.space.name

    @property
    def feature_kind(self) -> str:
        return self.schema.kind

    def check_space(self, space: SearchSpace) -> None:
        """Raise HatError unless ``space`` has the choices this predictor was fit for (names may differ)."""
        if space.fingerprint() != self.space_fingerprint:
            raise HatError(f"latency predictor for device '{self.device}' was fit for search space "
                           f"'{self.space_name}' ({self.space_fingerprint}), not '{space.name}' "
                           f"({space.fingerprint()}); fit one for this space with hat-predictor fit")

    def predict_ms(self, configs: Sequence[SubnetConfig]) -> np.ndarray:
        """Predicted latency (ms, encoder + decoder of one sentence) of each config, batched; shape [N]."""
        if len(configs) == 0:
            return np.zeros(0)
        return self.model.predict(self.schema.from_configs(configs))

    def predict_records(self, records) -> np.ndarray:
        """Predicted ms for :class:`~hat.latency.records.LatencyRecord` s (HAT files: from their 10 features)."""
        return self.model.predict(self.schema.from_records(records))

    def evaluate(self, records) -> dict:
        """:func:`regression_metrics` of this predictor on measured ``records``."""
        return regression_metrics(self.predict_records(records), np.array([r.latency_ms for r in records]))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, "model_kind": self.model_kind, "model": self.model.state(),
            "feature_schema": self.schema.to_dict(), "device": self.device, "space": self.space.to_dict(),
            "space_fingerprint": self.space_fingerprint, "space_name": self.space_name, "metrics": self.metrics,
            "train": self.train, "target": "latency_ms = latency_mean_encoder + latency_mean_decoder",
            "cv": self.cv,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the artifact atomically (temp file + ``os.replace``)."""
        from hat.io import save_torch
        save_torch(self.to_dict(), path)


def load_predictor(path: str | os.PathLike) -> LatencyPredictor:
    """Load an artifact written by :meth:`LatencyPredictor.save` (``weights_only=True``: no code runs).

    Raises:
        HatError: missing file, not a predictor artifact, or an unsupported version / model kind.
    """
    p = Path(path)
    if not p.is_file():
        raise HatError(f"{p}: no such predictor file")
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not our artifact"
        from hat.checkpoints import describe_load_error
        raise HatError(f"{p}: not a latency predictor artifact ({describe_load_error(e)})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise HatError(f"{p}: not a latency predictor artifact (format is not '{FORMAT}')")
    if d.get("version") != VERSION:
        raise HatError(f"{p}: predictor artifact version {d.get('version')} is not supported (expected {VERSION})")
    kind = d.get("model_kind")
    if kind not in MODELS:
        raise HatError(f"{p}: unknown predictor model kind '{kind}'")
    try:
        space = SearchSpace(**d["space"])
        pred = LatencyPredictor(MODELS.get(kind).from_state(d["model"]), FeatureSchema.from_dict(d["feature_schema"]),
                                d["device"], space, d.get("metrics"), d.get("train"), d.get("cv"))
    except HatError as e:
        raise HatError(f"{p}: malformed predictor artifact: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise HatError(f"{p}: malformed predictor artifact ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:200]})") from None
    if d.get("space_fingerprint") and d["space_fingerprint"] != space.fingerprint():
        raise HatError(f"{p}: space fingerprint mismatch (file corrupted or edited)")
    check_artifact(pred, d["model"], str(p))
    return pred


def check_artifact(pred: "LatencyPredictor", state, where: str) -> None:
    """Refuse a predictor that cannot be trusted before it steers a search: every stored number finite, weights
    that fit its features, finite positive predictions for its own space's smallest and largest SubTransformers and
    a few sampled ones, not all the same.

    Raises:
        HatError: one line naming the problem.
    """
    import random
    bad = _first_nonfinite(state)
    if bad is not None:
        raise HatError(f"{where}: the predictor's weights hold {bad} (not finite): refused")
    space = pred.space
    configs = [space.smallest(), space.largest()] + [space.sample(random.Random(i)) for i in range(8)]
    try:
        ms = np.asarray(pred.predict_ms(configs), dtype=np.float64)
    except (ValueError, RuntimeError, IndexError, TypeError, KeyError) as e:
        raise HatError(f"{where}: the predictor's weights do not fit its features ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:120]})") from None
    if ms.shape != (len(configs),) or not np.all(np.isfinite(ms)) or np.any(ms <= 0):
        worst = next((m for m in ms.ravel() if not (np.isfinite(m) and m > 0)), ms.ravel()[:1])
        raise HatError(f"{where}: the predictor predicts {float(np.asarray(worst).ravel()[0]):.4g} ms for a "
                       f"SubTransformer of its own space '{space.name}' (latencies are positive): refused")
    if np.ptp(ms) <= 1e-9 * ms.max():
        raise HatError(f"{where}: the predictor predicts {ms[0]:.4g} ms for every SubTransformer it was checked on "
                       f"(space '{space.name}', smallest and largest included): it cannot rank them, refused")


def _first_nonfinite(x):
    """The first non-finite number in a nested state (tensors, arrays, lists, dicts), or None."""
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        for v in x:
            bad = _first_nonfinite(v)
            if bad is not None:
                return bad
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, (np.ndarray, float, np.floating)):
        arr = np.asarray(x, dtype=np.float64) if np.asarray(x).dtype.kind in "fiu" else None
        if arr is not None and not np.all(np.isfinite(arr)):
            return float(arr[~np.isfinite(arr)].ravel()[0])
    return None


def fit_predictor(records, device: str, space: SearchSpace, model_kind: str = DEFAULT_MODEL, seed: int = 0,
                  init: Optional[LatencyPredictor] = None, feature_kind: Optional[str] = None,
                  val_records=None, val_fraction: float = 0.1, min_val: int = 10, sources: Sequence[str] = (),
                  model_options: Optional[dict] = None, cv_folds: int = 5) -> LatencyPredictor:
    """Fit a latency predictor on measured records.

    Args:
        records: :class:`~hat.latency.records.LatencyRecord` list (HAT's files or ours).
        device: device name stored in the artifact.
        space: search space the predictor serves (HAT's files were sampled from a slightly wider space: fine).
        model_kind: one of :func:`hat.predictor.models.model_kinds`.
        seed: seeds the train/val split and the model's initialization.
        init: few-shot transfer: start from (and regularize towards) this predictor of another device; its model
            kind and features are reused.
        feature_kind: override the feature kind (default: per model, ``layers`` when every row has a subnet).
        val_records: explicit validation rows; else ``val_fraction`` of ``records`` is held out when at least
            ``min_val`` rows would be (fewer rows: all are used for training, model selection by leave-one-out).
        sources: data file names recorded in the artifact.
        model_options: constructor options of the model (e.g. ``{"train_steps": 200}``); for ``hat_mlp`` on one of
            HAT's files (by name, see ``sources``), HAT's ``lat-norm`` for that device unless given.
        cv_folds: k of the k-fold cross-validation behind ``metrics["cv"]`` (each fold repeats this whole
            procedure on the other folds' rows); 0 or 1 = none (e.g. when the caller evaluates on its own test rows).
    """
    records = list(records)
    if not records:
        raise HatError("no latency rows to fit")
    if init is not None:
        init.check_space(space)
        model_kind, schema = init.model_kind, init.schema
        if schema.needs_subnet and any(r.subnet is None for r in records):
            raise HatError("--init predictor uses per-layer features but the data has no 'subnet' column")
    else:
        have_subnets = all(r.subnet is not None for r in records)
        schema = FeatureSchema.for_space(feature_kind or default_feature_kind(model_kind, have_subnets), space)
    options = dict(model_options or {})
    if model_kind == "hat_mlp" and init is None and "lat_norm" not in options:
        options["lat_norm"] = hat_lat_norm(sources)
    model = make_model(model_kind, **options)
    all_records = records
    train = records
    if val_records is None:
        n_val = int(round(val_fraction * len(records)))
        if n_val >= min_val:
            tr, va, _ = split_indices(len(records), seed, (1.0 - val_fraction, val_fraction, 0.0))
            train, val_records = [records[i] for i in tr], [records[i] for i in va]
    X = schema.from_records(train)
    y = np.array([r.latency_ms for r in train])
    Xv = yv = None
    if val_records:
        Xv = schema.from_records(val_records)
        yv = np.array([r.latency_ms for r in val_records])
    model.fit(X, y, Xv, yv, seed=seed, init=init.model if init is not None else None)
    pred = LatencyPredictor(model, schema, device, space,
                            train={"n_train": len(train), "n_val": len(val_records or []), "seed": seed,
                                   "sources": list(sources), "init_device": init.device if init else ""})
    pred.metrics = {"train": regression_metrics(model.predict(X), y)}
    if val_records:
        pred.metrics["val"] = regression_metrics(model.predict(Xv), yv)
    pred.train["metrics_split"] = "none"
    if cv_folds >= 2 and len(all_records) >= 3:
        folds = cv_fold_indices(len(all_records), cv_folds, seed)
        oof = np.zeros(len(all_records))
        for test_idx in folds:
            held = set(test_idx)
            rest = [r for i, r in enumerate(all_records) if i not in held]
            fold_pred = fit_predictor(rest, device, space, model_kind, seed=seed, init=init,
                                      feature_kind=schema.kind if init is None else None, val_fraction=val_fraction,
                                      min_val=min_val, model_options=options, cv_folds=0)
            oof[test_idx] = fold_pred.predict_records([all_records[i] for i in test_idx])
        measured = np.array([r.latency_ms for r in all_records])
        pred.metrics["cv"] = regression_metrics(oof, measured)
        pred.train["metrics_split"] = f"cv{len(folds)}"
        pred.cv = {"folds": len(folds), "seed": seed, "measured_ms": measured.tolist(), "predicted_ms": oof.tolist()}
    return pred
