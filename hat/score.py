"""BLEU helpers: SacreBLEU (detokenized, with signature) and tokenized BLEU (HAT's "normal" BLEU).

Tokenized BLEU reproduces fairseq's built-in scorer (``fairseq.scoring.bleu.Scorer``, the ``BLEU4 = ...`` line of
``fairseq-generate``) and ``multi-bleu.perl`` on already tokenized text: whitespace tokens, corpus-level clipped n-gram
counts up to 4-grams, brevity penalty ``min(1, exp(1 - ref_len / hyp_len))``, no smoothing. fairseq never lets an
``<unk>`` in the reference match; its ``T-`` lines print it escaped as ``<<unk>>``, which equally never matches a
hypothesis token, so scoring the strings gives fairseq's number.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from hat.errors import HatError

# fairseq's reference unk (Dictionary.string(..., escape_unk=True)); never counted as a match.
ESCAPED_UNK = "<<unk>>"


@dataclass
class TokenizedBleu:
    """Corpus statistics of tokenized BLEU (fairseq's ``Scorer`` fields)."""

    order: int = 4
    match: list[int] = field(default_factory=lambda: [0] * 4)
    count: list[int] = field(default_factory=lambda: [0] * 4)
    hyp_len: int = 0
    ref_len: int = 0

    def add(self, hyp_tokens: Sequence[str], ref_tokens: Sequence[str]) -> None:
        """Accumulate one sentence pair (lists of tokens)."""
        self.hyp_len += len(hyp_tokens)
        self.ref_len += len(ref_tokens)
        for n in range(1, self.order + 1):
            hyp = Counter(tuple(hyp_tokens[i:i + n]) for i in range(len(hyp_tokens) - n + 1))
            ref = Counter(tuple(ref_tokens[i:i + n]) for i in range(len(ref_tokens) - n + 1)
                          if ESCAPED_UNK not in ref_tokens[i:i + n] and "<unk>" not in ref_tokens[i:i + n])
            self.count[n - 1] += sum(hyp.values())
            self.match[n - 1] += sum(min(c, ref[g]) for g, c in hyp.items())

    def precisions(self) -> list[float]:
        """n-gram precisions (fractions, 0 when there are no n-grams)."""
        return [m / c if c > 0 else 0.0 for m, c in zip(self.match, self.count)]

    def brevity(self) -> float:
        if self.hyp_len == 0:
            return 0.0
        return min(1.0, math.exp(1.0 - self.ref_len / self.hyp_len))

    def score(self) -> float:
        """BLEU in [0, 100] (0 when any precision is 0, as fairseq)."""
        ps = self.precisions()
        if any(p <= 0 for p in ps):
            return 0.0
        return self.brevity() * math.exp(sum(math.log(p) for p in ps) / self.order) * 100.0

    def result_string(self) -> str:
        """fairseq's format: ``BLEU4 = 7.98, 26.3/11.9/5.3/2.4 (BP=1.000, ratio=1.709, syslen=..., reflen=...)``."""
        ps = "/".join(f"{p * 100:.1f}" for p in self.precisions())
        ratio = self.hyp_len / self.ref_len if self.ref_len else 0.0
        return (f"BLEU{self.order} = {self.score():.2f}, {ps} (BP={self.brevity():.3f}, ratio={ratio:.3f}, "
                f"syslen={self.hyp_len}, reflen={self.ref_len})")


def _check_lengths(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise HatError(f"hypotheses have {len(hyps)} lines but references have {len(refs)}")


def tokenized_bleu(hyps: Sequence[str], refs: Sequence[str]) -> TokenizedBleu:
    """Tokenized corpus BLEU of line-aligned hypothesis and reference strings (whitespace tokens).

    Raises:
        HatError: different line counts.
    """
    _check_lengths(hyps, refs)
    stats = TokenizedBleu()
    for h, r in zip(hyps, refs):
        stats.add(h.split(), r.split())
    return stats


def sacrebleu_corpus(hyps: Sequence[str], refs: Sequence[str], tokenize: str = "13a") -> tuple[float, str, str]:
    """SacreBLEU corpus BLEU of detokenized strings.

    Returns:
        (score, formatted result line, signature string).
    """
    _check_lengths(hyps, refs)
    metric = _sacrebleu_metric(tokenize)
    res = metric.corpus_score(list(hyps), [list(refs)])
    return float(res.score), str(res), str(metric.get_signature())


def _sacrebleu_metric(tokenize: str):
    """SacreBLEU's BLEU metric with ``tokenize``; an unknown tokenizer is a HatError."""
    from sacrebleu.metrics import BLEU

    if tokenize not in BLEU.TOKENIZERS:
        raise HatError(f"unknown SacreBLEU tokenizer '{tokenize}'; choose one of {', '.join(BLEU.TOKENIZERS)}")
    return BLEU(tokenize=tokenize)


def paired_bootstrap(hyps_a: Sequence[str], hyps_b: Sequence[str], refs: Sequence[str], n_samples: int = 1000,
                     tokenize: str = "13a") -> dict:
    """Paired bootstrap resampling (Koehn, 2004) of SacreBLEU: does system b differ from system a on this test set
    by more than the test set's sampling noise? SacreBLEU's own implementation (``sacrebleu --paired-bs``), with its
    fixed resampling seed (12345 unless ``SACREBLEU_SEED`` says otherwise), so the numbers repeat.

    Returns:
        ``{"bleu_a", "bleu_b", "delta_bleu", "p_value", "ci_a", "ci_b", "n_samples"}``: ``delta_bleu`` is b - a;
        ``p_value`` is SacreBLEU's two-sided one (the share of centred resampled |differences| above the observed
        one: small means the difference is not test-set noise); ``ci_*`` are the half-widths of each score's 95%
        bootstrap interval.
    """
    _check_lengths(hyps_a, refs)
    _check_lengths(hyps_b, refs)
    from sacrebleu.significance import PairedTest

    test = PairedTest([("a", list(hyps_a)), ("b", list(hyps_b))], {"BLEU": _sacrebleu_metric(tokenize)},
                      [list(refs)], test_type="bs", n_samples=n_samples)
    _, res = test()
    a, b = res["BLEU"]
    return {"bleu_a": round(float(a.score), 2), "bleu_b": round(float(b.score), 2),
            "delta_bleu": round(float(b.score - a.score), 2), "p_value": float(b.p_value),
            "ci_a": round(float(a.ci), 2), "ci_b": round(float(b.ci), 2), "n_samples": n_samples}


def has_loop(line: str, n: int = 4, repeats: int = 3) -> bool:
    """Whether a sentence repeats one whitespace-token ``n``-gram ``repeats`` or more times: the signature of a
    decoder caught in a repetition loop ("a white shirt and a white shirt and ...")."""
    toks = line.split()
    counts = Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))
    return any(c >= repeats for c in counts.values())


def loop_share(lines: Sequence[str], n: int = 4, repeats: int = 3) -> float:
    """Share of ``lines`` that contain a loop (:func:`has_loop`), in [0, 1]; 0.0 for no lines. Compare a system's
    share with its references' (natural text repeats too, rarely)."""
    return sum(has_loop(x, n, repeats) for x in lines) / len(lines) if lines else 0.0


def read_lines(path, allow_empty: bool = False) -> list[str]:
    """Lines of a text file without trailing newlines (UTF-8).

    Raises:
        HatError: a directory, not UTF-8, or (unless ``allow_empty``) an empty file.
    """
    import os
    if os.path.isdir(path):
        raise HatError(f"{path}: is a directory (expected a text file, one sentence a line)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
    except UnicodeDecodeError as e:
        raise HatError(f"{path}: not UTF-8 text (byte offset {e.start})") from None
    if not lines and not allow_empty:
        raise HatError(f"{path}: empty file (expected one sentence a line)")
    return lines


def parse_fairseq_generate(lines: Iterable[str]) -> dict:
    """Parse ``fairseq-generate`` output.

    Returns:
        ``{"H": {id: (score, text)}, "T": {id: text}, "S": {id: text}, "bleu_line": str | None}``; scores in
        fairseq's printed base-2 units.
    """
    out: dict = {"H": {}, "T": {}, "S": {}, "bleu_line": None}
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("H-"):
            tag, score, *text = line.split("\t")
            out["H"][int(tag[2:])] = (float(score), text[0] if text else "")
        elif line.startswith(("T-", "S-")):
            tag, *text = line.split("\t")
            out[tag[0]][int(tag[2:])] = text[0] if text else ""
        elif "BLEU" in line and line.startswith("Generate"):
            out["bleu_line"] = line
    return out
