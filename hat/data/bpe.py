"""SentencePiece BPE: encode raw text to space-separated pieces and decode model output back to text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Union

from hat.errors import HatError


class SentencePieceBPE:
    """Wrap a trained ``spm.model``.

    Args:
        model_path: the sentencepiece model (``hat-preprocess`` writes ``<destdir>/spm.model``).

    Raises:
        HatError: the model file is missing or unreadable.
    """

    def __init__(self, model_path: Union[str, os.PathLike]) -> None:
        import sentencepiece as spm

        p = Path(model_path)
        if not p.is_file():
            raise HatError(f"{p}: sentencepiece model not found")
        self.model_path = p
        self.sp = spm.SentencePieceProcessor()
        try:
            ok = self.sp.Load(str(p))
        except (OSError, RuntimeError) as e:
            raise HatError(f"{p}: not a sentencepiece model ({e})") from None
        if not ok:
            raise HatError(f"{p}: not a sentencepiece model")

    def encode(self, line: str) -> str:
        """Raw sentence -> space-separated pieces (``'▁Ein ▁Hund'``)."""
        return " ".join(self.sp.EncodeAsPieces(line.strip()))

    def encode_lines(self, lines: Iterable[str]) -> list[str]:
        """Batch :meth:`encode` (one C++ call, faster for many lines)."""
        lines = [ln.strip() for ln in lines]
        return [" ".join(p) for p in self.sp.Encode(lines, out_type=str)]

    def decode(self, pieces: str) -> str:
        """Space-separated pieces -> detokenized sentence (inverse of :meth:`encode`)."""
        toks = pieces.split()
        return self.sp.DecodePieces(toks) if toks else ""
