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


def compare_ctranslate2(model, out_dir: Path) -> float:
    """Max abs difference of a CTranslate2 export's log-probabilities (``score_batch``) against PyTorch's on a
    random batch (two sentences, four target tokens and EOS)."""
    import json

    import numpy as np
    import torch
    ctranslate2 = require("ctranslate2", "the CTranslate2 export check", extra="ctranslate2")
    d = Path(out_dir)
    vocab = {}
    for side in ("source", "target"):
        f = d / f"{side}_vocabulary.json"
        vocab[side] = json.loads((f if f.is_file() else d / "shared_vocabulary.json").read_text(encoding="utf-8"))
    g = torch.Generator().manual_seed(0)
    cfg = model.cfg
    src = torch.randint(4, cfg.src_vocab_size, (2, 5), generator=g)
    tgt = torch.randint(4, cfg.tgt_vocab_size, (2, 4), generator=g)
    tr = ctranslate2.Translator(str(d), device="cpu", intra_threads=1)
    res = tr.score_batch([[vocab["source"][i] for i in row] for row in src.tolist()],
                         [[vocab["target"][i] for i in row] for row in tgt.tolist()])
    eos = torch.full((2, 1), cfg.eos_idx)
    with torch.no_grad():
        logits, _ = model(torch.cat([src, eos], 1), torch.tensor([6, 6]), torch.cat([eos, tgt], 1))
        lp = torch.log_softmax(logits.float(), -1)
    ours = lp.gather(2, torch.cat([tgt, eos], 1).unsqueeze(-1)).squeeze(-1).numpy()
    return float(max(np.abs(np.array(r.log_probs) - o).max() for r, o in zip(res, ours)))
