"""``hat-preprocess``: raw parallel text -> sentencepiece BPE -> binarized fairseq data directory."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.data.preprocess import PreprocessSettings, preprocess


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``hat-preprocess``."""
    p = argparse.ArgumentParser(
        prog="hat-preprocess",
        description="Train a joint sentencepiece BPE on train src+tgt, encode all splits, build fairseq "
                    "dictionaries and binarize to fairseq's layout ({split}.{src}-{tgt}.{lang}.bin/.idx, "
                    "dict.{lang}.txt, spm.model, preprocess.json). Inputs are PREFIX.LANG or PREFIX.LANG.gz. "
                    "Reruns skip finished outputs.",
    )
    p.add_argument("-s", "--src", "--source-lang", dest="src", required=True, help="source language, e.g. de")
    p.add_argument("-t", "--tgt", "--target-lang", dest="tgt", required=True, help="target language, e.g. en")
    p.add_argument("--trainpref", required=True, help="train file prefix (PREFIX.de / PREFIX.de.gz)")
    p.add_argument("--validpref", help="valid prefix(es), comma-separated (valid, valid1, ...)")
    p.add_argument("--testpref", help="test prefix(es), comma-separated (test, test1, ...)")
    p.add_argument("--destdir", required=True, help="output directory")
    p.add_argument("--bpe", choices=["sentencepiece", "none"], default="sentencepiece",
                   help="'none': input is already tokenized (whitespace), as plain fairseq-preprocess")
    p.add_argument("--bpe-vocab", type=int, default=8000, help="sentencepiece vocabulary size (default 8000)")
    j = p.add_mutually_exclusive_group()
    j.add_argument("--joined-dictionary", dest="joined", action="store_true", default=True,
                   help="one dictionary for both languages (default)")
    j.add_argument("--no-joined-dictionary", dest="joined", action="store_false")
    p.add_argument("--max-train-lines", type=int, help="use only the first N training pairs")
    p.add_argument("--input-sentence-size", type=int, default=1_000_000,
                   help="sentences sampled (seeded) from train to fit sentencepiece (default 1e6)")
    p.add_argument("--character-coverage", type=float, default=1.0)
    p.add_argument("--threshold", type=int, default=0, help="drop tokens seen fewer times in train")
    p.add_argument("--padding-factor", type=int, default=8, help="pad dictionary size to a multiple (fairseq: 8)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="sentencepiece training threads (results unchanged)")
    p.add_argument("--force", action="store_true", help="delete previous outputs in destdir and redo all")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


@cli_main("hat-preprocess")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns 0, or 2 with one stderr line on bad input."""
    a = build_parser().parse_args(argv)
    settings = PreprocessSettings(
        src=a.src, tgt=a.tgt, trainpref=a.trainpref, destdir=a.destdir, validpref=a.validpref,
        testpref=a.testpref, bpe=a.bpe, bpe_vocab=a.bpe_vocab, joined_dictionary=a.joined,
        max_train_lines=a.max_train_lines, input_sentence_size=a.input_sentence_size,
        character_coverage=a.character_coverage, seed=a.seed, threshold=a.threshold,
        padding_factor=a.padding_factor, threads=a.threads,
    )
    preprocess(settings, force=a.force, log=None if a.quiet else print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
