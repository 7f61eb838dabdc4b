"""Raw parallel text -> joint SentencePiece BPE -> fairseq dictionaries + binarized mmap datasets.

Output layout in ``destdir`` (what ``fairseq-preprocess`` writes, plus our extras)::

    spm.model, spm.vocab                 joint sentencepiece model (absent with bpe="none")
    bpe/{split}.{lang}                   encoded text (pieces separated by spaces); bpe/dict.*.txt staged dicts
    dict.{src}.txt, dict.{tgt}.txt       fairseq dictionaries (identical when joined); written last, so their
                                         presence means the directory is complete
    {split}.{src}-{tgt}.{lang}.bin/.idx  mmap datasets; splits train, valid[, valid1..], test[, test1..]
    {split}.raw.{lang}                   raw valid/test text (BLEU references for detokenized output)
    preprocess.json                      settings, status, per-split counts

Resumable: every output is written to a temp file and renamed; a rerun skips outputs that exist (and rebuilds
everything downstream of a stage it had to redo). A rerun with different settings is refused unless ``force``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from hat.data.dictionary import Dictionary, tokenize_line
from hat.data.indexed import MMapIndexedDatasetBuilder, best_fitting_int_dtype, dataset_exists
from hat.data.textio import count_lines, read_lines, resolve_text, write_lines_atomic
from hat.io import TEMP_MARK, atomic_write
from hat.errors import HatError

_CHUNK = 10000  # lines encoded per sentencepiece call: bounded memory on WMT-sized files


@dataclass
class PreprocessSettings:
    """Everything that determines ``hat-preprocess`` output (``threads`` does not change results)."""

    src: str
    tgt: str
    trainpref: str
    destdir: str
    # Comma-separated prefixes; the n-th becomes split valid, valid1, ... (test, test1, ...) as in fairseq.
    validpref: Optional[str] = None
    testpref: Optional[str] = None
    # "sentencepiece": train a joint BPE model on train src+tgt; "none": input is already tokenized.
    bpe: str = "sentencepiece"
    bpe_vocab: int = 8000
    joined_dictionary: bool = True
    # Use only the first N training pairs (quick runs, tests); None = all.
    max_train_lines: Optional[int] = None
    # Sentences (src and tgt lines together) sampled, seeded, from train to fit sentencepiece.
    input_sentence_size: int = 1_000_000
    character_coverage: float = 1.0
    seed: int = 1
    # fairseq dictionary options: drop tokens seen fewer times; pad vocab size to a multiple.
    threshold: int = 0
    padding_factor: int = 8
    threads: int = 1

    def fingerprint(self) -> dict:
        """The settings that affect outputs (compared on resume)."""
        d = dataclasses.asdict(self)
        for k in ("threads", "destdir"):
            d.pop(k)
        for k in ("trainpref", "validpref", "testpref"):
            if d[k]:
                d[k] = ",".join(str(Path(p).resolve()) for p in d[k].split(","))
        return d

    def splits(self) -> list[tuple[str, str]]:
        """``[(split_name, prefix), ...]`` with fairseq's names: train, valid, valid1, ..., test, test1, ..."""
        out = [("train", self.trainpref)]
        for kind, prefs in (("valid", self.validpref), ("test", self.testpref)):
            for i, p in enumerate(x for x in (prefs or "").split(",") if x):
                out.append((kind if i == 0 else f"{kind}{i}", p))
        return out


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _sample_training_text(files: list[Path], limit: Optional[int], size: int, seed: int) -> list[str]:
    """Reservoir-sample ``size`` non-empty lines from ``files`` (seeded), keeping file order for determinism."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    seen = 0
    for f in files:
        for line in read_lines(f, limit):
            line = line.strip()
            if not line:
                continue
            if len(reservoir) < size:
                reservoir.append((seen, line))
            else:
                j = rng.randrange(seen + 1)
                if j < size:
                    reservoir[j] = (seen, line)
            seen += 1
    reservoir.sort()
    return [line for _, line in reservoir]


def train_sentencepiece(settings: PreprocessSettings, train_files: list[Path], out_prefix: Path) -> int:
    """Train the joint BPE model to ``out_prefix.model/.vocab``; return the sentencepiece vocabulary size.

    sentencepiece's own ``<s>``/``</s>`` are disabled: the fairseq dictionary supplies bos/eos/pad.
    """
    import sentencepiece as spm

    text = _sample_training_text(train_files, settings.max_train_lines, settings.input_sentence_size, settings.seed)
    if not text:
        raise HatError(f"{settings.trainpref}: training text is empty")
    spm.set_random_generator_seed(settings.seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(text),
            model_writer=model,
            model_type="bpe",
            vocab_size=settings.bpe_vocab,
            character_coverage=settings.character_coverage,
            input_sentence_size=0,  # we sampled already, deterministically
            shuffle_input_sentence=False,
            num_threads=max(1, settings.threads),
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            minloglevel=2,
        )
    except RuntimeError as e:
        msg = " ".join(str(e).split())
        hint = " (lower --bpe-vocab)" if "vocab" in msg.lower() else ""
        raise HatError(f"sentencepiece training failed: {msg}{hint}") from None
    data = _normalize_model(model.getvalue())
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(data)
    # vocab first, model last: a complete .model marks a complete pair
    write_lines_atomic(out_prefix.with_name(out_prefix.name + ".vocab"),
                       (f"{sp.IdToPiece(i)}\t{sp.GetScore(i):g}" for i in range(sp.GetPieceSize())))
    atomic_write(out_prefix.with_name(out_prefix.name + ".model"), data)
    return sp.GetPieceSize()


def _normalize_model(data: bytes) -> bytes:
    """Zero ``trainer_spec.num_threads`` in the model proto so the file bytes do not depend on ``threads``."""
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb  # needs protobuf; skip quietly without it
    except Exception:
        return data
    m = pb.ModelProto()
    m.ParseFromString(data)
    m.trainer_spec.num_threads = 1
    return m.SerializeToString()


def _encoded_lines(bpe, path: Path, limit: Optional[int]) -> Iterator[str]:
    chunk: list[str] = []
    for line in read_lines(path, limit):
        chunk.append(line)
        if len(chunk) >= _CHUNK:
            yield from bpe.encode_lines(chunk)
            chunk = []
    if chunk:
        yield from bpe.encode_lines(chunk)


def binarize(text_path: Path, d: Dictionary, out_prefix: Path) -> dict:
    """Binarize whitespace-tokenized ``text_path`` with ``d`` to ``out_prefix.bin/.idx`` (+eos per line).

    Returns:
        ``{"lines", "tokens" (incl. eos), "unk" (tokens replaced by <unk>)}``.
    """
    builder = MMapIndexedDatasetBuilder(f"{out_prefix}.bin", dtype=best_fitting_int_dtype(len(d)))
    n = ntok = nunk = 0
    idx, unk, eos = d.indices, d.unk(), d.eos()
    try:
        for line in read_lines(text_path):
            words = tokenize_line(line)
            ids = [idx.get(w, unk) for w in words]
            # fairseq counts replaced tokens only (a literal "<unk>" in the text is not a replacement).
            nunk += sum(1 for w, i in zip(words, ids) if i == unk and w != d.unk_word)
            ids.append(eos)
            builder.add_item(np.asarray(ids, dtype=np.int64))
            n += 1
            ntok += len(ids)
    except BaseException:
        builder.abort()
        raise
    builder.finalize(f"{out_prefix}.idx")
    return {"lines": n, "tokens": ntok, "unk": nunk}


def _clean_outputs(dest: Path) -> None:
    """Remove what a previous run wrote (only our own file patterns)."""
    for pat in ("spm.model", "spm.vocab", "dict.*.txt", "*.bin", "*.idx", "*.raw.*", "preprocess.json", "*.tmp",
                f".*{TEMP_MARK}*"):
        for p in dest.glob(pat):
            p.unlink()
    if (dest / "bpe").is_dir():
        shutil.rmtree(dest / "bpe")


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def preprocess(settings: PreprocessSettings, force: bool = False,
               log: Optional[Callable[[str], None]] = _log_default) -> dict:
    """Run the whole pipeline (see module docstring); return the ``preprocess.json`` content.

    Each stage reuses what a previous run with the same settings finished; once a stage is rebuilt, every later one
    is too.

    Args:
        settings: what to do.
        force: delete previous outputs in ``destdir`` and redo everything.
        log: progress sink (one line per step), None for silence.

    Raises:
        HatError: missing inputs, misaligned line counts, bad settings, or ``destdir`` holding output of
            different settings (without ``force``).
    """
    say = log or (lambda _m: None)
    s = settings
    _check_settings(s)
    langs = (s.src, s.tgt)
    # Inputs first, so a typo fails before anything is written.
    inputs = {(split, lang): resolve_text(pref, lang) for split, pref in s.splits() for lang in langs}
    dest, previous, meta = _start(s, force)
    limits = {split: (s.max_train_lines if split == "train" else None) for split, _ in s.splits()}
    counts = _count_pairs(s, inputs, limits)
    text_files, redo = _subwords(s, dest, inputs, limits, counts, meta, say)
    dicts, dict_paths, redo = _dictionaries(s, dest, text_files, redo, say)
    meta["vocab"] = {lang: len(dicts[lang]) for lang in langs}
    _binarize_splits(s, dest, inputs, text_files, dicts, counts, previous, meta, redo, say)
    for lang in langs:
        final = dest / f"dict.{lang}.txt"
        if redo or not final.is_file() or final.read_bytes() != dict_paths[lang].read_bytes():
            atomic_write(final, dict_paths[lang].read_bytes())
    meta["status"] = "done"
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write_json(dest / "preprocess.json", meta)
    say(f"done: {dest} (vocab {meta['vocab'][s.src]}, train {counts['train']} pairs)")
    return meta


def _check_settings(s: PreprocessSettings) -> None:
    if s.bpe not in ("sentencepiece", "none"):
        raise HatError(f"bad --bpe '{s.bpe}': expected sentencepiece or none")
    if s.bpe == "sentencepiece" and s.bpe_vocab < 8:
        raise HatError(f"--bpe-vocab must be at least 8, got {s.bpe_vocab}")
    if s.src == s.tgt:
        raise HatError(f"source and target language are both '{s.src}'")
    if s.max_train_lines is not None and s.max_train_lines <= 0:
        raise HatError(f"--max-train-lines must be positive, got {s.max_train_lines}")


def _start(s: PreprocessSettings, force: bool) -> tuple[Path, dict, dict]:
    """The output folder (cleaned with ``force``), the previous run's ``preprocess.json`` (same settings only) and
    this run's, written as ``running``."""
    dest = Path(s.destdir)
    meta_path = dest / "preprocess.json"
    if force and dest.is_dir():
        _clean_outputs(dest)
    dest.mkdir(parents=True, exist_ok=True)
    previous: dict = {}
    if meta_path.is_file():
        try:
            previous = json.loads(meta_path.read_text())
        except ValueError:
            previous = {}
        if previous.get("settings") != s.fingerprint():
            raise HatError(f"{dest}: holds output of different preprocessing settings; use --force to redo")
    meta = {"settings": s.fingerprint(), "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(meta_path, meta)
    return dest, previous, meta


def _count_pairs(s: PreprocessSettings, inputs: dict, limits: dict) -> dict[str, int]:
    """Lines per split (both sides must agree; train must not be empty)."""
    counts: dict[str, int] = {}
    for split, _ in s.splits():
        n = {lang: count_lines(inputs[split, lang], limits[split]) for lang in (s.src, s.tgt)}
        if n[s.src] != n[s.tgt]:
            raise HatError(f"{split}: {inputs[split, s.src]} has {n[s.src]} lines but "
                           f"{inputs[split, s.tgt]} has {n[s.tgt]}")
        counts[split] = n[s.src]
    if counts["train"] == 0:
        raise HatError(f"{inputs['train', s.src]}: training data is empty")
    return counts


def _subwords(s: PreprocessSettings, dest: Path, inputs: dict, limits: dict, counts: dict, meta: dict,
              say) -> tuple[dict, bool]:
    """Stages 1-2: the sentencepiece model and every split encoded with it (or pre-tokenized input, train cut to
    ``max_train_lines``). Returns the text file per (split, lang) and whether anything was rebuilt."""
    redo = False
    text_files: dict[tuple[str, str], Path] = dict(inputs)
    langs = (s.src, s.tgt)
    if s.bpe == "sentencepiece":
        from hat.data.bpe import SentencePieceBPE
        if not (dest / "spm.model").is_file():
            say(f"training sentencepiece BPE (vocab {s.bpe_vocab}) on {counts['train']} train pairs")
            train_sentencepiece(s, [inputs["train", lang] for lang in langs], dest / "spm")
            redo = True
        bpe = SentencePieceBPE(dest / "spm.model")
        meta["spm_vocab"] = len(bpe.sp)
        (dest / "bpe").mkdir(exist_ok=True)
        for split, _ in s.splits():
            for lang in langs:
                out = dest / "bpe" / f"{split}.{lang}"
                text_files[split, lang] = out
                if redo or not out.is_file():
                    say(f"encoding {split}.{lang}")
                    write_lines_atomic(out, _encoded_lines(bpe, inputs[split, lang], limits[split]))
                    redo = True
    elif s.max_train_lines is not None:
        # Pre-tokenized input: binarize reads whole files, so cut train here.
        (dest / "bpe").mkdir(exist_ok=True)
        for lang in langs:
            out = dest / "bpe" / f"train.{lang}"
            text_files["train", lang] = out
            if redo or not out.is_file():
                write_lines_atomic(out, read_lines(inputs["train", lang], s.max_train_lines))
                redo = True
    return text_files, redo


def _dictionaries(s: PreprocessSettings, dest: Path, text_files: dict, redo: bool, say) -> tuple[dict, dict, bool]:
    """Stage 3: the dictionaries, staged in ``bpe/`` and published to ``destdir`` only when everything is binarized,
    so "dict.{src}.txt exists" means "finished" to readers (hat-train checks exactly that)."""
    langs = (s.src, s.tgt)
    (dest / "bpe").mkdir(exist_ok=True)
    dict_paths = {lang: dest / "bpe" / f"dict.{lang}.txt" for lang in langs}
    if not redo and all(p.is_file() for p in dict_paths.values()):
        return {lang: Dictionary.load(dict_paths[lang]) for lang in langs}, dict_paths, redo
    say("building dictionaries")
    if s.joined_dictionary:
        c: Counter = Counter()
        for lang in langs:
            Dictionary.count_tokens(read_lines(text_files["train", lang]), c)
        joined = Dictionary.build(c, s.threshold, padding_factor=s.padding_factor)
        dicts = {lang: joined for lang in langs}
    else:
        dicts = {lang: Dictionary.build(Dictionary.count_tokens(read_lines(text_files["train", lang])),
                                        s.threshold, padding_factor=s.padding_factor) for lang in langs}
    for lang in langs:
        dicts[lang].save(dict_paths[lang])
    return dicts, dict_paths, True


def _binarize_splits(s: PreprocessSettings, dest: Path, inputs: dict, text_files: dict, dicts: dict, counts: dict,
                     previous: dict, meta: dict, redo: bool, say) -> None:
    """Stage 4: every split binarized (+ raw references), ``preprocess.json`` updated per split so a resume can
    reuse counts."""
    stats: dict[str, dict] = {}
    for split, _ in s.splits():
        stats[split] = {"lines": counts[split]}
        for lang in (s.src, s.tgt):
            prefix = dest / f"{split}.{s.src}-{s.tgt}.{lang}"
            old = None if redo or not dataset_exists(prefix) else \
                previous.get("splits", {}).get(split, {}).get(lang)
            if old is None:
                if redo or not dataset_exists(prefix):
                    say(f"binarizing {split}.{lang}")
                st = binarize(text_files[split, lang], dicts[lang], prefix)
                old = {"tokens": st["tokens"], "unk": st["unk"]}
            stats[split][lang] = old
            if split != "train":
                raw = dest / f"{split}.raw.{lang}"
                if redo or not raw.is_file():
                    write_lines_atomic(raw, read_lines(inputs[split, lang]))
        meta["splits"] = stats
        _write_json(dest / "preprocess.json", meta)
