"""Multi30k (task 1, raw) locating and downloading.

Files are ``{split}.{lang}[.gz]`` with splits ``train`` (29,000 lines), ``val`` (1,014), ``test_2016_flickr``
(1,000) and languages ``en``, ``de``, ``fr`` (and ``cs`` for some splits), as in the public repository
https://github.com/multi30k/dataset (``data/task1/raw``).
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence, Union

from hat.errors import HatError
from hat.io import atomic_path

BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
SPLITS = ("train", "val", "test_2016_flickr")
LANGS = ("en", "de", "fr")


def find_multi30k(data_dir: Union[str, os.PathLike], langs: Sequence[str] = ("de", "en"),
                  splits: Sequence[str] = SPLITS) -> dict[str, Path]:
    """Locate Multi30k files in ``data_dir`` (``train.de.gz`` or plain ``train.de``).

    Returns:
        ``{split: prefix}``: the path prefix to give ``hat-preprocess`` (``data_dir/train``), per split.

    Raises:
        HatError: the directory or any ``{split}.{lang}[.gz]`` is missing.
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise HatError(f"{d}: Multi30k data directory not found")
    missing = [f"{s}.{lang}" for s in splits for lang in langs
               if not (d / f"{s}.{lang}").is_file() and not (d / f"{s}.{lang}.gz").is_file()]
    if missing:
        raise HatError(f"{d}: missing Multi30k file(s) {', '.join(missing)} (plain or .gz)")
    return {s: d / s for s in splits}


def local_multi30k(langs: Sequence[str] = ("de", "en"), splits: Sequence[str] = SPLITS) -> Optional[Path]:
    """A local copy of Multi30k that has every ``{split}.{lang}`` (None if there is none): ``$HAT_MULTI30K_DIR``, then
    ``shared/data/multi30k`` beside the checkout hat runs from (the project's test data), so a first run needs no
    network where a copy exists."""
    from hat.resources import project_root
    env = os.environ.get("HAT_MULTI30K_DIR")
    candidates = ([Path(env)] if env else []) + [project_root().parent / "shared" / "data" / "multi30k"]
    for d in candidates:
        try:
            find_multi30k(d, langs, splits)
        except HatError:
            continue
        return d
    return None


def download_multi30k(dest: Union[str, os.PathLike], langs: Sequence[str] = LANGS, splits: Sequence[str] = SPLITS,
                      base_url: Optional[str] = None, timeout_s: float = 30.0) -> Path:
    """Download ``{split}.{lang}.gz`` from the Multi30k GitHub repository into ``dest`` (skips existing files).

    Args:
        dest: output directory (created).
        langs: languages to fetch.
        splits: splits to fetch.
        base_url: override of :data:`BASE_URL` (mirrors, tests); ``HAT_MULTI30K_URL`` in the environment too.
        timeout_s: per-request timeout.

    Returns:
        ``dest`` as a Path.

    Raises:
        HatError: a file cannot be fetched (offline, HTTP error); partial files are removed.
    """
    base = (base_url or os.environ.get("HAT_MULTI30K_URL") or BASE_URL).rstrip("/")
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for s in splits:
        for lang in langs:
            target = out / f"{s}.{lang}.gz"
            if target.is_file() and target.stat().st_size > 0:
                continue
            url = f"{base}/{s}.{lang}.gz"
            try:
                with atomic_path(target) as tmp:
                    with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as f:
                        shutil.copyfileobj(r, f)
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                raise HatError(f"cannot download {url}: {reason} (offline? pass --data-dir, or set HAT_MULTI30K_DIR, "
                               f"to a folder with the files {s}.{lang}.gz from {BASE_URL})") from None
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m hat.data.multi30k DEST [--langs de,en]``: download Multi30k task 1 raw files into DEST."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m hat.data.multi30k", description=main.__doc__)
    p.add_argument("dest")
    p.add_argument("--langs", default="de,en", help="comma-separated (default de,en)")
    p.add_argument("--base-url", default=None, help=f"mirror of {BASE_URL}")
    a = p.parse_args(argv)
    # Library code never imports hat.cli: the same one-line error contract, by hand.
    try:
        out = download_multi30k(a.dest, langs=[x for x in a.langs.split(",") if x], base_url=a.base_url)
    except HatError as e:
        print(f"{p.prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
