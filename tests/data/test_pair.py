import numpy as np
import pytest
import torch

from hat.data.dictionary import Dictionary
from hat.data.pair import LanguagePairDataset, batch_by_tokens, collate, load_split
from hat.errors import HatError


@pytest.fixture(scope="module")
def valid(fairseq_fixture):
    return load_split(fairseq_fixture / "bin", "valid", "de", "en")


@pytest.fixture(scope="module")
def train(fairseq_fixture):
    return load_split(fairseq_fixture / "bin", "train", "de", "en")


def test_collate_matches_fairseq_reference(valid, fairseq_fixture):
    ref = np.load(fairseq_fixture / "reference_valid_first4.npz")
    batch = collate([valid[i] for i in (3, 1, 2, 0)])
    assert batch["id"].tolist() == ref["ids"].tolist()
    for key in ("src_tokens", "src_lengths", "prev_output_tokens"):
        got = batch["net_input"][key]
        assert got.dtype == torch.long
        np.testing.assert_array_equal(got.numpy(), ref[key])
    np.testing.assert_array_equal(batch["target"].numpy(), ref["target"])
    assert batch["nsentences"] == 4
    assert batch["ntokens"] == int((ref["target"] != 1).sum())


def test_collate_sorts_by_source_length(valid):
    batch = valid.batch([0, 1, 2, 3])  # source lengths 10, 11, 11, 12
    assert batch["id"].tolist() == [3, 1, 2, 0]
    src = batch["net_input"]["src_tokens"]
    assert (src[:, -1] == valid.src_dict.eos()).all()  # left padded
    assert (batch["net_input"]["prev_output_tokens"][:, 0] == valid.tgt_dict.eos()).all()
    assert collate([]) == {}


def test_source_only_collate(valid):
    ds = LanguagePairDataset(valid.src, None, valid.src_dict)
    batch = ds.batch([0, 1])
    assert batch["target"] is None and "prev_output_tokens" not in batch["net_input"]
    assert batch["ntokens"] == int(batch["net_input"]["src_lengths"].sum())


@pytest.mark.parametrize("max_tokens,max_sentences", [(300, None), (1024, 16), (None, 7)])
def test_batches_respect_limits_and_cover_everything(train, max_tokens, max_sentences):
    batches = batch_by_tokens(train, max_tokens, max_sentences, seed=3, epoch=1)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(train)))
    ntok = train.num_tokens_vec()
    for b in batches:
        if max_tokens:
            assert len(b) * ntok[b].max() <= max_tokens
        if max_sentences:
            assert len(b) <= max_sentences
    if max_tokens:  # bucketing: padding waste stays small
        padded = sum(len(b) * ntok[b].max() for b in batches)
        assert padded < 1.2 * ntok.sum()


def test_batches_reproducible_and_epoch_dependent(train):
    a = batch_by_tokens(train, 500, seed=1, epoch=1)
    assert a == batch_by_tokens(train, 500, seed=1, epoch=1)
    assert a != batch_by_tokens(train, 500, seed=1, epoch=2)
    assert a != batch_by_tokens(train, 500, seed=2, epoch=1)
    fixed = batch_by_tokens(train, 500, shuffle=False)
    assert fixed == batch_by_tokens(train, 500, seed=9, epoch=4, shuffle=False)
    # without shuffling batches follow fairseq's order: source length (primary key) ascending
    lengths = [train.src_sizes[b].max() for b in fixed]
    assert lengths == sorted(lengths)


@pytest.mark.parametrize("num_shards", [2, 3, 7])
def test_shards_have_equal_counts(train, num_shards):
    full = batch_by_tokens(train, 400, seed=5, epoch=2)
    shards = [batch_by_tokens(train, 400, seed=5, epoch=2, num_shards=num_shards, shard_id=k)
              for k in range(num_shards)]
    assert len({len(s) for s in shards}) == 1
    assert len(shards[0]) == -(-len(full) // num_shards)
    covered = {tuple(b) for s in shards for b in s}
    assert covered == {tuple(b) for b in full}
    assert all(len(b) > 0 for s in shards for b in s)


def test_invalid_sizes(train):
    longest = int(train.num_tokens_vec().max())
    kept = batch_by_tokens(train, longest - 1, shuffle=False)
    assert sum(len(b) for b in kept) < len(train)
    with pytest.raises(HatError, match="exceeds"):
        batch_by_tokens(train, longest - 1, skip_invalid=False)
    kept = batch_by_tokens(train, 4096, max_positions=(20, 20), shuffle=False)
    assert all(train.src_sizes[i] <= 20 and train.tgt_sizes[i] <= 20 for b in kept for i in b)
    with pytest.raises(HatError):
        batch_by_tokens(train, None)
    with pytest.raises(HatError):
        batch_by_tokens(train, 100, num_shards=2, shard_id=2)


def test_load_split_errors(fairseq_fixture, tmp_path):
    with pytest.raises(HatError, match="data directory not found"):
        load_split(tmp_path / "nope", "valid", "de", "en")
    with pytest.raises(HatError, match="dictionary not found"):
        load_split(tmp_path, "valid", "de", "en")
    for lang in ("de", "en"):
        Dictionary.build({"a": 1}).save(tmp_path / f"dict.{lang}.txt")
    with pytest.raises(HatError, match="no split 'valid'"):
        load_split(tmp_path, "valid", "de", "en")
    for f in (fairseq_fixture / "bin").glob("valid.*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(HatError, match="does not belong"):
        load_split(tmp_path, "valid", "de", "en")


def test_reverse_direction_file_names(fairseq_fixture):
    ds = load_split(fairseq_fixture / "bin", "valid", "en", "de")  # files are named de-en
    assert len(ds) == 200
    assert ds[0]["source"].tolist() == load_split(fairseq_fixture / "bin", "valid", "de", "en")[0]["target"].tolist()
