"""Load any translation checkpoint (hat or fairseq) as an eval-mode model and translate with it (PyTorch side).

Used by ``hat-translate --checkpoint``, ``hat-export``, the quickstart and the benchmarks; the torch-free side is
:mod:`hat.runtime` (``hat-translate --onnx``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from hat.errors import HatError


def load_any_model(path: str | os.PathLike, subnet_path: Optional[str | os.PathLike] = None):
    """Load a hat or fairseq checkpoint as an eval-mode model ready for decoding.

    A SuperTransformer is reduced to the subnet of ``subnet_path`` (required for it).

    Raises:
        HatError: unreadable checkpoint, a SuperTransformer without a subnet, or a subnet other than a static
            model's own architecture.
    """
    from hat.checkpoints import load_model

    if not os.path.isfile(path):
        raise HatError(f"{path}: no such checkpoint")
    # load_model tells hat checkpoints (model_config/space keys) from fairseq ones (args/cfg keys).
    model, _ = load_model(str(path))
    if hasattr(model, "get_active_subnet"):
        if not subnet_path:
            raise HatError(f"{path} holds a SuperTransformer: pass --subnet subnet.yaml to pick a SubTransformer")
        from hat.space import SubnetConfig
        subnet = SubnetConfig.load_yaml(subnet_path)
        model.space.check(subnet)
        model = model.get_active_subnet(subnet)
    elif subnet_path:
        # Accepted when it names the checkpoint's own architecture (HAT's generate.py always takes --configs).
        from hat.space import SubnetConfig
        if SubnetConfig.load_yaml(subnet_path) != model.subnet:
            raise HatError(f"{path} holds a static Transformer of another architecture than --subnet {subnet_path}; "
                           f"--subnet selects a SubTransformer of SuperTransformer checkpoints only")
    return model.eval()


@dataclass
class Translations:
    """What :func:`translate_checkpoint` decoded, in dataset-id (or input-line) order.

    Attributes:
        hyps: detokenized hypotheses (subwords undone).
        refs: the split's references, post-processed as the hypotheses (None: raw input, or no target side).
        best: the best :class:`hat.generate.Hypothesis` of each sentence (tokens, scores).
        sources: the source token ids.
        codec: the :class:`hat.runtime.text.TextCodec` that encoded and decoded them.
        seconds: decoding wall time.
    """

    hyps: list[str]
    refs: Optional[list[str]]
    best: list
    sources: list
    codec: object
    seconds: float


def translate_checkpoint(checkpoint: str | os.PathLike, data: str | os.PathLike, *, subset: str = "test",
                         subnet: Optional[str | os.PathLike] = None, input_lines: Optional[Sequence[str]] = None,
                         source_lang: Optional[str] = None, target_lang: Optional[str] = None, beam: int = 5,
                         lenpen: float = 1.0, max_len_a: float = 0.0, max_len_b: int = 200, min_len: int = 1,
                         unk_penalty: float = 0.0, batch_size: int = 16, max_sentences: int = 0,
                         bpe: Optional[str] = None, spm_model: Optional[str] = None, threads: int = 0,
                         warn: Optional[Callable[[str], None]] = None, gpu: bool = False) -> Translations:
    """Beam-search translation of a binarized split (or of raw ``input_lines``) with a checkpoint.

    Args:
        checkpoint: hat or fairseq checkpoint (:func:`load_any_model`).
        data: binarized data dir (``dict.*.txt``, the split's ``.bin``/``.idx``, ``spm.model`` if any).
        subset: split to translate when ``input_lines`` is None.
        subnet: subnet YAML (required for a SuperTransformer checkpoint).
        input_lines: raw source sentences to translate instead of ``subset``.
        source_lang: source language (default: inferred from ``data``).
        target_lang: target language (default: inferred).
        beam: beam size (1 = greedy).
        lenpen: length penalty.
        max_len_a: max length = ``max_len_a`` * source length + ``max_len_b``.
        max_len_b: see ``max_len_a``.
        min_len: minimum hypothesis length.
        unk_penalty: penalty added to the unknown token's score.
        batch_size: sentences per batch.
        max_sentences: translate only the first N sentences (0 = all).
        bpe: ``none`` or ``sentencepiece`` (default: sentencepiece when ``data`` has ``spm.model``).
        spm_model: sentencepiece model (default: ``data/spm.model``).
        threads: torch intra-op threads (0 = leave as is).
        warn: gets one line per input line longer than the model's positions (cut to fit; default
            ``warnings.warn``).
        gpu: run the model on the local CUDA GPU (the beam search stays on the CPU).

    Raises:
        HatError: missing data dir, dictionaries that do not fit the model, no sentencepiece model for ``bpe``, or
            ``gpu`` without CUDA.
    """
    import torch

    from hat.generate import SequenceGenerator, translate_dataset
    from hat.runtime.bounds import check_decoding

    check_decoding(beam, batch_size, max_len_a, max_len_b, min_len)
    if gpu and not torch.cuda.is_available():
        raise HatError("--gpu: no CUDA device is available to torch")
    if threads:
        torch.set_num_threads(threads)
    codec, langs = _load_codec(data, subset, input_lines is not None, source_lang, target_lang, bpe, spm_model)
    model = load_any_model(checkpoint, subnet).to("cuda" if gpu else "cpu")
    tgt_dict = codec.tgt_dict
    vocab = getattr(getattr(model, "cfg", None), "tgt_vocab_size", len(tgt_dict))
    if vocab != len(tgt_dict):
        raise HatError(f"model target vocabulary has {vocab} entries but the target dictionary in {data} has "
                       f"{len(tgt_dict)}: wrong --data for this checkpoint?")
    gen = SequenceGenerator(model, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b,
                            min_len=min_len, lenpen=lenpen, unk_penalty=unk_penalty,
                            pad=tgt_dict.pad(), eos=tgt_dict.eos(), unk=tgt_dict.unk())
    if input_lines is not None:
        from hat.runtime.bounds import cut_sources
        sources = cut_sources([codec.encode_source(line) for line in input_lines],
                              int(getattr(model.cfg, "max_source_positions", 1024)), tgt_dict.eos(), warn)
        refs, tgt_sizes = None, None
    else:
        sources, refs, tgt_sizes = _load_split(data, subset, langs, codec)
    if max_sentences > 0:
        sources = sources[:max_sentences]
        refs = refs[:max_sentences] if refs is not None else None
        tgt_sizes = tgt_sizes[:max_sentences] if tgt_sizes is not None else None
    t0 = time.perf_counter()
    best = translate_dataset(gen, sources, batch_size=batch_size, tgt_sizes=tgt_sizes, pad=codec.src_dict.pad())
    seconds = time.perf_counter() - t0
    return Translations(hyps=[codec.decode_target(h.tokens) for h in best], refs=refs, best=best, sources=sources,
                        codec=codec, seconds=seconds)


def _load_codec(data: str | os.PathLike, subset: str, raw_input: bool, source_lang: Optional[str],
                target_lang: Optional[str], bpe: Optional[str], spm_model: Optional[str]):
    """The data directory's dictionaries and sentencepiece model as one TextCodec, and the (inferred) pair."""
    from hat.data import Dictionary, infer_langs
    from hat.data.langs import infer_langs_any_split
    from hat.runtime.text import TextCodec

    if not os.path.isdir(data):
        raise HatError(f"{data}: no such data directory")
    # Raw input needs only the pair: any split's file names tell it (the --subset default need not exist).
    src, tgt = infer_langs_any_split(data, subset, source_lang, target_lang) if raw_input else \
        infer_langs(data, subset, source_lang, target_lang)
    src_dict = Dictionary.load(os.path.join(data, f"dict.{src}.txt"))
    tgt_dict = Dictionary.load(os.path.join(data, f"dict.{tgt}.txt"))
    if bpe == "none":
        spm_model = None
    elif spm_model is None and os.path.isfile(os.path.join(data, "spm.model")):
        spm_model = os.path.join(data, "spm.model")
    elif bpe == "sentencepiece" and spm_model is None:
        raise HatError(f"--bpe sentencepiece needs --spm-model (no spm.model in {data})")
    return TextCodec(src_dict, tgt_dict, spm_model), (src, tgt)


def _load_split(data: str | os.PathLike, subset: str, langs: tuple[str, str], codec):
    """A binarized split's source token ids, its references (None without a target side) and target sizes."""
    from hat.data import MMapIndexedDataset

    src, tgt = langs
    prefix = os.path.join(data, f"{subset}.{src}-{tgt}.")
    src_ds = MMapIndexedDataset(prefix + src)
    sources = [src_ds[i] for i in range(len(src_ds))]
    if not MMapIndexedDataset.exists(prefix + tgt):
        return sources, None, None
    tgt_ds = MMapIndexedDataset(prefix + tgt)
    refs = [codec.decode_target(tgt_ds[i], escape_unk=True) for i in range(len(tgt_ds))]
    return sources, refs, tgt_ds.sizes


def translate_on_device(device, export_dir: str | os.PathLike, sentences: Sequence[str], beam: int = 5,
                        batch_size: int = 16, trust_on_first_use: bool = False):
    """Deployment smoke test: translate ``sentences`` with the ONNX export ``export_dir`` on an SSH ``device``
    (:func:`hat.runtime.remote.translate_remote` over the device's transport).

    Args:
        device: a :class:`hat.latency.devices.DeviceConfig` with ``transport: ssh``.
        export_dir: an ONNX export with bundled dictionaries (``hat-export --data``).
        sentences: raw source sentences.
        beam, batch_size: decoding settings (checked against :mod:`hat.runtime.bounds`).
        trust_on_first_use: accept and save an unknown host key.

    Returns:
        :class:`hat.runtime.remote.DeviceTranslation`.

    Raises:
        HatError: not an ssh device, a bad export directory, connection/host-key failures, or the device could not
            translate (its error line is in the message).
    """
    from hat.resources import project_root
    from hat.runtime.bounds import check_decoding
    from hat.runtime.onnx import load_meta
    from hat.runtime.remote import translate_remote
    from hat.runtime.text import load_export_codec

    if device.transport != "ssh":
        raise HatError(f"device {device.name}: not an ssh device (transport {device.transport})")
    check_decoding(beam, batch_size)
    meta = load_meta(export_dir)
    load_export_codec(export_dir, meta)  # fail here, not on the device, when the dictionaries are wrong
    return translate_remote(device.open_transport(trust_on_first_use), export_dir, sentences,
                            project_root() / "device_profiling" / "translate.py", beam=beam, batch_size=batch_size,
                            threads=device.threads)
