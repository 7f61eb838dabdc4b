"""Locating the project's shipped configs and predictor artifacts.

``configs/`` and ``latency_predictors/`` live at the repository root (hat is installed editable, as the README says).
``HAT_HOME`` overrides that root.
"""

from __future__ import annotations

import os
from pathlib import Path

from hat.errors import ConfigError


def project_root() -> Path:
    """The directory holding ``configs/`` and ``latency_predictors/``."""
    env = os.environ.get("HAT_HOME")
    return Path(env) if env else Path(__file__).resolve().parents[1]


def resolve_config(kind: str, name_or_path: str | os.PathLike) -> Path:
    """Resolve ``name_or_path`` to a YAML file: an existing path wins, else ``configs/<kind>/<name>.yaml``.

    Raises:
        ConfigError: neither exists; the message lists the shipped names.
    """
    p = Path(name_or_path)
    if p.is_file():
        return p
    d = project_root() / "configs" / kind
    for cand in (d / f"{name_or_path}.yaml", d / str(name_or_path)):
        if cand.is_file():
            return cand
    known = sorted(f.stem for f in d.glob("*.yaml")) if d.is_dir() else []
    raise ConfigError(f"unknown {kind.rstrip('s')} '{name_or_path}': not a file, and not one of: {', '.join(known) or '(none)'}")
