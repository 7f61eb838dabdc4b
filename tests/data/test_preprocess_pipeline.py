import gzip
import json

import pytest

from hat.data.bpe import SentencePieceBPE
from hat.data.dictionary import Dictionary
from hat.data.pair import load_split
from hat.data.preprocess import PreprocessSettings, preprocess
from hat.errors import HatError

N_TRAIN = 2000
VOCAB = 1000


def _settings(shared_dir, dest, **kw):
    m = shared_dir / "data" / "multi30k"
    base = dict(src="de", tgt="en", trainpref=str(m / "train"), validpref=str(m / "val"),
                testpref=str(m / "test_2016_flickr"), destdir=str(dest), bpe_vocab=VOCAB, max_train_lines=N_TRAIN)
    base.update(kw)
    return PreprocessSettings(**base)


@pytest.fixture(scope="module")
def prepared(shared_dir, tmp_path_factory):
    dest = tmp_path_factory.mktemp("m30k")
    meta = preprocess(_settings(shared_dir, dest), log=None)
    return dest, meta


def test_layout_and_counts(prepared):
    dest, meta = prepared
    for name in ("spm.model", "spm.vocab", "dict.de.txt", "dict.en.txt", "preprocess.json",
                 "test.raw.en", "valid.raw.de"):
        assert (dest / name).is_file(), name
    assert meta["status"] == "done"
    assert json.loads((dest / "preprocess.json").read_text())["splits"] == meta["splits"]
    assert (dest / "dict.de.txt").read_bytes() == (dest / "dict.en.txt").read_bytes()  # joined
    assert meta["splits"]["train"]["lines"] == N_TRAIN
    assert meta["splits"]["valid"]["lines"] == 1014 and meta["splits"]["test"]["lines"] == 1000
    sizes = {}
    for split in ("train", "valid", "test"):
        ds = load_split(dest, split, "de", "en")
        sizes[split] = len(ds)
        assert len(ds.src_dict) % 8 == 0 and len(ds.src_dict) <= VOCAB + 8
        assert int(ds.src_sizes.sum()) == meta["splits"][split]["de"]["tokens"]
    assert sizes == {"train": N_TRAIN, "valid": 1014, "test": 1000}


def test_decoding_restores_raw_text(prepared, shared_dir):
    dest, _ = prepared
    ds = load_split(dest, "test", "de", "en")
    bpe = SentencePieceBPE(dest / "spm.model")
    raw = (dest / "test.raw.en").read_text(encoding="utf-8").splitlines()
    with gzip.open(shared_dir / "data" / "multi30k" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        assert raw == [line.rstrip("\n") for line in f]
    same = sum(bpe.decode(ds.tgt_dict.string(ds[i]["target"])) == raw[i].strip() for i in range(200))
    assert same >= 190  # the rest hold characters unseen in the 2,000 training lines (<unk>)
    assert bpe.decode(bpe.encode(" Ein Hund rennt. ")) == "Ein Hund rennt."


def test_rerun_skips_and_is_deterministic(prepared, shared_dir, tmp_path):
    dest, meta = prepared
    mtimes = {p.name: p.stat().st_mtime_ns for p in dest.iterdir() if p.suffix in (".bin", ".idx", ".model")}
    again = preprocess(_settings(shared_dir, dest), log=None)
    assert again["splits"] == meta["splits"]
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in dest.iterdir() if p.name in mtimes}
    # a fresh directory (and another thread count) gives the same bytes
    other = tmp_path / "other"
    preprocess(_settings(shared_dir, other, validpref=None, testpref=None, threads=2), log=None)
    for name in ("spm.model", "dict.de.txt", "train.de-en.de.bin", "train.de-en.en.idx"):
        assert (other / name).read_bytes() == (dest / name).read_bytes(), name


def test_resume_rebuilds_only_missing(prepared, shared_dir):
    dest, _ = prepared
    target = dest / "valid.de-en.en.bin"
    before = target.read_bytes()
    keep = (dest / "train.de-en.de.bin").stat().st_mtime_ns
    target.unlink()
    preprocess(_settings(shared_dir, dest), log=None)
    assert target.read_bytes() == before
    assert (dest / "train.de-en.de.bin").stat().st_mtime_ns == keep


def test_changed_settings_need_force(shared_dir, tmp_path):
    s = _settings(shared_dir, tmp_path, validpref=None, testpref=None, max_train_lines=300, bpe_vocab=200)
    preprocess(s, log=None)
    s2 = _settings(shared_dir, tmp_path, validpref=None, testpref=None, max_train_lines=300, bpe_vocab=150)
    with pytest.raises(HatError, match="--force"):
        preprocess(s2, log=None)
    meta = preprocess(s2, force=True, log=None)
    assert meta["spm_vocab"] == 150


def test_pretokenized_input_matches_fairseq_preprocess(fairseq_fixture, tmp_path):
    raw = fairseq_fixture / "raw"
    s = PreprocessSettings(src="de", tgt="en", trainpref=str(raw / "train"), validpref=str(raw / "valid"),
                           destdir=str(tmp_path), bpe="none")
    preprocess(s, log=None)
    for f in sorted((fairseq_fixture / "bin").iterdir()):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name
    assert not (tmp_path / "spm.model").exists()


def test_separate_dictionaries(fairseq_fixture, tmp_path):
    raw = fairseq_fixture / "raw"
    s = PreprocessSettings(src="de", tgt="en", trainpref=str(raw / "train"), destdir=str(tmp_path), bpe="none",
                           joined_dictionary=False, max_train_lines=500)
    meta = preprocess(s, log=None)
    de, en = Dictionary.load(tmp_path / "dict.de.txt"), Dictionary.load(tmp_path / "dict.en.txt")
    assert "Ein" in de and "Ein" not in en
    assert meta["vocab"] == {"de": len(de), "en": len(en)}
    assert len(load_split(tmp_path, "train", "de", "en")) == 500


def test_bad_inputs(fairseq_fixture, tmp_path):
    raw = fairseq_fixture / "raw"
    with pytest.raises(HatError, match="no such file"):
        preprocess(PreprocessSettings(src="de", tgt="en", trainpref=str(tmp_path / "nope" / "train"),
                                      destdir=str(tmp_path / "out")), log=None)
    assert not (tmp_path / "out").exists()  # nothing written before inputs are checked
    (tmp_path / "short.de").write_text("a\nb\n")
    (tmp_path / "short.en").write_text("a\n")
    with pytest.raises(HatError, match="lines"):
        preprocess(PreprocessSettings(src="de", tgt="en", trainpref=str(tmp_path / "short"),
                                      destdir=str(tmp_path / "out2"), bpe="none"), log=None)
    with pytest.raises(HatError, match="both"):
        preprocess(PreprocessSettings(src="de", tgt="de", trainpref=str(raw / "train"),
                                      destdir=str(tmp_path / "out3")), log=None)


def test_interrupted_run_publishes_no_dictionary(fairseq_fixture, tmp_path, monkeypatch):
    import hat.data.preprocess as pp

    raw = fairseq_fixture / "raw"
    s = PreprocessSettings(src="de", tgt="en", trainpref=str(raw / "train"), validpref=str(raw / "valid"),
                           destdir=str(tmp_path), bpe="none", max_train_lines=300)
    real = pp.binarize

    def crash_on_valid(text_path, d, out_prefix):
        if "valid" in str(out_prefix):
            raise KeyboardInterrupt
        return real(text_path, d, out_prefix)

    monkeypatch.setattr(pp, "binarize", crash_on_valid)
    with pytest.raises(KeyboardInterrupt):
        preprocess(s, log=None)
    # readers (hat-train) take dict.{lang}.txt as "finished": it must not exist yet
    assert not list(tmp_path.glob("dict.*.txt"))
    assert json.loads((tmp_path / "preprocess.json").read_text())["status"] == "running"
    train_bin = (tmp_path / "train.de-en.de.bin").stat().st_mtime_ns
    monkeypatch.setattr(pp, "binarize", real)
    meta = preprocess(s, log=None)
    assert meta["status"] == "done" and (tmp_path / "dict.de.txt").is_file()
    assert (tmp_path / "train.de-en.de.bin").stat().st_mtime_ns == train_bin  # finished work kept
    assert len(load_split(tmp_path, "valid", "de", "en")) == 200
