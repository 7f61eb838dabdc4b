"""Fixtures for the interop tests."""

from __future__ import annotations

import random
import shutil

import pytest


@pytest.fixture(scope="session")
def hat_data_bin(shared_dir, tmp_path_factory):
    """A tiny en->de data-bin with the HAT fixture's dictionary (random-token sentences): train, valid, test."""
    from hat.data.dictionary import Dictionary
    from hat.data.preprocess import binarize
    fixture = shared_dir / "fixtures" / "hat_supertransformer_tiny"
    out = tmp_path_factory.mktemp("hat_data_bin")
    rng = random.Random(0)
    d = Dictionary.load(fixture / "dict.txt")
    words = [d[i] for i in range(4, len(d)) if not d[i].startswith("madeupword")]
    for lang in ("en", "de"):
        shutil.copyfile(fixture / "dict.txt", out / f"dict.{lang}.txt")
    for split, n in (("train", 64), ("valid", 16), ("test", 4)):
        for lang in ("en", "de"):
            txt = out / f"{split}.{lang}.txt"
            txt.write_text("".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + "\n"
                                   for _ in range(n)))
            binarize(txt, d, out / f"{split}.en-de.{lang}")
            txt.unlink()
    return out
