"""hat-score: tokenized BLEU equals fairseq-generate's BLEU4 line; SacreBLEU with signature; one-line errors."""

from __future__ import annotations

import json

import pytest

from hat.cli.score import main
from hat.score import parse_fairseq_generate, tokenized_bleu


@pytest.fixture(scope="module")
def fairseq_out(fairseq_fixture):
    with open(fairseq_fixture / "generate_valid_beam4.txt", encoding="utf-8") as f:
        return parse_fairseq_generate(f)


@pytest.fixture
def hyp_ref(fairseq_out, tmp_path):
    ids = sorted(fairseq_out["H"])
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    hyp.write_text("".join(fairseq_out["H"][i][1] + "\n" for i in ids), encoding="utf-8")
    ref.write_text("".join(fairseq_out["T"][i] + "\n" for i in ids), encoding="utf-8")
    return hyp, ref


def test_tokenized_bleu_reproduces_fairseq_line(fairseq_out, hyp_ref, capsys):
    hyp, ref = hyp_ref
    assert main(["--hyp", str(hyp), "--ref", str(ref), "--tokenized"]) == 0
    out = capsys.readouterr().out
    # fairseq: "Generate valid with beam=4: BLEU4 = 7.98, 26.3/11.9/5.3/2.4 (BP=1.000, ratio=..., ...)"
    assert fairseq_out["bleu_line"].split(": ", 1)[1] in out


def test_json_has_both_scores_and_signature(hyp_ref, capsys):
    hyp, ref = hyp_ref
    assert main(["--hyp", str(hyp), "--ref", str(ref), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert abs(res["tokenized_bleu"] - 7.98) <= 0.005
    assert res["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert 0 < res["sacrebleu"] < 100 and res["sentences"] == 200


def test_line_count_mismatch_is_one_line_error(hyp_ref, tmp_path, capsys):
    hyp, _ = hyp_ref
    short = tmp_path / "short.txt"
    short.write_text("a b\n")
    assert main(["--hyp", str(hyp), "--ref", str(short)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "200 lines" in err


@pytest.mark.parametrize("hyp,ref,expected", [
    ("the cat sat on the mat", "the cat sat on the mat", 100.0),
    ("a b c d", "e f g h", 0.0),
])
def test_tokenized_bleu_edge_cases(hyp, ref, expected):
    assert tokenized_bleu([hyp], [ref]).score() == pytest.approx(expected)


def test_reference_unk_never_matches():
    # fairseq maps reference <unk> to an id no hypothesis token has; its T- lines print it as <<unk>>.
    a = tokenized_bleu(["a <unk> b c d"], ["a <unk> b c d"])
    b = tokenized_bleu(["a <unk> b c d"], ["a <<unk>> b c d"])
    assert a.match == b.match and a.match[0] == 4
