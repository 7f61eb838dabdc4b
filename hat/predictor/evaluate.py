"""Evaluate a fitted latency predictor on measured latency CSVs (``hat-predictor eval``, the quickstart)."""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np

from hat.errors import HatError
from hat.io import atomic_write_json


def read_latency_csvs(paths: Sequence[str | os.PathLike]) -> list:
    """The :class:`hat.latency.records.LatencyRecord` rows of several latency CSVs, in file order."""
    from hat.latency.records import read_latency_csv
    recs = []
    for p in paths:
        recs.extend(read_latency_csv(p))
    return recs


def evaluate_predictor(predictor: str | os.PathLike, data: Sequence[str | os.PathLike], report: str | os.PathLike,
                       plot: Optional[str | os.PathLike] = None, warn: Optional[Callable[[str], None]] = None) -> dict:
    """Predict the rows of ``data`` with the predictor file ``predictor``, write the metrics to ``report`` (JSON)
    and, with ``plot``, a predicted-vs-measured scatter (PNG).

    Args:
        predictor: a saved :class:`hat.predictor.LatencyPredictor` (``.pt``).
        data: latency CSV(s).
        report: JSON file to write.
        plot: PNG file to write, or None.
        warn: gets one line when the rows were measured on another device (default ``warnings.warn``).

    Returns:
        The report: :func:`hat.predictor.regression_metrics` plus what was evaluated.
    """
    from hat.predictor.metrics import regression_metrics
    from hat.predictor.predictor import load_predictor
    pred = load_predictor(predictor)
    recs = read_latency_csvs(data)
    check_rows_fit(pred, recs, warn)
    p = pred.predict_records(recs)
    y = np.array([r.latency_ms for r in recs])
    m = regression_metrics(p, y)
    out = {**m, "predictor": str(predictor), "device": pred.device, "space": pred.space_name,
           "model": pred.model_kind, "features": pred.feature_kind, "data": [str(d) for d in data]}
    atomic_write_json(report, out)
    if plot:
        from hat.predictor.plots import plot_scatter
        plot_scatter(y, p, plot, f"{pred.device}: MAPE {m['mape']:.3f}, tau {m['kendall_tau']:.3f}")
    return out


def check_rows_fit(pred, records, warn: Optional[Callable[[str], None]] = None) -> None:
    """Refuse rows outside the predictor's space (it would extrapolate: a Xeon/WMT predictor on Multi30k rows), and
    warn in one line when they were measured on another device.

    Raises:
        HatError: a row's SubTransformer is outside the predictor's space (and its widened version).
    """
    import warnings
    space, wide = pred.space, pred.space.widened()
    for r in records:
        if r.subnet is not None and not (space.contains(r.subnet) or wide.contains(r.subnet)):
            raise HatError(f"a data row is outside the predictor's space '{space.name}' "
                           f"({space.violations(r.subnet)[0]}): it was fit for another space")
    devices = sorted({r.device for r in records if r.device} - {pred.device})
    if devices:
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(
            f"rows measured on {', '.join(devices)}, but the predictor was fit for device '{pred.device}'")


def write_cv_report(pred, predictor: str | os.PathLike, data: Sequence[str | os.PathLike],
                    report: Optional[str | os.PathLike] = None, plot: Optional[str | os.PathLike] = None) -> dict:
    """Write a fitted predictor's cross-validated (held-out) metrics and predictions to ``report`` (JSON) and, when
    it has them, their scatter to ``plot`` (PNG).

    Args:
        pred: the predictor :func:`hat.predictor.fit_predictor` returned.
        predictor: the file it was saved to (recorded in the report).
        data: the latency CSV(s) it was fit on.
        report: JSON file to write, or None.
        plot: PNG file to write, or None (nothing is plotted without cross-validated predictions).

    Returns:
        The report (``cv`` holds the out-of-fold rows).
    """
    m = pred.heldout_metrics
    out = {"metrics_split": pred.metrics_split, **(m or {}), "predictor": str(predictor), "device": pred.device,
           "space": pred.space_name, "model": pred.model_kind, "features": pred.feature_kind,
           "data": [str(d) for d in data], "cv": pred.cv}
    if report:
        atomic_write_json(report, out)
    if plot and pred.cv:
        from hat.predictor.plots import plot_scatter
        plot_scatter(pred.cv["measured_ms"], pred.cv["predicted_ms"], plot,
                     f"{pred.device}, {pred.metrics_split}: MAPE {m['mape']:.3f}, tau {m['kendall_tau']:.3f}")
    return out
