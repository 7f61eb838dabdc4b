"""hat.data.infer_langs: one language-pair detector for .bin (search) and .idx (translate) file names."""

from __future__ import annotations

import pytest

from hat.data import infer_langs
from hat.errors import HatError


@pytest.mark.parametrize("ext", [".bin", ".idx"])
def test_pair_from_either_extension(tmp_path, ext):
    for lang in ("de", "en"):
        (tmp_path / f"valid.de-en.{lang}{ext}").write_bytes(b"")
        (tmp_path / f"dict.{lang}.txt").write_text("")
    assert infer_langs(tmp_path, "valid") == ("de", "en")
    assert infer_langs(tmp_path, "valid", "de") == ("de", "en")
    with pytest.raises(HatError, match="no test.SRC-TGT"):
        infer_langs(tmp_path, "test")
    assert infer_langs(tmp_path, "test", "en") == ("en", "de")  # two dictionaries: the other one


def test_several_pairs_need_languages(tmp_path):
    for pair in ("de-en", "en-de"):
        s, t = pair.split("-")
        for lang in (s, t):
            (tmp_path / f"valid.{pair}.{lang}.bin").write_bytes(b"")
    with pytest.raises(HatError, match="several language pairs"):
        infer_langs(tmp_path, "valid")
    assert infer_langs(tmp_path, "valid", "en") == ("en", "de")
