"""Beam search and greedy decoding for PyTorch models, reproducing fairseq 0.12's ``SequenceGenerator``.

The search itself is :class:`hat.runtime.beam_search.BeamSearch` (numpy, shared with the ONNX runtime so both backends
decode identically); this module drives a ``Transformer``/``SuperTransformer`` through the fairseq incremental API:
``model.encoder(src_tokens, src_lengths)``, ``model.encoder.reorder_encoder_out``, ``model.decoder(prev_output_tokens,
encoder_out, incremental_state=dict)`` and ``model.reorder_incremental_state``.

Example:
    >>> gen = SequenceGenerator(model, beam_size=4, lenpen=1.0)
    >>> hypos = gen.generate(src_tokens, src_lengths)   # per sentence: list[Hypothesis], best first
    >>> hypos[0][0].tokens                               # ends with EOS
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from hat.runtime.batching import collate_source, generation_order, translate_dataset
from hat.runtime.beam_search import BeamSearch, GreedyMixin, Hypothesis, row_candidates

__all__ = ["SequenceGenerator", "Hypothesis", "collate_source", "generation_order", "translate_dataset"]


def _max_target_positions(model) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "max_target_positions", 1024))


class SequenceGenerator(GreedyMixin):
    """fairseq-exact beam search (and greedy: ``beam_size=1``) over a PyTorch encoder-decoder.

    Args:
        model: a hat ``Transformer`` / ``SuperTransformer`` (eval mode is set here).
        beam_size: beam width.
        max_len_a, max_len_b: max output length ``a * src_len + b`` (src_len = padded batch width, as fairseq).
        max_len: model limit; 0 = the model's ``max_target_positions``.
        min_len: minimum output length (EOS forbidden before).
        lenpen: length penalty (scores / length ** lenpen).
        unk_penalty: subtracted from ``<unk>`` log-probs.
        normalize_scores: length-normalize scores.
        pad, eos, unk: special ids (default: the model config's pad/eos, fairseq's unk 3).
    """

    def __init__(self, model, beam_size: int = 5, max_len_a: float = 0.0, max_len_b: int = 200, max_len: int = 0,
                 min_len: int = 1, lenpen: float = 1.0, unk_penalty: float = 0.0, normalize_scores: bool = True,
                 pad: Optional[int] = None, eos: Optional[int] = None, unk: int = 3):
        self.model = model.eval()
        cfg = getattr(model, "cfg", None)
        self.pad = pad if pad is not None else int(getattr(cfg, "padding_idx", 1))
        self.eos = eos if eos is not None else int(getattr(cfg, "eos_idx", 2))
        self.vocab_size = int(model.cfg.tgt_vocab_size)
        self.search = BeamSearch(beam_size=beam_size, pad=self.pad, eos=self.eos, unk=unk, max_len_a=max_len_a,
                                 max_len_b=max_len_b, max_len=max_len or _max_target_positions(model),
                                 min_len=min_len, lenpen=lenpen, unk_penalty=unk_penalty,
                                 normalize_scores=normalize_scores)

    @property
    def beam_size(self) -> int:
        return self.search.beam_size

    def _reorder_incremental_state(self, state: dict, order: torch.Tensor) -> None:
        m = self.model
        fn = getattr(m, "reorder_incremental_state", None) or m.decoder.reorder_incremental_state
        fn(state, order)

    @torch.no_grad()
    def generate(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor,
                 search: Optional[BeamSearch] = None) -> list[list[Hypothesis]]:
        """Decode one batch.

        Args:
            src_tokens: ``[B, S]`` int64, left-padded, each row ending with EOS (fairseq collate).
            src_lengths: ``[B]`` non-pad lengths.
            search: search to run instead of ``self.search`` (``greedy()`` passes a beam-1 copy).

        Returns:
            Per sentence (batch order), up to ``beam_size`` hypotheses sorted best first.
        """
        model = self.model
        dev = next(model.parameters()).device  # the search stays numpy on the CPU; the model may sit on a GPU
        src_tokens = torch.as_tensor(src_tokens, dtype=torch.long).to(dev)
        src_lengths = torch.as_tensor(src_lengths, dtype=torch.long).to(dev)
        bsz, src_len = src_tokens.shape
        search = search or self.search
        beam = search.beam_size
        encoder_out = model.encoder(src_tokens, src_lengths)
        new_order = torch.arange(bsz, device=dev).repeat_interleave(beam)
        encoder_out = model.encoder.reorder_encoder_out(encoder_out, new_order)
        incremental_state: dict = {}
        box = [encoder_out]

        def step_fn(tokens: np.ndarray, step: int, reorder: Optional[np.ndarray], bias: np.ndarray,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
            if reorder is not None:
                order = torch.from_numpy(reorder).to(dev)
                self._reorder_incremental_state(incremental_state, order)
                # Beams of one sentence share encoder outputs: reorder them only when sentences were dropped.
                if len(reorder) != box[0].padding_mask.shape[0]:
                    box[0] = model.encoder.reorder_encoder_out(box[0], order)
            logits, extra = model.decoder(torch.from_numpy(tokens).to(dev), box[0], incremental_state=incremental_state)
            lprobs = model.get_normalized_probs((logits[:, -1:, :], extra), log_probs=True)
            return row_candidates(lprobs[:, -1, :].float().cpu().numpy(), bias, k)

        return search.search(bsz, src_len, step_fn, self.vocab_size)

