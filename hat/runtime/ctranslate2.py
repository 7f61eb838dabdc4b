"""Translate with a CTranslate2 export (``hat-export --format ctranslate2 --data ...``): text in, text out, no torch.

The export folder holds CTranslate2's files and hat's ``meta.json`` (checked with
:func:`hat.runtime.onnx.load_meta`: format, symbols, every file's digest), the dictionaries and ``spm.model``.
Sentences are split by the bundled sentencepiece model, mapped to the dictionary's symbols (unknown pieces become
``<unk>``), and decoded by CTranslate2's beam search with fairseq's defaults: length penalty 1 on the length with
EOS, at most ``max_len_a * source length + max_len_b`` tokens (capped by the model's positions), EOS forbidden before
``min_len``.

Example:
    >>> tr = CTranslate2Translator("export/ct2", beam_size=5)
    >>> tr.translate(["Ein Mann fährt Fahrrad."])
    ['A man is riding a bike.']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from hat.errors import HatError
from hat.optional import require
from hat.runtime.batching import generation_order, iter_batches
from hat.runtime.bounds import check_decoding, cut_sources
from hat.runtime.onnx import load_meta

FORMAT = "hat-ctranslate2-1"


class CTranslate2Translator:
    """Beam search with CTranslate2 over an export folder.

    Args:
        model_dir: ``hat-export --format ctranslate2 --data DATA`` output.
        beam_size, max_len_a, max_len_b, min_len, lenpen: as fairseq's (:class:`hat.runtime.beam_search.BeamSearch`).
        threads: CTranslate2 ``intra_threads`` (``inter_threads`` is 1).
        compute_type: CTranslate2's (``default`` = the stored weights' type; ``int8``, ``float32``).
        src_lang, tgt_lang: languages of the bundled dictionaries (default: ``meta.json``'s).

    Raises:
        HatError: a bad export folder, ctranslate2 missing, or bounds (:mod:`hat.runtime.bounds`) exceeded.
    """

    def __init__(self, model_dir: str | os.PathLike, beam_size: int = 5, max_len_a: float = 0.0,
                 max_len_b: int = 200, min_len: int = 1, lenpen: float = 1.0, threads: int = 1,
                 compute_type: str = "default", src_lang: Optional[str] = None, tgt_lang: Optional[str] = None):
        check_decoding(beam_size, 1, max_len_a, max_len_b, min_len)
        self.meta = load_meta(model_dir, FORMAT)
        self.model_dir = Path(model_dir)
        self.beam_size, self.lenpen = beam_size, lenpen
        self.max_len_a, self.max_len_b, self.min_len = max_len_a, max_len_b, min_len
        from hat.runtime.text import load_export_codec
        self.codec = load_export_codec(model_dir, self.meta, src_lang, tgt_lang)
        ctranslate2 = require("ctranslate2", "CTranslate2 translation", extra="ctranslate2")
        try:
            self.translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type,
                                                     inter_threads=1, intra_threads=max(0, int(threads)))
        except (RuntimeError, ValueError) as e:
            raise HatError(f"{model_dir}: CTranslate2 cannot load it ({' '.join(str(e).split())[:200]}); "
                           f"re-export it with hat-export") from None

    def max_length(self, src_len: int) -> int:
        """fairseq's bound: ``min(a * src_len + b, max_target_positions - 1)`` tokens (EOS not counted)."""
        return max(1, min(int(self.max_len_a * src_len + self.max_len_b),
                          int(self.meta.get("max_target_positions", 1024)) - 1))

    def translate_ids(self, sources: Sequence[Sequence[int]], batch_size: int = 16) -> list[list[int]]:
        """Best hypothesis (target ids, no EOS) per source (ids ending with EOS), in input order.

        Sentences are batched in fairseq-generate's order (by length); each batch's length bound uses its widest
        source, as fairseq's does.
        """
        check_decoding(self.beam_size, batch_size, self.max_len_a, self.max_len_b, self.min_len)
        src_syms, tgt_index = self.codec.src_dict.symbols, self.codec.tgt_dict.indices
        unk = self.codec.tgt_dict.unk
        out: list[Optional[list[int]]] = [None] * len(sources)
        order = generation_order([len(s) for s in sources])
        for ids in iter_batches(order, batch_size):
            batch = [[src_syms[int(t)] for t in sources[i][:-1]] for i in ids]  # CTranslate2 appends EOS itself
            res = self.translator.translate_batch(
                batch, beam_size=self.beam_size, length_penalty=self.lenpen, max_batch_size=len(batch),
                max_decoding_length=self.max_length(max(len(sources[i]) for i in ids)),
                min_decoding_length=self.min_len)
            for i, r in zip(ids, res):
                out[i] = [tgt_index.get(t, unk) for t in r.hypotheses[0]]
        return out  # type: ignore[return-value]

    def translate(self, texts: Sequence[str], batch_size: int = 16,
                  warn: Optional[Callable[[str], None]] = None, first_line: int = 1) -> list[str]:
        """Translate raw sentences (the bundled ``spm.model`` splits them); output in input order. ``warn`` gets one
        line per input line longer than the model's positions (cut to fit)."""
        sources = cut_sources([self.codec.encode_source(t) for t in texts],
                              int(self.meta.get("max_source_positions", 1024)), int(self.meta["eos_idx"]), warn, first_line)
        return [self.codec.decode_target(ids) for ids in self.translate_ids(sources, batch_size)]
