"""The language pair of a binarized data directory, from fairseq file names (no torch needed)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from hat.errors import HatError


def dictionary_langs(data_dir: str | os.PathLike) -> list[str]:
    """Languages with a ``dict.LANG.txt`` in ``data_dir``, sorted."""
    return sorted(p.name[5:-4] for p in Path(data_dir).glob("dict.*.txt"))


def infer_langs(data_dir: str | os.PathLike, split: str, src: Optional[str] = None,
                tgt: Optional[str] = None) -> tuple[str, str]:
    """Source and target language of ``split`` from ``SPLIT.SRC-TGT.LANG.{bin,idx}`` file names.

    A language given as ``src``/``tgt`` narrows the search (both given: returned as is). When no file of ``split``
    names the pair, a given ``src`` with exactly two dictionaries (``dict.*.txt``) picks the other as target.

    Raises:
        HatError: no pair or several pairs match (the message lists what is there).
    """
    if src and tgt:
        return src, tgt
    pat = re.compile(rf"^{re.escape(split)}\.([^.-]+)-([^.-]+)\.([^.]+)\.(?:bin|idx)$")
    pairs = set()
    for f in os.listdir(data_dir):
        m = pat.match(f)
        if m and m.group(3) in (m.group(1), m.group(2)):
            pairs.add((m.group(1), m.group(2)))
    pairs = {(s, t) for s, t in pairs if (src in (None, s)) and (tgt in (None, t))}
    if len(pairs) == 1:
        return next(iter(pairs))
    dicts = dictionary_langs(data_dir)
    if not pairs:
        if src and tgt is None and len(dicts) == 2 and src in dicts:
            return src, next(d for d in dicts if d != src)
        raise HatError(f"{data_dir}: no {split}.SRC-TGT.* files found; pass the source and target languages "
                       f"(dictionaries there: {', '.join(dicts) or 'none'})")
    raise HatError(f"{data_dir}: several language pairs for {split} ({', '.join('-'.join(p) for p in sorted(pairs))})"
                   f"; pass the source and target languages")


def infer_langs_any_split(data_dir: str | os.PathLike, prefer: str, src: Optional[str] = None,
                          tgt: Optional[str] = None) -> tuple[str, str]:
    """:func:`infer_langs` for ``prefer``, else for any other split found in ``data_dir`` (raw-text input needs
    only the pair, not a particular split).

    Raises:
        HatError: no split tells the pair.
    """
    splits = sorted({f.split(".")[0] for f in os.listdir(data_dir) if f.endswith((".idx", ".bin"))})
    for split in [prefer] + [s for s in splits if s != prefer]:
        try:
            return infer_langs(data_dir, split, src, tgt)
        except HatError:
            continue
    raise HatError(f"cannot tell the source/target languages of {data_dir}; pass them explicitly "
                   f"(dictionaries there: {', '.join(dictionary_langs(data_dir)) or 'none'})")
