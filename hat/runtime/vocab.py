"""fairseq ``dict.txt`` vocabulary without torch (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, then the file)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

_OVERWRITE = "#fairseq:overwrite"


class Vocabulary:
    """Token <-> id map with the same indices as :class:`hat.data.Dictionary` (read-only, numpy only)."""

    def __init__(self, symbols: Sequence[str]):
        self.symbols = list(symbols)
        self.indices = {}
        for i, s in enumerate(self.symbols):
            self.indices[s] = i
        self.bos, self.pad, self.eos, self.unk = 0, 1, 2, 3

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Read a fairseq ``dict.txt`` (``token count [#fairseq:overwrite]`` lines)."""
        symbols = ["<s>", "<pad>", "</s>", "<unk>"]
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.endswith(_OVERWRITE):
                    line = line[: -len(_OVERWRITE)].rstrip()
                word = line.rsplit(" ", 1)[0] if " " in line else line
                symbols.append(word)
        return cls(symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode_line(self, line: str, add_eos: bool = True) -> np.ndarray:
        """Whitespace tokens -> int64 ids (unknown -> ``<unk>``), plus EOS."""
        ids = [self.indices.get(w, self.unk) for w in line.split()]
        if add_eos:
            ids.append(self.eos)
        return np.asarray(ids, dtype=np.int64)

    def string(self, ids, bpe_symbol: Optional[str] = None, unk_string: Optional[str] = None) -> str:
        """Ids -> space-joined tokens without ``<s>``/``<pad>``/``</s>``; ``bpe_symbol="sentencepiece"`` joins pieces."""
        unk = unk_string or self.symbols[self.unk]
        toks = [unk if i == self.unk else self.symbols[i] for i in (int(i) for i in ids)
                if i not in (self.bos, self.pad, self.eos)]
        s = " ".join(toks)
        if bpe_symbol == "sentencepiece":
            s = s.replace(" ", "").replace("\u2581", " ").strip()
        return s
