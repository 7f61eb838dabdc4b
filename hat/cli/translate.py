"""``hat-translate``: beam-search translation of a binarized split or of raw text, with BLEU when references exist.

Checkpoints: hat's own (``hat-train``; a SuperTransformer needs ``--subnet``) or a fairseq ``transformer``
checkpoint (told apart by their keys). Output: one hypothesis per line in dataset-id (or input-line) order; tokens
joined by spaces, or decoded pieces with ``--bpe sentencepiece`` (implied when the data dir has ``spm.model``).

Example:
    hat-translate --checkpoint checkpoint_best.pt --data data-bin --subset valid --beam 4 --output hyp.txt
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from hat.cli.common import cli_main
from hat.errors import HatError
from hat.io import atomic_write

# fairseq's escaped reference unk: never matches a hypothesis token, as in fairseq's scorer.
ESCAPED_UNK = "<<unk>>"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-translate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="hat or fairseq checkpoint")
    p.add_argument("--subnet", help="subnet YAML (required for a SuperTransformer checkpoint)")
    p.add_argument("--data", required=True, help="binarized data dir (dict.*.txt, split .bin/.idx)")
    p.add_argument("--subset", default="test", help="split to translate (valid, test, ...)")
    p.add_argument("--input", help="raw text file to translate instead of --subset ('-' = stdin)")
    p.add_argument("--source-lang", "-s", help="source language (default: inferred from the data dir)")
    p.add_argument("--target-lang", "-t", help="target language (default: inferred)")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty")
    p.add_argument("--max-len-a", type=float, default=0.0, help="max length = a * src_len + b")
    p.add_argument("--max-len-b", type=int, default=200)
    p.add_argument("--min-len", type=int, default=1)
    p.add_argument("--unk-penalty", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=16, help="sentences per batch")
    p.add_argument("--max-sentences", type=int, default=0, metavar="N",
                   help="translate only the first N sentences (0 = all; quick checks)")
    p.add_argument("--bpe", choices=["none", "sentencepiece"], help="subword scheme to undo in the output "
                   "(default: sentencepiece when the data dir has spm.model, else none)")
    p.add_argument("--spm-model", help="sentencepiece model (default: DATA/spm.model)")
    p.add_argument("--output", "-o", help="hypotheses file (default: stdout)")
    p.add_argument("--reference-output", help="also write the references (same order and post-processing)")
    p.add_argument("--fairseq-output", help="also write fairseq-generate style S-/T-/H-/P- lines (scores in base 2, "
                   "as fairseq prints them) for diffing against fairseq-generate")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = leave as is)")
    p.add_argument("--quiet", action="store_true", help="no BLEU summary on stderr")
    return p


def load_any_model(path: str, subnet_path: Optional[str] = None):
    """Load a hat or fairseq checkpoint as an eval-mode model ready for decoding.

    A SuperTransformer is reduced to the subnet of ``subnet_path`` (required for it).

    Raises:
        HatError: unreadable checkpoint, or a SuperTransformer without a subnet.
    """
    from hat.train.checkpoint import load_model

    if not os.path.isfile(path):
        raise HatError(f"{path}: no such checkpoint")
    # load_model tells hat checkpoints (model_config/space keys) from fairseq ones (args/cfg keys).
    model, _ = load_model(path)
    if hasattr(model, "get_active_subnet"):
        if not subnet_path:
            raise HatError(f"{path} holds a SuperTransformer: pass --subnet subnet.yaml to pick a SubTransformer")
        from hat.space import SubnetConfig
        subnet = SubnetConfig.load_yaml(subnet_path)
        model.space.check(subnet)
        model = model.get_active_subnet(subnet)
    elif subnet_path:
        raise HatError(f"{path} holds a static Transformer; --subnet applies only to SuperTransformer checkpoints")
    return model.eval()


def infer_langs(data_dir: str, subset: str, src: Optional[str], tgt: Optional[str]) -> tuple[str, str]:
    """Source/target languages from ``SUBSET.SRC-TGT.SRC.idx`` (or ``dict.*.txt``) file names."""
    if src and tgt:
        return src, tgt
    pat = re.compile(rf"^{re.escape(subset)}\.([^.-]+)-([^.-]+)\.([^.]+)\.idx$")
    pairs = set()
    for f in os.listdir(data_dir):
        m = pat.match(f)
        if m and m.group(3) in (m.group(1), m.group(2)):
            pairs.add((m.group(1), m.group(2)))
    pairs = {(s, t) for s, t in pairs if (src in (None, s)) and (tgt in (None, t))}
    if len(pairs) == 1:
        return next(iter(pairs))
    if not pairs:
        dicts = sorted(Path(p).name[5:-4] for p in glob.glob(os.path.join(data_dir, "dict.*.txt")))
        if src and tgt is None and len(dicts) == 2:
            return src, next(d for d in dicts if d != src)
        raise HatError(f"{data_dir}: no {subset}.SRC-TGT.* files found; pass --source-lang/--target-lang "
                       f"(dictionaries there: {', '.join(dicts) or 'none'})")
    raise HatError(f"{data_dir}: several language pairs for {subset} ({sorted(pairs)}); pass --source-lang/--target-lang")


class TextCodec:
    """Raw text <-> token ids through an optional sentencepiece model and the fairseq dictionaries."""

    def __init__(self, src_dict, tgt_dict, spm_model: Optional[str]):
        self.src_dict, self.tgt_dict = src_dict, tgt_dict
        self.sp = None
        if spm_model:
            import sentencepiece as spm
            if not os.path.isfile(spm_model):
                raise HatError(f"{spm_model}: no such sentencepiece model")
            self.sp = spm.SentencePieceProcessor(model_file=spm_model)

    @property
    def bpe_symbol(self) -> Optional[str]:
        return "sentencepiece" if self.sp is not None else None

    def encode_source(self, line: str):
        text = " ".join(self.sp.encode(line.strip(), out_type=str)) if self.sp is not None else line
        return self.src_dict.encode_line(text, add_eos=True)

    def decode_target(self, ids, escape_unk: bool = False) -> str:
        return self.tgt_dict.string(ids, bpe_symbol=self.bpe_symbol,
                                    unk_string=ESCAPED_UNK if escape_unk else None)


def _write_lines(path: Optional[str], lines: Sequence[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    atomic_write(path, text)


@cli_main("hat-translate")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.beam < 1 or args.batch_size < 1:
        raise HatError("--beam and --batch-size must be >= 1")
    if args.reference_output and args.input is not None:
        raise HatError("--reference-output needs a binarized split with targets (not --input)")
    import torch

    from hat.data.dictionary import Dictionary
    from hat.data.indexed import MMapIndexedDataset
    from hat.generate import SequenceGenerator, translate_dataset
    from hat.score import sacrebleu_corpus, tokenized_bleu

    if args.threads:
        torch.set_num_threads(args.threads)
    if not os.path.isdir(args.data):
        raise HatError(f"{args.data}: no such data directory")
    src, tgt = infer_langs(args.data, args.subset, args.source_lang, args.target_lang) if args.input is None else \
        _langs_for_input(args)
    src_dict = Dictionary.load(os.path.join(args.data, f"dict.{src}.txt"))
    tgt_dict = Dictionary.load(os.path.join(args.data, f"dict.{tgt}.txt"))
    spm_model = args.spm_model
    if args.bpe == "none":
        spm_model = None
    elif spm_model is None and os.path.isfile(os.path.join(args.data, "spm.model")):
        spm_model = os.path.join(args.data, "spm.model")
    elif args.bpe == "sentencepiece" and spm_model is None:
        raise HatError(f"--bpe sentencepiece needs --spm-model (no spm.model in {args.data})")
    codec = TextCodec(src_dict, tgt_dict, spm_model)

    model = load_any_model(args.checkpoint, args.subnet)
    vocab = getattr(getattr(model, "cfg", None), "tgt_vocab_size", len(tgt_dict))
    if vocab != len(tgt_dict):
        raise HatError(f"model target vocabulary has {vocab} entries but {args.data}/dict.{tgt}.txt has "
                       f"{len(tgt_dict)}: wrong --data for this checkpoint?")
    gen = SequenceGenerator(model, beam_size=args.beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                            min_len=args.min_len, lenpen=args.lenpen, unk_penalty=args.unk_penalty,
                            pad=tgt_dict.pad(), eos=tgt_dict.eos(), unk=tgt_dict.unk())

    refs: Optional[list[str]] = None
    tgt_sizes = None
    if args.input is not None:
        stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
        with stream:
            sources = [codec.encode_source(line) for line in stream]
    else:
        prefix = os.path.join(args.data, f"{args.subset}.{src}-{tgt}.")
        src_ds = MMapIndexedDataset(prefix + src)
        sources = [src_ds[i] for i in range(len(src_ds))]
        if MMapIndexedDataset.exists(prefix + tgt):
            tgt_ds = MMapIndexedDataset(prefix + tgt)
            tgt_sizes = tgt_ds.sizes
            refs = [codec.decode_target(tgt_ds[i], escape_unk=True) for i in range(len(tgt_ds))]
    if args.max_sentences > 0:
        sources = sources[:args.max_sentences]
        refs = refs[:args.max_sentences] if refs is not None else None
        tgt_sizes = tgt_sizes[:args.max_sentences] if tgt_sizes is not None else None
    t0 = time.perf_counter()
    best = translate_dataset(gen, sources, batch_size=args.batch_size, tgt_sizes=tgt_sizes, pad=src_dict.pad())
    elapsed = time.perf_counter() - t0
    hyps = [codec.decode_target(h.tokens) for h in best]
    _write_lines(args.output, hyps)
    if args.reference_output:
        if refs is None:
            raise HatError(f"{args.subset} has no target side in {args.data}: nothing for --reference-output")
        _write_lines(args.reference_output, refs)
    if args.fairseq_output:
        _write_lines(args.fairseq_output, _fairseq_lines(best, hyps, refs, sources, codec))
    if not args.quiet:
        print(f"hat-translate: {len(hyps)} sentences in {elapsed:.1f}s ({len(hyps) / max(elapsed, 1e-9):.1f} "
              f"sentences/s), beam={args.beam}", file=sys.stderr)
        if refs is not None:
            tok = tokenized_bleu(hyps, refs)
            print(f"Generate {args.subset} with beam={args.beam}: {tok.result_string()}", file=sys.stderr)
            _, line, sig = sacrebleu_corpus(hyps, refs)
            print(f"SacreBLEU: {line} | {sig}", file=sys.stderr)
    return 0


def _fairseq_lines(best, hyps, refs, sources, codec) -> list[str]:
    """fairseq-generate's per-sentence block (dataset-id order): S, T, H (score / ln 2), P (per-token, base 2)."""
    ln2 = math.log(2)
    out = []
    for i, (h, text) in enumerate(zip(best, hyps)):
        out.append(f"S-{i}\t{codec.src_dict.string(sources[i], bpe_symbol=codec.bpe_symbol)}")
        if refs is not None:
            out.append(f"T-{i}\t{refs[i]}")
        out.append(f"H-{i}\t{h.score / ln2}\t{text}")
        out.append(f"P-{i}\t{' '.join(f'{p / ln2:.4f}' for p in h.positional_scores.tolist())}")
    return out


def _langs_for_input(args) -> tuple[str, str]:
    if args.source_lang and args.target_lang:
        return args.source_lang, args.target_lang
    # Any split's file names tell the pair (the --subset default need not exist for raw input).
    splits = sorted({f.split(".")[0] for f in os.listdir(args.data) if f.endswith(".idx")})
    for split in [args.subset] + [s for s in splits if s != args.subset]:
        try:
            return infer_langs(args.data, split, args.source_lang, args.target_lang)
        except HatError:
            continue
    dicts = sorted(Path(p).name[5:-4] for p in glob.glob(os.path.join(args.data, "dict.*.txt")))
    raise HatError(f"cannot tell source/target languages for --input; pass --source-lang/--target-lang "
                   f"(dictionaries in {args.data}: {', '.join(dicts) or 'none'})")
