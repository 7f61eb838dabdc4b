import numpy as np
import pytest
import torch

from hat.data.dictionary import Dictionary
from hat.data.indexed import MMapIndexedDataset, MMapIndexedDatasetBuilder, best_fitting_int_dtype
from hat.errors import HatError

PREFIXES = ["train.de-en.de", "train.de-en.en", "valid.de-en.de", "valid.de-en.en"]


@pytest.mark.parametrize("name", PREFIXES)
def test_rewrite_is_byte_identical(fairseq_fixture, tmp_path, name):
    src = fairseq_fixture / "bin" / name
    ds = MMapIndexedDataset(src)
    assert ds.dtype == np.uint16
    assert len(ds) == (3000 if name.startswith("train") else 200)
    d = Dictionary.load(fairseq_fixture / "bin" / "dict.de.txt")
    b = MMapIndexedDatasetBuilder(tmp_path / f"{name}.bin", dtype=best_fitting_int_dtype(len(d)))
    for item in ds:
        assert item.dtype == torch.long and item[-1].item() == d.eos()
        b.add_item(item)
    b.finalize(tmp_path / f"{name}.idx")
    for ext in (".bin", ".idx"):
        assert (tmp_path / f"{name}{ext}").read_bytes() == (fairseq_fixture / "bin" / f"{name}{ext}").read_bytes()


def test_fixture_tokens_match_raw_text(fairseq_fixture):
    d = Dictionary.load(fairseq_fixture / "bin" / "dict.en.txt")
    ds = MMapIndexedDataset(fairseq_fixture / "bin" / "valid.de-en.en")
    lines = (fairseq_fixture / "raw" / "valid.en").read_text(encoding="utf-8").splitlines()
    for i in (0, 1, 199):
        assert ds[i].tolist() == d.encode_line(lines[i]).tolist()
    assert ds.sizes[0] == len(ds[0])


@pytest.mark.parametrize("vocab,dtype", [(100, np.uint16), (65499, np.uint16), (65500, np.int32)])
def test_dtype_choice_and_int32_round_trip(tmp_path, vocab, dtype):
    assert best_fitting_int_dtype(vocab) == dtype
    b = MMapIndexedDatasetBuilder(tmp_path / "x.bin", dtype=dtype)
    items = [[vocab - 1, 2], [], [5, 6, 7]]
    for it in items:
        b.add_item(torch.tensor(it, dtype=torch.long))
    b.finalize(tmp_path / "x.idx")
    ds = MMapIndexedDataset(tmp_path / "x")
    assert [ds[i].tolist() for i in range(len(ds))] == items
    assert ds.sizes.tolist() == [2, 0, 3]
    assert ds.max_token_id == vocab - 1


def test_bad_files(tmp_path):
    with pytest.raises(HatError, match="not found"):
        MMapIndexedDataset(tmp_path / "missing")
    (tmp_path / "bad.idx").write_bytes(b"garbage" * 10)
    (tmp_path / "bad.bin").write_bytes(b"")
    with pytest.raises(HatError, match="bad magic"):
        MMapIndexedDataset(tmp_path / "bad")
