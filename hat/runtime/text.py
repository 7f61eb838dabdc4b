"""Raw text <-> token ids, numpy only: an optional sentencepiece model plus fairseq dictionaries.

One codec serves the PyTorch path (``hat-translate --checkpoint``, :class:`hat.data.Dictionary`) and the torch-free
runtime (``hat-translate --onnx``, :class:`hat.runtime.Vocabulary`): the dictionaries only need ``encode_line`` and
``string`` with fairseq semantics, so both paths turn the same line into the same ids.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from hat.errors import HatError
from hat.score import ESCAPED_UNK  # plain Python (no torch); its one home

__all__ = ["ESCAPED_UNK", "TextCodec", "load_export_codec"]


class TextCodec:
    """Raw text <-> token ids through an optional sentencepiece model and the source/target dictionaries.

    Args:
        src_dict, tgt_dict: fairseq dictionaries (:class:`hat.data.Dictionary` or :class:`hat.runtime.Vocabulary`).
        spm_model: sentencepiece model file, or None for whitespace-tokenized text.

    Raises:
        HatError: ``spm_model`` does not exist or is not a sentencepiece model.
    """

    def __init__(self, src_dict, tgt_dict, spm_model: Optional[str | os.PathLike]):
        self.src_dict, self.tgt_dict = src_dict, tgt_dict
        self.sp = None
        if spm_model:
            import sentencepiece as spm
            if not os.path.isfile(spm_model):
                raise HatError(f"{spm_model}: no such sentencepiece model")
            try:
                self.sp = spm.SentencePieceProcessor(model_file=str(spm_model))
            except (RuntimeError, OSError) as e:
                raise HatError(f"{spm_model}: not a sentencepiece model ({' '.join(str(e).split())[:200]})") \
                    from None

    @property
    def bpe_symbol(self) -> Optional[str]:
        """``"sentencepiece"`` when pieces are joined back into words, else None."""
        return "sentencepiece" if self.sp is not None else None

    def encode_source(self, line: str):
        """One raw line -> source ids ending with EOS (the dictionary's array type)."""
        text = " ".join(self.sp.encode(line.strip(), out_type=str)) if self.sp is not None else line
        return self.src_dict.encode_line(text, add_eos=True)

    def decode_target(self, ids, escape_unk: bool = False) -> str:
        """Target ids -> text (pieces joined); ``escape_unk`` writes ``<unk>`` as fairseq's reference ``<<unk>>``."""
        return self.tgt_dict.string(ids, bpe_symbol=self.bpe_symbol,
                                    unk_string=ESCAPED_UNK if escape_unk else None)


def load_export_codec(model_dir: str | os.PathLike, meta: dict, src_lang: Optional[str] = None,
                      tgt_lang: Optional[str] = None) -> TextCodec:
    """The codec bundled in an export directory: ``dict.SRC.txt``, ``dict.TGT.txt`` and (optional) ``spm.model``.

    Languages come from the arguments, else from ``meta.json`` (``source_lang``/``target_lang``, written by
    ``hat-export --data``), else from the dictionary file names (one dictionary: both sides; two identical files:
    either order).

    Raises:
        HatError: no dictionaries, ambiguous languages, or a dictionary whose size is not the model's vocabulary.
    """
    from hat.runtime.vocab import Vocabulary

    d = Path(model_dir)
    src = src_lang or meta.get("source_lang")
    tgt = tgt_lang or meta.get("target_lang")
    have = sorted(p.name[5:-4] for p in d.glob("dict.*.txt"))
    if not have:
        raise HatError(f"{model_dir}: no dict.*.txt; export with hat-export --data DATA_DIR to bundle the "
                       f"dictionaries and spm.model")
    if not (src and tgt):
        if len(have) == 1:
            src, tgt = src or have[0], tgt or have[0]
        elif len(have) == 2 and (src or tgt):
            known = src or tgt
            other = next((h for h in have if h != known), None)
            src, tgt = (known, other) if src else (other, known)
        elif len(have) == 2 and (d / f"dict.{have[0]}.txt").read_bytes() == (d / f"dict.{have[1]}.txt").read_bytes():
            src, tgt = have  # a joined dictionary: the ids do not depend on the order
        else:
            raise HatError(f"{model_dir}: cannot tell source from target among dict.{{{','.join(have)}}}.txt; "
                           f"pass the languages (--source-lang/--target-lang)")
    vocabs = []
    for lang, key, side in ((src, "src_vocab_size", "source"), (tgt, "tgt_vocab_size", "target")):
        p = d / f"dict.{lang}.txt"
        if not p.is_file():
            raise HatError(f"{model_dir}: no dict.{lang}.txt (have: {', '.join(have)})")
        v = Vocabulary.load(p)
        want = meta.get(key)
        if want is not None and len(v) != int(want):
            raise HatError(f"{p}: {len(v)} symbols, but the model's {side} vocabulary has {want}: dictionaries "
                           f"of another data directory? (re-export with the model's --data)")
        vocabs.append(v)
    spm_model = d / "spm.model"
    return TextCodec(vocabs[0], vocabs[1], spm_model if spm_model.is_file() else None)
