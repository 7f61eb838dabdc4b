"""Numbers read from a foreign checkpoint's options (fairseq's, HAT's): one checked parser, one-line errors."""

from __future__ import annotations

from typing import Optional

from hat.errors import HatError


def int_arg(args: dict, key: str, where: str, default: Optional[int] = None, minimum: int = 1) -> int:
    """``args[key]`` as an integer >= ``minimum`` (``default`` when absent, or None/0 as the parsers mean it).

    Raises:
        HatError: one line naming the option and its value.
    """
    v = args.get(key)
    if not v and default is not None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise HatError(f"{where}: option {key} is {str(v)[:40]!r}, not an integer")
    try:
        n = int(v)
    except (ValueError, OverflowError):
        raise HatError(f"{where}: option {key} is {str(v)[:40]!r}, not an integer") from None
    if n < minimum or (isinstance(v, float) and n != v):
        raise HatError(f"{where}: option {key} is {str(v)[:40]!r}, not an integer >= {minimum}")
    return n
