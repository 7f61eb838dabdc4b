from collections import Counter

import pytest
import torch

from hat.data.dictionary import Dictionary, post_process
from hat.errors import HatError


def test_fixture_dictionary_size_and_specials(fairseq_fixture):
    d = Dictionary.load(fairseq_fixture / "bin" / "dict.de.txt")
    # 10036 lines (madeupword padding is in the file) + 4 specials, as fairseq loads it
    assert len(d) == 10040
    assert (d.bos(), d.pad(), d.eos(), d.unk()) == (0, 1, 2, 3)
    assert d[4] == "a" and d.index("a") == 4
    assert d.symbols[-1] == "madeupword0003"
    assert d.index("no-such-token") == d.unk()


def test_build_from_raw_matches_fairseq_bytes(fairseq_fixture, tmp_path):
    c = Counter()
    for lang in ("de", "en"):
        with open(fairseq_fixture / "raw" / f"train.{lang}", encoding="utf-8") as f:
            Dictionary.count_tokens(f, c)
    d = Dictionary.build(c, threshold=0, padding_factor=8)
    assert len(d) == 10040
    d.save(tmp_path / "dict.txt")
    assert (tmp_path / "dict.txt").read_bytes() == (fairseq_fixture / "bin" / "dict.de.txt").read_bytes()


def test_round_trip_and_overwrite(tmp_path):
    d = Dictionary.build(Counter({"b": 3, "a": 3, "c": 5, "rare": 1}), threshold=2, padding_factor=8)
    assert d.symbols[4:7] == ["c", "a", "b"]  # count desc, ties by token
    assert len(d) == 8 and d.symbols[-1] == "madeupword0000"
    d.add_symbol("a", n=7, overwrite=True)  # fairseq's "#fairseq:overwrite": a second index for "a"
    d.save(tmp_path / "dict.txt")
    assert "a 7 #fairseq:overwrite" in (tmp_path / "dict.txt").read_text()
    d2 = Dictionary.load(tmp_path / "dict.txt")
    assert d2 == d and d2.index("a") == 8


def test_encode_and_string():
    d = Dictionary.build(Counter({"\u2581Ein": 2, "\u2581Hund": 1, "e": 1}), padding_factor=1)
    ids = d.encode_line("  \u2581Ein \u2581Hund\tX ")
    assert ids.dtype == torch.long
    assert ids.tolist() == [d.index("\u2581Ein"), d.index("\u2581Hund"), d.unk(), d.eos()]
    assert d.encode_line("\u2581Ein", add_eos=False).tolist() == [d.index("\u2581Ein")]
    padded = torch.tensor([d.bos(), *ids.tolist(), d.pad(), d.pad()])
    assert d.string(padded) == "\u2581Ein \u2581Hund <unk>"
    assert d.string(padded, include_eos=True).endswith("</s>")
    assert d.string(ids[:2], bpe_symbol="sentencepiece") == "Ein Hund"
    assert d.string(torch.stack([ids, ids])).count("\n") == 1


@pytest.mark.parametrize("text,symbol,expected", [
    ("a@@ b c", "@@ ", "ab c"),
    ("a@@ b c", "subword_nmt", "ab c"),
    ("\u2581a b \u2581c", "sentencepiece", "ab c"),
    ("x y", None, "x y"),
])
def test_post_process(text, symbol, expected):
    assert post_process(text, symbol) == expected


@pytest.mark.parametrize("content", ["word\n", "word notanumber\n", "a 1\na 2\n"])
def test_load_bad_files(tmp_path, content):
    p = tmp_path / "dict.txt"
    p.write_text(content)
    with pytest.raises(HatError, match="dict.txt"):
        Dictionary.load(p)


def test_load_missing(tmp_path):
    with pytest.raises(HatError, match="not found"):
        Dictionary.load(tmp_path / "nope.txt")
