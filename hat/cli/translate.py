"""``hat-translate``: beam-search translation of a binarized split or of raw text, with BLEU when references exist.

Checkpoints: hat's own (``hat-train``; a SuperTransformer needs ``--subnet``), a fairseq ``transformer``
checkpoint, or HAT's (a SuperTransformer with ``--subnet HAT_*.yml``, or a SubTransformer checkpoint), told apart by
their keys. Output: one hypothesis per line in dataset-id (or input-line) order; tokens
joined by spaces, or decoded pieces with ``--bpe sentencepiece`` (implied when the data dir has ``spm.model``).

With ``--onnx EXPORT_DIR`` (an ``hat-export --format onnx --data ...`` folder) raw text is translated by the
torch-free runtime (:class:`hat.runtime.OnnxTranslator`, numpy + onnxruntime + sentencepiece; torch is never imported)
with the bundled dictionaries and sentencepiece model; same hypotheses as the checkpoint it was exported from.

Examples:
    hat-translate --checkpoint checkpoint_best.pt --data data-bin --subset valid --beam 4 --output hyp.txt
    hat-translate --onnx export/onnx --input sentences.de --output sentences.en
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.errors import HatError
from hat.io import atomic_write

# Options that only make sense for the PyTorch path (a checkpoint plus a binarized data directory).
CHECKPOINT_ONLY = ("subnet", "data", "bpe", "spm_model", "reference_output", "fairseq_output")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-translate", description=__doc__.split("\n\n")[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="hat or fairseq checkpoint")
    model.add_argument("--onnx", metavar="EXPORT_DIR", help="ONNX export directory (hat-export --format onnx "
                       "--data ...): torch-free, raw text only (--input)")
    model.add_argument("--ctranslate2", metavar="EXPORT_DIR", help="CTranslate2 export directory (hat-export "
                       "--format ctranslate2 --data ...): torch-free, raw text only (--input)")
    p.add_argument("--subnet", help="subnet YAML (required for a SuperTransformer checkpoint)")
    p.add_argument("--data", help="binarized data dir (dict.*.txt, split .bin/.idx); required with --checkpoint")
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
    p.add_argument("--threads", type=int, default=0, help="intra-op threads of torch / onnxruntime (0 = leave as is)")
    p.add_argument("--device", help="with --onnx: translate on this SSH device (configs/devices name or YAML) as a "
                   "deployment smoke test; the device needs python3, numpy, onnxruntime, sentencepiece")
    p.add_argument("--trust-on-first-use", action="store_true", help="--device: accept and save an unknown host key")
    p.add_argument("--gpu", action="store_true", help="with --checkpoint: run the model on the local CUDA GPU")
    p.add_argument("--quiet", action="store_true", help="no BLEU summary on stderr")
    return p


def _write_lines(path: Optional[str], lines: Sequence[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    atomic_write(path, text)


@cli_main("hat-translate")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from hat.runtime.bounds import check_decoding
    check_decoding(args.beam, args.batch_size, args.max_len_a, args.max_len_b, args.min_len)
    if args.reference_output and args.input is not None:
        raise HatError("--reference-output needs a binarized split with targets (not --input)")
    if args.device and not args.onnx:
        raise HatError("--device translates with an export: pass --onnx EXPORT_DIR")
    if args.gpu and not args.checkpoint:
        raise HatError("--gpu runs a --checkpoint with PyTorch on the local CUDA GPU")
    if args.onnx or args.ctranslate2:
        return _translate_export(args)
    if not args.data:
        raise HatError("--checkpoint needs --data (the binarized data directory with its dictionaries)")
    from hat.score import sacrebleu_corpus, tokenized_bleu
    from hat.translate import translate_checkpoint

    lines = _read_input(args.input) if args.input is not None else None
    done = translate_checkpoint(
        args.checkpoint, args.data, subset=args.subset, subnet=args.subnet, input_lines=lines,
        source_lang=args.source_lang, target_lang=args.target_lang, beam=args.beam, lenpen=args.lenpen,
        max_len_a=args.max_len_a, max_len_b=args.max_len_b, min_len=args.min_len, unk_penalty=args.unk_penalty,
        batch_size=args.batch_size, max_sentences=args.max_sentences, bpe=args.bpe, spm_model=args.spm_model,
        threads=args.threads, warn=_warn, gpu=args.gpu)
    best, hyps, refs, elapsed = done.best, done.hyps, done.refs, done.seconds
    _write_lines(args.output, hyps)
    if args.reference_output:
        if refs is None:
            raise HatError(f"{args.subset} has no target side in {args.data}: nothing for --reference-output")
        _write_lines(args.reference_output, refs)
    if args.fairseq_output:
        _write_lines(args.fairseq_output, _fairseq_lines(best, hyps, refs, done.sources, done.codec))
    if not args.quiet:
        print(f"hat-translate: {len(hyps)} sentences in {elapsed:.1f}s ({len(hyps) / max(elapsed, 1e-9):.1f} "
              f"sentences/s), beam={args.beam}", file=sys.stderr)
        if refs is not None:
            tok = tokenized_bleu(hyps, refs)
            print(f"Generate {args.subset} with beam={args.beam}: {tok.result_string()}", file=sys.stderr)
            _, line, sig = sacrebleu_corpus(hyps, refs)
            print(f"SacreBLEU: {line} | {sig}", file=sys.stderr)
    return 0


def _warn(message: str) -> None:
    print(f"hat-translate: warning: {message}", file=sys.stderr, flush=True)


def _read_input(path: str) -> list[str]:
    """The lines of ``path`` (``-``: stdin), split at ``\\n`` only, one trailing ``\\r`` dropped: a file and the same
    bytes on stdin give the same lines (a bare ``\\r`` stays inside its line)."""
    if path == "-":
        if sys.stdin is None:
            raise HatError("stdin is closed: nothing to translate (pass --input FILE)")
        data = sys.stdin.buffer.read()
    else:
        if not os.path.isfile(path):
            raise HatError(f"{path}: no such input file")
        with open(path, "rb") as f:
            data = f.read()
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# Lines translated (and written) together: a long input's output appears as it is made, so an interruption keeps
# everything before it.
STREAM_LINES = 1000


def _stream(path: Optional[str], lines: Sequence[str], translate) -> int:
    """Translate ``lines`` in chunks of :data:`STREAM_LINES` with ``translate(chunk, first_line)``, writing each
    chunk's output (in input order) before the next starts; returns the number of lines written."""
    if path is None or path == "-":
        if sys.stdout is None or getattr(sys.stdout, "name", "") == os.devnull:
            raise HatError("stdout is closed: nowhere to write the translations (pass --output FILE)")
        out, close = sys.stdout, False
    else:
        from hat.io import open_stream_output
        out, close = open_stream_output(Path(path).resolve()), True  # a link the user named is followed on purpose
    try:
        for start in range(0, len(lines), STREAM_LINES):
            hyps = translate(lines[start:start + STREAM_LINES], start + 1)
            out.write("".join(h + "\n" for h in hyps))
            out.flush()
    finally:
        if close:
            out.close()
    return len(lines)


def _translate_export(args) -> int:
    """``--onnx`` / ``--ctranslate2``: raw text through the torch-free runtime (nothing here may import torch)."""
    flag = "--onnx" if args.onnx else "--ctranslate2"
    given = [f"--{k.replace('_', '-')}" for k in CHECKPOINT_ONLY if getattr(args, k)]
    if given:
        raise HatError(f"{', '.join(given)} apply to --checkpoint, not {flag} (the export bundles its dictionaries "
                       f"and spm.model)")
    if args.input is None:
        raise HatError(f"{flag} translates raw text: pass --input FILE (or - for stdin)")
    if args.device:
        return _translate_on_device(args)
    if args.onnx:
        from hat.runtime import OnnxTranslator
        tr = OnnxTranslator(args.onnx, beam_size=args.beam, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                            min_len=args.min_len, lenpen=args.lenpen, unk_penalty=args.unk_penalty,
                            threads=args.threads, src_lang=args.source_lang, tgt_lang=args.target_lang)
        tr.codec  # check the bundled dictionaries before reading any input
    else:
        from hat.runtime.ctranslate2 import CTranslate2Translator
        tr = CTranslate2Translator(args.ctranslate2, beam_size=args.beam, max_len_a=args.max_len_a,
                                   max_len_b=args.max_len_b, min_len=args.min_len, lenpen=args.lenpen,
                                   threads=args.threads or 1, src_lang=args.source_lang,
                                   tgt_lang=args.target_lang)
    lines = _read_input(args.input)
    if args.max_sentences > 0:
        lines = lines[:args.max_sentences]
    t0 = time.perf_counter()
    n = _stream(args.output, lines, lambda chunk, first: tr.translate(chunk, batch_size=args.batch_size, warn=_warn,
                                                                        first_line=first))
    elapsed = time.perf_counter() - t0
    if not args.quiet:
        print(f"hat-translate: {n} sentences in {elapsed:.1f}s ({n / max(elapsed, 1e-9):.1f} "
              f"sentences/s), beam={args.beam}, {'onnxruntime' if args.onnx else 'ctranslate2'}", file=sys.stderr)
    return 0


def _translate_on_device(args) -> int:
    from hat.latency.devices import load_device
    from hat.translate import translate_on_device

    device = load_device(args.device)
    lines = _read_input(args.input)
    if args.max_sentences > 0:
        lines = lines[:args.max_sentences]
    res = translate_on_device(device, args.onnx, lines, beam=args.beam, batch_size=args.batch_size,
                              trust_on_first_use=args.trust_on_first_use)
    _write_lines(args.output, res.translations)
    if not args.quiet:
        print(f"hat-translate: {len(lines)} sentences on device {device.name} ({res.host}, {res.runtime_version}, "
              f"quantize {res.quantize}) in {res.seconds:.2f}s, beam={args.beam}", file=sys.stderr)
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
