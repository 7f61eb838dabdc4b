"""``hat-score``: corpus BLEU of a hypothesis file against a reference file.

Prints SacreBLEU (detokenized text, with its signature) and tokenized BLEU (HAT's "normal" BLEU: whitespace tokens,
fairseq-generate's ``BLEU4`` / multi-bleu.perl). ``--tokenized`` prints only the tokenized score; ``--json`` prints
one JSON object instead.

Example:
    hat-score --hyp hyp.txt --ref ref.txt
"""

from __future__ import annotations

import argparse
import json
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.score import read_lines, sacrebleu_corpus, tokenized_bleu


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-score", description=__doc__.split("\n\n")[0])
    p.add_argument("--hyp", required=True, help="hypotheses, one sentence a line")
    p.add_argument("--ref", required=True, help="references, line-aligned with --hyp")
    p.add_argument("--tokenized", action="store_true", help="only tokenized BLEU (text is already tokenized)")
    p.add_argument("--sacrebleu-tokenize", default="13a", help="SacreBLEU tokenizer (default 13a)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


@cli_main("hat-score")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    hyps, refs = read_lines(args.hyp), read_lines(args.ref)
    tok = tokenized_bleu(hyps, refs)
    result = {"tokenized_bleu": round(tok.score(), 4), "tokenized": tok.result_string(), "sentences": len(hyps)}
    if not args.tokenized:
        score, line, sig = sacrebleu_corpus(hyps, refs, tokenize=args.sacrebleu_tokenize)
        result.update({"sacrebleu": round(score, 4), "sacrebleu_line": line, "signature": sig})
    if args.json:
        print(json.dumps(result))
    else:
        if not args.tokenized:
            print(f"SacreBLEU: {result['sacrebleu_line']} | {result['signature']}")
        print(f"Tokenized BLEU: {result['tokenized']}")
    return 0
