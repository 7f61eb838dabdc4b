"""Accuracy metrics of latency predictions (all in ms, numpy only)."""

from __future__ import annotations

import numpy as np


def kendall_tau(x, y) -> float:
    """Kendall's tau-b rank correlation (ties handled), O(n^2) time in O(n) memory per row; fine for n <= 10^4.

    Returns 0.0 when either input is constant or has fewer than two elements.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"kendall_tau: shapes differ {x.shape} vs {y.shape}")
    n = len(x)
    s = 0.0  # concordant - discordant
    tx = ty = 0  # pairs not tied in x / in y
    for i in range(n - 1):
        dx = np.sign(x[i + 1:] - x[i])
        dy = np.sign(y[i + 1:] - y[i])
        s += float(np.dot(dx, dy))
        tx += int(np.count_nonzero(dx))
        ty += int(np.count_nonzero(dy))
    if tx == 0 or ty == 0:
        return 0.0
    return s / float(np.sqrt(float(tx) * float(ty)))


def regression_metrics(pred_ms, true_ms) -> dict:
    """``{n, rmse_ms, mape, acc10, kendall_tau}``; ``acc10`` = fraction of predictions within 10% of the truth."""
    p = np.asarray(pred_ms, dtype=np.float64).ravel()
    t = np.asarray(true_ms, dtype=np.float64).ravel()
    rel = np.abs(p - t) / t
    return {
        "n": int(len(t)),
        "rmse_ms": float(np.sqrt(np.mean((p - t) ** 2))),
        "mape": float(np.mean(rel)),
        "acc10": float(np.mean(rel <= 0.10)),
        "kendall_tau": kendall_tau(p, t),
    }
