"""fairseq-compatible token dictionary (``dict.txt`` format, same indices as ``fairseq.data.Dictionary``).

Indices: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, then the lines of ``dict.txt`` in order. A ``dict.txt`` line
is ``"<token> <count>"`` with an optional trailing ``#fairseq:overwrite`` flag (a repeated token then gets a new
index). fairseq pads the vocabulary to a multiple of 8 with ``madeupwordNNNN 0`` lines *when building*; those
lines are stored in the file, so loading adds nothing (the Multi30k fixture: 10036 lines + 4 specials = 10040).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import torch

from hat.errors import HatError

_SPACE = re.compile(r"\s+")
_OVERWRITE = "#fairseq:overwrite"


def tokenize_line(line: str) -> list[str]:
    """Split on runs of whitespace, as fairseq's ``tokenize_line``."""
    return _SPACE.sub(" ", line).strip().split()


def post_process(sentence: str, bpe_symbol: Optional[str]) -> str:
    """Undo subword segmentation like fairseq's ``data_utils.post_process``.

    Args:
        sentence: space-joined tokens.
        bpe_symbol: ``None``/``"none"`` (unchanged), ``"sentencepiece"`` (join pieces, ``▁`` -> space),
            ``"subword_nmt"`` or ``"@@ "`` (remove ``@@ `` continuation markers), or any other literal marker.
    """
    if bpe_symbol is None or bpe_symbol == "none":
        return sentence
    if bpe_symbol == "sentencepiece":
        return sentence.replace(" ", "").replace("\u2581", " ").strip()
    if bpe_symbol == "subword_nmt":
        bpe_symbol = "@@ "
    return (sentence + " ").replace(bpe_symbol, "").rstrip()


class Dictionary:
    """Token <-> index map with counts, byte-compatible with fairseq's ``dict.txt``.

    Example:
        >>> d = Dictionary.load("data-bin/dict.de.txt")
        >>> ids = d.encode_line("ein Hund")        # tensor([..., .., 2])
        >>> d.string(ids)                          # 'ein Hund'
    """

    def __init__(self, bos: str = "<s>", pad: str = "<pad>", eos: str = "</s>", unk: str = "<unk>") -> None:
        self.symbols: list[str] = []
        self.count: list[int] = []
        self.indices: dict[str, int] = {}
        self.bos_word, self.pad_word, self.eos_word, self.unk_word = bos, pad, eos, unk
        self.bos_index = self.add_symbol(bos)
        self.pad_index = self.add_symbol(pad)
        self.eos_index = self.add_symbol(eos)
        self.unk_index = self.add_symbol(unk)
        self.nspecial = len(self.symbols)

    # -- basic accessors -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, idx: int) -> str:
        if 0 <= idx < len(self.symbols):
            return self.symbols[idx]
        return self.unk_word

    def __contains__(self, sym: str) -> bool:
        return sym in self.indices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dictionary) and self.symbols == other.symbols and self.count == other.count

    def index(self, sym: str) -> int:
        """Index of ``sym``, or ``unk()`` when it is not in the dictionary."""
        return self.indices.get(sym, self.unk_index)

    def bos(self) -> int:
        """Index of ``<s>`` (0)."""
        return self.bos_index

    def pad(self) -> int:
        """Index of ``<pad>`` (1)."""
        return self.pad_index

    def eos(self) -> int:
        """Index of ``</s>`` (2)."""
        return self.eos_index

    def unk(self) -> int:
        """Index of ``<unk>`` (3)."""
        return self.unk_index

    def add_symbol(self, word: str, n: int = 1, overwrite: bool = False) -> int:
        """Add ``word`` with count ``n`` (or add ``n`` to its count) and return its index.

        With ``overwrite`` an existing word gets a new index (fairseq's ``#fairseq:overwrite``).
        """
        if word in self.indices and not overwrite:
            idx = self.indices[word]
            self.count[idx] += n
            return idx
        idx = len(self.symbols)
        self.indices[word] = idx
        self.symbols.append(word)
        self.count.append(n)
        return idx

    # -- encode / decode -------------------------------------------------------------------------------------------
    def encode_line(self, line: str, add_eos: bool = True) -> torch.Tensor:
        """Whitespace-split ``line`` into indices (unknown tokens -> ``unk()``), plus ``eos()`` when ``add_eos``.

        Returns:
            1-D int64 tensor.
        """
        ids = [self.indices.get(w, self.unk_index) for w in tokenize_line(line)]
        if add_eos:
            ids.append(self.eos_index)
        return torch.tensor(ids, dtype=torch.long)

    def string(
        self,
        ids: Union[torch.Tensor, Sequence[int]],
        bpe_symbol: Optional[str] = None,
        include_eos: bool = False,
        unk_string: Optional[str] = None,
    ) -> str:
        """Indices -> space-joined tokens, dropping ``<s>``, ``<pad>`` and (unless ``include_eos``) ``</s>``.

        A 2-D tensor gives one line per row. ``bpe_symbol`` is passed to :func:`post_process`
        (e.g. ``"sentencepiece"``).
        """
        if torch.is_tensor(ids) and ids.dim() == 2:
            return "\n".join(self.string(t, bpe_symbol, include_eos, unk_string) for t in ids)
        if torch.is_tensor(ids):
            ids = ids.tolist()
        skip = {self.bos_index, self.pad_index}
        if not include_eos:
            skip.add(self.eos_index)
        unk = self.unk_word if unk_string is None else unk_string
        toks = [unk if i == self.unk_index else self[i] for i in (int(i) for i in ids) if i not in skip]
        return post_process(" ".join(toks), bpe_symbol)

    # -- files -----------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Dictionary":
        """Read a fairseq ``dict.txt``.

        Raises:
            HatError: missing file, malformed line, or a duplicate token without ``#fairseq:overwrite``.
        """
        p = Path(path)
        if not p.is_file():
            raise HatError(f"{p}: dictionary file not found")
        d = cls()
        with open(p, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.rstrip()
                if not line:
                    continue
                try:
                    word, field = line.rsplit(" ", 1)
                    overwrite = field == _OVERWRITE
                    if overwrite:
                        word, field = word.rsplit(" ", 1)
                    count = int(field)
                except ValueError:
                    raise HatError(f"{p}:{lineno}: expected '<token> <count> [#fairseq:overwrite]', got {line!r}")
                if word in d.indices and not overwrite:
                    raise HatError(f"{p}:{lineno}: duplicate token {word!r} (mark it '#fairseq:overwrite')")
                d.add_symbol(word, n=count, overwrite=overwrite)
        return d

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write ``dict.txt`` (specials omitted, as fairseq) atomically; repeated tokens get the overwrite flag."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        seen = set(self.symbols[: self.nspecial])
        lines = []
        for w, c in zip(self.symbols[self.nspecial:], self.count[self.nspecial:]):
            lines.append(f"{w} {c} {_OVERWRITE}\n" if w in seen else f"{w} {c}\n")
            seen.add(w)
        from hat.io import atomic_write
        atomic_write(p, "".join(lines))

    # -- building --------------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        counter: Union[Counter, Mapping[str, int]],
        threshold: int = -1,
        nwords: int = -1,
        padding_factor: int = 8,
    ) -> "Dictionary":
        """Build a dictionary from token counts exactly as fairseq's ``Dictionary.finalize``.

        Tokens are ordered by count descending, ties by token (Python string order); tokens with count below
        ``threshold`` are dropped; then ``madeupwordNNNN`` (count 0) pads the size to a multiple of
        ``padding_factor``.

        Args:
            counter: token -> count (special symbols in it are ignored).
            threshold: minimum count to keep a token (``-1``/``0``: keep all).
            nwords: keep at most this many symbols including the 4 specials (``-1``: all).
            padding_factor: pad the vocabulary size to a multiple of this (1: no padding).
        """
        d = cls()
        specials = set(d.symbols)
        items = sorted((w, int(c)) for w, c in counter.items() if w not in specials)
        limit = None if nwords <= 0 else max(nwords - d.nspecial, 0)
        for w, c in Counter(dict(items)).most_common(limit):
            if c < threshold:
                break
            d.add_symbol(w, n=c)
        d.pad_to_multiple_(padding_factor)
        return d

    @classmethod
    def count_tokens(cls, lines: Iterable[str], counter: Optional[Counter] = None) -> Counter:
        """Whitespace token counts of ``lines`` (added to ``counter`` if given)."""
        counter = Counter() if counter is None else counter
        for line in lines:
            counter.update(tokenize_line(line))
        return counter

    def pad_to_multiple_(self, padding_factor: int) -> None:
        """Append ``madeupwordNNNN`` symbols (count 0) until ``len(self) % padding_factor == 0``."""
        i = 0
        while padding_factor > 1 and len(self) % padding_factor != 0:
            self.add_symbol(f"madeupword{i:04d}", n=0)
            i += 1
