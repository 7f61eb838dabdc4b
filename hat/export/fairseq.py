"""Export a uniform SubTransformer as a standard fairseq ``transformer`` checkpoint (thin wrapper over
:func:`hat.interop.fairseq.save_transformer` with a per-layer error message for non-uniform configs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from hat.errors import HatError
from hat.io import copy_file
from hat.space import DECODER_LAYER_GENES, ENCODER_LAYER_GENES


def nonuniform_layers(subnet) -> list[str]:
    """``gene=[v0, v1, ...]`` for each per-layer gene whose layers differ (empty = uniform)."""
    return [f"{g}={getattr(subnet, g)}" for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES
            if len(set(getattr(subnet, g))) > 1]


def export_fairseq(model, out_dir: str | os.PathLike, data_dir: Optional[str | os.PathLike] = None,
                   name: str = "checkpoint_best.pt") -> Path:
    """Write ``out_dir/name`` loadable by fairseq 0.12 (``fairseq-generate --path``), copying ``dict.*.txt``
    (and ``spm.model``) from ``data_dir`` next to it when given.

    Raises:
        HatError: the subnet differs across layers (names the genes and their per-layer values) or is otherwise
            not a fairseq transformer.
    """
    from hat.interop.fairseq import save_transformer

    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    diff = nonuniform_layers(model.subnet)
    if diff:
        raise HatError(f"fairseq's transformer needs identical layers, but layers differ: {'; '.join(diff)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src_dict = tgt_dict = None
    if data_dir is not None:
        dicts = sorted(Path(data_dir).glob("dict.*.txt"))
        for p in dicts + [p for p in [Path(data_dir) / "spm.model"] if p.is_file()]:
            copy_file(p, out / p.name)  # replaces a planted link in the output folder, never writes through it
        if len(dicts) == 2:
            src_dict, tgt_dict = out / dicts[0].name, out / dicts[1].name
    path = out / name
    save_transformer(model, path, src_dict_path=src_dict, tgt_dict_path=tgt_dict)
    return path
