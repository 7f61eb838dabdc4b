"""The predictor registry, ``latency_predictors/index.yaml``: register a fitted predictor, resolve one for a search.

Each entry (``predictors:`` list) gives ``device``, ``space``, ``space_fingerprint``, ``path`` (relative to the
index), model and features, ``data`` (files with sha256), provenance (``source``: who measured the rows,
``runtime``: what ran them) and held-out metrics with ``metrics_split`` (``cv<k>``: k-fold out-of-fold predictions;
``none``: too few rows to hold any out, no metrics given).

Resolution (``hat-search --device D`` without ``--predictor``): among the entries for the device and the space's
fingerprint, a predictor measured by this project wins over one fit on HAT's published measurements; using HAT's
comes with a one-line note naming the command that profiles your own.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from hat.errors import HatError

OWN_SOURCE = "measured by this project (hat-profile)"
HAT_SOURCE = "HAT (Wang et al. 2020) published measurements"
HAT_SOURCE_URL = "https://github.com/mit-han-lab/hardware-aware-transformers (latency_dataset/, MIT licence)"


def default_index_path() -> Path:
    """``latency_predictors/index.yaml`` of the project (``HAT_HOME`` overrides the root)."""
    from hat.resources import project_root
    return project_root() / "latency_predictors" / "index.yaml"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance_of(records, source: Optional[str] = None, runtime: Optional[str] = None) -> dict:
    """``{source, runtime, hosts}`` for a registry entry; mandatory.

    Rows written by ``hat-profile`` carry their runtime and host; files without them (HAT's published CSVs) need
    ``source`` and ``runtime`` from the caller.

    Raises:
        HatError: provenance missing (rows without runtime/host and no ``source``/``runtime`` given).
    """
    runtimes = sorted({r.runtime for r in records if r.runtime})
    hosts = sorted({r.host for r in records if r.host})
    complete = all(r.runtime and r.host for r in records)
    if not complete and not (source and runtime):
        raise HatError("--register needs provenance: these rows lack the runtime/host columns (e.g. HAT's published "
                       "files), so pass --source 'WHO MEASURED THEM' and --runtime RUNTIME")
    out = {"source": source or OWN_SOURCE, "runtime": runtime or ",".join(runtimes)}
    if out["source"] == HAT_SOURCE:
        out["source_url"] = HAT_SOURCE_URL
    if hosts:
        out["hosts"] = hosts
    return out


def register_predictor(index_path: str | os.PathLike, predictor_path: str | os.PathLike, pred,
                       data: Sequence[str], provenance: dict) -> dict:
    """Add (or replace, by device + space fingerprint + source) the entry for ``pred`` in the index YAML.

    Metrics are the predictor's held-out ones (``pred.heldout_metrics``, ``metrics_split`` says which rows).

    Returns:
        The entry written.
    """
    from hat.config import dump_yaml, load_yaml
    idx = Path(index_path)
    d = load_yaml(idx) if idx.is_file() else {}
    source = provenance["source"]
    entries = [e for e in (d.get("predictors") or [])
               if not (e.get("device") == pred.device and e.get("space_fingerprint") == pred.space_fingerprint
                       and e.get("source", OWN_SOURCE) == source)]
    base = idx.parent.resolve()

    def rel(p):
        try:
            return os.path.relpath(Path(p).resolve(), base)
        except ValueError:
            return str(Path(p).resolve())
    entry = {
        "device": pred.device, "space": pred.space_name, "space_fingerprint": pred.space_fingerprint,
        "path": rel(predictor_path), "model": pred.model_kind, "features": pred.feature_kind,
        **provenance,
        # files inside the repository by relative path; others (HAT's files in ../shared) by name + sha256
        "data": [{"file": rel(p) if Path(p).resolve().is_relative_to(base.parent) else Path(p).name,
                  "sha256": sha256_file(p)} for p in data],
        "n_rows": int(pred.train.get("n_train", 0)) + int(pred.train.get("n_val", 0)),
        "metrics_split": pred.metrics_split,
    }
    held = pred.heldout_metrics
    if held:
        entry.update(mape=round(float(held["mape"]), 5), kendall_tau=round(float(held["kendall_tau"]), 4),
                     acc10=round(float(held["acc10"]), 4), rmse_ms=round(float(held["rmse_ms"]), 3))
    entry["fitted"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries.append(entry)
    d["predictors"] = entries
    dump_yaml(d, idx)
    return entry


def read_index(index_path: str | os.PathLike | None = None) -> list[dict]:
    """The entries of the index (``[]`` when there is no index file)."""
    from hat.config import load_yaml
    index = Path(index_path) if index_path else default_index_path()
    if not index.is_file():
        return []
    data = load_yaml(index) or {}
    entries = data.get("predictors", data)
    if isinstance(entries, dict):  # older layout: a mapping of name -> entry
        entries = [dict(v, name=k) if isinstance(v, dict) else {} for k, v in entries.items()]
    if not isinstance(entries, list):
        raise HatError(f"{index}: expected a 'predictors' list")
    return [e for e in entries if isinstance(e, dict)]


@dataclass
class ResolvedPredictor:
    """A registry entry chosen for a device and space: the file, its entry, and a note for the user (or '')."""

    path: Path
    entry: dict
    note: str = ""


def is_hat_published(entry: dict) -> bool:
    return str(entry.get("source", "")).startswith("HAT ")


def resolve_predictor(device: str, space, index_path: str | os.PathLike | None = None) -> ResolvedPredictor:
    """The registered predictor for ``device`` and ``space`` (matched by space fingerprint, else by space name when
    the entry has no fingerprint); our own measurements win over HAT's published ones.

    Raises:
        HatError: no index, or no entry for this device and space.
    """
    index = Path(index_path) if index_path else default_index_path()
    if not index.is_file():
        raise HatError(f"no --predictor given and no predictor index {index}; fit one with hat-predictor fit "
                       f"and pass --predictor")
    entries = read_index(index)
    fp = space.fingerprint()
    matches = []
    for e in entries:
        if e.get("device") != device or "path" not in e:
            continue
        efp = e.get("space_fingerprint")
        if (efp is not None and efp == fp) or (efp is None and e.get("space") == space.name):
            matches.append(e)
    if not matches:
        have = sorted({f"{e.get('device')}/{e.get('space')}" for e in entries})
        raise HatError(f"no latency predictor for device '{device}' and space '{space.name}' ({fp}) in {index} "
                       f"(have: {', '.join(have) or 'none'}); pass --predictor")
    own = [e for e in matches if not is_hat_published(e)]
    e = (own or matches)[-1]
    note = ""
    if not own:
        note = (f"using HAT's published {e.get('runtime', '')} measurements for device '{device}' on space "
                f"'{space.name}' (no predictor measured by this project); profile your own with: hat-profile "
                f"--space {space.name} --device {device} --samples 300 --out lat_{device}.csv && hat-predictor fit "
                f"--data lat_{device}.csv --device {device} --space {space.name} --out {device}.pt --register")
    return ResolvedPredictor((index.parent / str(e["path"])).resolve(), e, note)
