"""hat-translate on the real fairseq fixture: binarized split, raw text input, references, errors; spm decoding."""

from __future__ import annotations

import pytest

from hat.cli.translate import main
from hat.runtime.text import TextCodec


@pytest.fixture(scope="module")
def valid_translation(fairseq_fixture, tmp_path_factory):
    d = tmp_path_factory.mktemp("tr")
    rc = main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--data", str(fairseq_fixture / "bin"),
               "--subset", "valid", "--beam", "4", "--output", str(d / "hyp.txt"), "--reference-output",
               str(d / "ref.txt"), "--fairseq-output", str(d / "gen.txt"), "--quiet"])
    assert rc == 0
    return d


def test_fairseq_parity_and_bleu(valid_translation, fairseq_fixture):
    """All 200 of fairseq-generate's H- lines reproduced (with their scores); tokenized BLEU within 0.1 of 7.98."""
    from hat.score import parse_fairseq_generate, read_lines, tokenized_bleu
    with open(fairseq_fixture / "generate_valid_beam4.txt", encoding="utf-8") as f:
        ref = parse_fairseq_generate(f)
    hyps, refs = read_lines(valid_translation / "hyp.txt"), read_lines(valid_translation / "ref.txt")
    assert len(hyps) == len(ref["H"]) == 200
    diff = [i for i in range(200) if hyps[i] != ref["H"][i][1]]
    assert not diff, f"{200 - len(diff)}/200 hypotheses equal fairseq-generate's; first differing ids {diff[:5]}"
    assert refs == [ref["T"][i] for i in range(200)]
    assert abs(tokenized_bleu(hyps, refs).score() - 7.98) <= 0.1
    # Scores too: fairseq prints length-normalized log2-probs; equal hypotheses must score the same.
    with open(valid_translation / "gen.txt", encoding="utf-8") as f:
        ours = parse_fairseq_generate(f)
    for i in range(200):
        assert ours["H"][i][0] == pytest.approx(ref["H"][i][0], abs=1e-3)
        assert ours["H"][i][1] == hyps[i]


def test_raw_text_input_matches_binarized(valid_translation, fairseq_fixture, tmp_path):
    lines = (fairseq_fixture / "raw" / "valid.de").read_text(encoding="utf-8").splitlines()[:6]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--data", str(fairseq_fixture / "bin"),
               "--input", str(tmp_path / "in.txt"), "--beam", "4", "--output", str(tmp_path / "out.txt"), "--quiet"])
    assert rc == 0
    ours = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    assert ours == (valid_translation / "hyp.txt").read_text(encoding="utf-8").splitlines()[:6]


@pytest.mark.parametrize("extra,needle", [
    (["--subset", "test"], "no test.SRC-TGT"),
    (["--beam", "0"], "--beam"),
])
def test_bad_input_is_one_line_error(fairseq_fixture, tmp_path, capsys, extra, needle):
    rc = main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--data", str(fairseq_fixture / "bin"),
               "--output", str(tmp_path / "o.txt")] + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err


def test_sentencepiece_codec_round_trip(fairseq_fixture, tmp_path):
    import sentencepiece as spm

    from hat.data.dictionary import Dictionary
    spm.SentencePieceTrainer.train(input=str(fairseq_fixture / "raw" / "train.en"), model_prefix=str(tmp_path / "spm"),
                                   vocab_size=300, model_type="bpe", character_coverage=1.0, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    d = Dictionary()
    for i in range(sp.get_piece_size()):
        d.add_symbol(sp.id_to_piece(i))
    codec = TextCodec(d, d, str(tmp_path / "spm.model"))
    text = "A man is riding a bike."
    ids = codec.encode_source(text)
    assert int(ids[-1]) == d.eos() and len(ids) > len(text.split())
    assert codec.decode_target(ids) == text


def test_gpu_without_cuda_or_without_a_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    import torch
    from hat.cli import translate
    assert translate.main(["--onnx", str(tmp_path), "--input", "-", "--gpu"]) == 2
    assert "--gpu runs a --checkpoint" in capsys.readouterr().err
    if not torch.cuda.is_available():
        (tmp_path / "d").mkdir()
        rc = translate.main(["--checkpoint", str(tmp_path / "c.pt"), "--data", str(tmp_path / "d"), "--gpu"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "no CUDA device" in err
