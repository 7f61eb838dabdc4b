"""Limits on decoding arguments that keep a translation's memory bounded, checked before anything is allocated.

A beam search holds, per batch, ``batch_size * beam`` rows of: the step's log-probabilities (vocabulary wide), token
and score buffers (``max_len`` wide, itself capped by the model's ``max_target_positions``) and every decoder layer's
self-attention cache. With the limits below and a 40,000-word vocabulary the log-probabilities of one step stay
under 0.7 GB; a longer-than-``max_source_positions`` input line is cut with a warning, not fed to the model.

* ``beam``: 1..:data:`MAX_BEAM`;
* ``batch_size``: 1..:data:`MAX_BATCH_SIZE`, and ``batch_size * beam`` <= :data:`MAX_ROWS`;
* ``max_len_a``: a finite number in 0..:data:`MAX_LEN_A`; ``max_len_b``: an integer in 0..:data:`MAX_LEN_B`
  (fairseq caps the length at the model's positions anyway; these bounds keep the arithmetic finite);
* ``min_len``: 0..``max_len_b`` + the length the ``a`` term can add.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Sequence

import numpy as np

from hat.errors import HatError

MAX_BEAM = 256
MAX_BATCH_SIZE = 4096
MAX_ROWS = 4096
MAX_LEN_A = 100.0
MAX_LEN_B = 100_000


def check_decoding(beam: int, batch_size: int = 1, max_len_a: float = 0.0, max_len_b: int = 200,
                   min_len: int = 1) -> None:
    """Refuse decoding arguments outside the limits of the module docstring.

    Raises:
        HatError: one line naming the argument, its value and the allowed range.
    """
    def integer(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if not integer(beam) or not 1 <= beam <= MAX_BEAM:
        raise HatError(f"--beam must be an integer in 1..{MAX_BEAM}, got {beam!r}")
    if not integer(batch_size) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise HatError(f"--batch-size must be an integer in 1..{MAX_BATCH_SIZE}, got {batch_size!r}")
    if batch_size * beam > MAX_ROWS:
        raise HatError(f"--batch-size x --beam is {batch_size * beam:,}; at most {MAX_ROWS:,} decoder rows keep "
                       f"memory bounded (lower one of them)")
    if isinstance(max_len_a, bool) or not isinstance(max_len_a, (int, float)) or not math.isfinite(max_len_a) \
            or not 0 <= max_len_a <= MAX_LEN_A:
        raise HatError(f"--max-len-a must be a number in 0..{MAX_LEN_A:g}, got {max_len_a!r}")
    if not integer(max_len_b) or not 0 <= max_len_b <= MAX_LEN_B:
        raise HatError(f"--max-len-b must be an integer in 0..{MAX_LEN_B:,}, got {max_len_b!r}")
    if not integer(min_len) or min_len < 0:
        raise HatError(f"--min-len must be an integer >= 0, got {min_len!r}")


def cut_sources(sources: Sequence, max_positions: int, eos: int,
                warn: Optional[Callable[[str], None]] = None, first_line: int = 1) -> list:
    """Sources (id arrays ending with EOS) no longer than the model's ``max_positions`` tokens: a longer one keeps
    its first ``max_positions - 1`` tokens and EOS, and ``warn`` gets one line naming it (1-based), so the other
    lines are translated as usual (default: ``warnings.warn``); ``first_line`` numbers the first source."""
    out = []
    for i, s in enumerate(sources):
        if len(s) > max_positions:
            message = (f"line {first_line + i}: {len(s):,} source tokens, more than the model's {max_positions:,} positions; "
                       f"translating its first {max_positions - 1:,}")
            (warn or (lambda m: warnings.warn(m, stacklevel=3)))(message)
            s = np.concatenate([np.asarray(s[:max_positions - 1], dtype=np.int64), np.array([eos], np.int64)])
        out.append(s)
    return out
