"""Predicted-vs-measured latency scatter plots (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

import os

import numpy as np

from hat.io import atomic_path


def plot_scatter(measured_ms, predicted_ms, path: str | os.PathLike, title: str) -> None:
    """Scatter of predicted vs measured latency (ms) with the y = x line, written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    y = np.asarray(measured_ms, dtype=np.float64)
    p = np.asarray(predicted_ms, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y, p, s=6, alpha=0.6)
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:  # atomic: a killed run never leaves a half-written PNG
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
