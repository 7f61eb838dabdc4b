"""Output checks of exports against PyTorch (run by the export formats of :mod:`hat.export.formats`)."""

from __future__ import annotations

from pathlib import Path

from hat.optional import require


def compare_outputs(model, out_dir: Path, fmt: str) -> float:
    """Max abs difference of the export's first-step log-probabilities (its per-row candidates, 10 per row) against
    PyTorch's on a random batch (the same tokens gathered from both)."""
    import numpy as np
    import torch

    from hat.runtime import OnnxTranslator
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, model.cfg.src_vocab_size, (2, 6), generator=g)
    src[:, -1] = model.cfg.eos_idx
    if fmt == "tvm":
        from hat.export.tvm import TvmTranslator as T
    else:
        T = OnnxTranslator
    tr = T(out_dir, beam_size=1)
    state = tr.initial_state(tr.encode(src.numpy(), np.array([6, 6])), 1)
    vals, ids = tr.step_candidates(state, np.full((2, 1), model.cfg.eos_idx, np.int64), 0, None,
                                   np.zeros(model.cfg.tgt_vocab_size, np.float32), 10)
    with torch.no_grad():
        ref, _ = model(src, torch.tensor([6, 6]), torch.full((2, 1), model.cfg.eos_idx))
        lp = torch.log_softmax(ref[:, -1].float(), dim=-1).numpy()
    return float(np.abs(vals - np.take_along_axis(lp, ids, 1)).max())


def _ct2_batch(model):
    """A random batch (two sentences, four target tokens) for the CTranslate2 checks."""
    import torch
    g = torch.Generator().manual_seed(0)
    cfg = model.cfg
    return (torch.randint(4, cfg.src_vocab_size, (2, 5), generator=g),
            torch.randint(4, cfg.tgt_vocab_size, (2, 4), generator=g))


def _ct2_log_probs(out_dir: Path, src, tgt, compute_type: str = "default") -> list:
    """CTranslate2's per-token log-probabilities (``score_batch``: the targets, then EOS) of id batches."""
    import json

    import numpy as np
    ctranslate2 = require("ctranslate2", "the CTranslate2 export check", extra="ctranslate2")
    d = Path(out_dir)
    vocab = {}
    for side in ("source", "target"):
        f = d / f"{side}_vocabulary.json"
        vocab[side] = json.loads((f if f.is_file() else d / "shared_vocabulary.json").read_text(encoding="utf-8"))
    tr = ctranslate2.Translator(str(d), device="cpu", intra_threads=1, compute_type=compute_type)
    res = tr.score_batch([[vocab["source"][i] for i in row] for row in src.tolist()],
                         [[vocab["target"][i] for i in row] for row in tgt.tolist()])
    return [np.array(r.log_probs) for r in res]


def compare_ctranslate2(model, out_dir: Path) -> float:
    """Max abs difference of a CTranslate2 export's log-probabilities (``score_batch``) against PyTorch's on a
    random batch (two sentences, four target tokens and EOS)."""
    import numpy as np
    import torch
    cfg = model.cfg
    src, tgt = _ct2_batch(model)
    eos = torch.full((2, 1), cfg.eos_idx)
    with torch.no_grad():
        logits, _ = model(torch.cat([src, eos], 1), torch.tensor([6, 6]), torch.cat([eos, tgt], 1))
        lp = torch.log_softmax(logits.float(), -1)
    ours = lp.gather(2, torch.cat([tgt, eos], 1).unsqueeze(-1)).squeeze(-1).numpy()
    return float(max(np.abs(r - o).max() for r, o in zip(_ct2_log_probs(out_dir, src, tgt), ours)))


def compare_ctranslate2_quantized(model, out_dir: Path, float_dir: Path, quantization: str) -> float:
    """Max abs difference of a stored-``quantization`` CTranslate2 export's log-probabilities against its float32
    export (``float_dir``) quantized by CTranslate2 at load (``compute_type``): the same quantization, so they
    agree exactly when the weights reached the converter right. (Against PyTorch a quantized model differs by
    design, which hides a garbled export: measured 0.0 here for a right one and 3,037 for one whose strided
    weights the converter mis-read, on the fixture model.)"""
    import numpy as np
    src, tgt = _ct2_batch(model)
    stored, at_load = _ct2_log_probs(out_dir, src, tgt), _ct2_log_probs(float_dir, src, tgt, quantization)
    return float(max(np.abs(a - b).max() for a, b in zip(stored, at_load)))
