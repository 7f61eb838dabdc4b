"""Export a static SubTransformer to ONNX: an encoder graph and a one-step decoder graph with an explicit K/V cache.

Files written by :func:`export_onnx` into ``out_dir``:

``encoder.onnx``
    Input:
      * ``src_tokens`` int64 ``[batch, src_len]`` (left- or right-padded with ``padding_idx``; padding is read from
        the tokens, as fairseq does, so there is no ``src_lengths`` input)

    Outputs (the encoder already computes what every decoder step needs, once per sentence):
      * ``encoder_padding_mask`` bool ``[batch, src_len]`` (True = pad)
      * ``cross_k_{i}``, ``cross_v_{i}`` float32 ``[batch, ende_heads_i, n_i * src_len, ende_head_dim_i]`` for
        decoder layer ``i`` (``n_i`` = encoder layers it attends to, HAT's arbitrary encoder-decoder attention)

``decoder_step.onnx`` (one incremental step of the beam search for ``rows`` = batch x beam rows)
    Inputs:
      * ``tokens`` int64 ``[rows, 1]``: previous output token (EOS = ``eos_idx`` at step 0)
      * ``step`` int64 scalar (0-dim): 0-based position of ``tokens``
      * ``reorder`` int64 ``[rows]``: for each row, the row of the previous step it continues (the identity at step
        0); the self-attention caches are reordered with it inside the graph
      * ``bias`` float32 ``[tgt_vocab]``: added to the log-probabilities before the top-k (the beam search's masks:
        pad, ``<unk>`` penalty, EOS before ``min_len`` or only EOS at the length limit)
      * ``k`` int64 ``[1]``: candidates per row (2 x beam)
      * ``encoder_padding_mask``, ``cross_k_{i}``, ``cross_v_{i}``: the encoder outputs, rows repeated per beam
        (``np.repeat(x, beam, axis=0)``); rows of finished sentences are dropped by the caller
      * ``self_k_{i}``, ``self_v_{i}`` float32 ``[prev_rows, self_heads_i, past_len, self_head_dim_i]``: keys/values of
        the previous steps (``past_len`` = step; zeros of shape ``[rows, H, 0, d]`` at step 0)

    Outputs:
      * ``cand_lprobs`` float32 ``[rows, k]``, ``cand_ids`` int64 ``[rows, k]``: per row, the ``k`` best
        ``log_softmax(logits) + bias`` and their token ids, best first (ties: lower id first)
      * ``new_self_k_{i}``, ``new_self_v_{i}`` ``[rows, self_heads_i, past_len + 1, self_head_dim_i]``: feed back
        as ``self_k_{i}``/``self_v_{i}`` as they are (the next step's ``reorder`` reorders them)

    Batch, source length, ``past_len`` and ``k`` axes are dynamic.

``meta.json``
    ``format`` (``"hat-onnx-2"``), ``quantize`` (``"none"`` or ``"int8"``, :func:`quantize_onnx`), ``source_lang``
    / ``target_lang`` (when :func:`bundle_text_files` copied ``dict.*.txt`` and ``spm.model`` beside the graphs), ``opset``, ``exporter``, ``subnet`` (SubnetConfig dict), ``qkv_dim``,
    ``src_vocab_size``, ``tgt_vocab_size``, ``padding_idx``, ``eos_idx``, ``bos_idx`` (0), ``encoder_layers``,
    ``decoder_layers`` (a list, per layer: ``self_heads``, ``self_head_dim``, ``ende_heads``, ``ende_head_dim``,
    ``num_ende_layers`` and its I/O names ``self_k``, ``self_v``, ``cross_k``, ``cross_v``, ``new_self_k``,
    ``new_self_v``), ``max_target_positions``, and for each graph ``encoder`` / ``decoder_step``: ``file``,
    ``inputs``, ``outputs`` (names in order); ``decoder_step.from_encoder`` lists the encoder outputs the step
    takes (same names), ``decoder_step.cache_outputs`` maps each ``new_self_*`` output to its input.

:class:`hat.runtime.onnx.OnnxTranslator` runs the beam search over these graphs (the caches stay ONNX Runtime values
between steps); ``device_profiling/runner.py`` times that search.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import NamedTuple

from hat.errors import HatError
from hat.export.graphs import CANDIDATES, build_graphs, example_inputs, graph_meta, io_names, search_io_names
from hat.export.step_graph import build_encoder_graph, build_step_graph
from hat.io import atomic_path, atomic_write
from hat.optional import require

FORMAT = "hat-onnx-2"
DEFAULT_OPSET = 17
EXPORTERS = ("built", "legacy", "dynamo")


class ExportedPaths(NamedTuple):
    """Files written by :func:`export_onnx`."""

    encoder: Path
    decoder_step: Path
    meta: Path


def export_onnx(model, out_dir: str | os.PathLike, opset: int = DEFAULT_OPSET, check: bool = True,
                exporter: str = "built") -> ExportedPaths:
    """Export ``model``'s encoder and decoder step to ``out_dir`` (see the module docstring for the I/O contract).

    Args:
        model: a static :class:`hat.nn.Transformer` (a SuperTransformer is exported at its active subnet).
        out_dir: folder to write ``encoder.onnx``, ``decoder_step.onnx``, ``meta.json`` (created).
        opset: ONNX opset (17 by default, explicit in the files and ``meta.json``).
        check: run ``onnx.checker.check_model`` on both graphs.
        exporter: how the encoder graph is made (the decoder step is always built node by node,
            :mod:`hat.export.step_graph`): ``"built"`` (the default: node by node on ONNX Runtime's fused operators,
            ~3x fewer nodes), or traced, ``"legacy"`` (TorchScript, ``dynamo=False``) or ``"dynamo"``
            (``torch.export`` + onnxscript); the traced ones are kept to compare against.

    Returns:
        :class:`ExportedPaths` (encoder, decoder_step, meta).

    Raises:
        HatError: unknown exporter, or the export / checker failed.
    """
    if exporter not in EXPORTERS:
        raise HatError(f"unknown ONNX exporter '{exporter}': expected {', '.join(EXPORTERS)}")
    if hasattr(model, "get_active_subnet"):  # SuperTransformer: export its active SubTransformer
        model = model.get_active_subnet()
    model = model.eval()
    n_dec = model.subnet.decoder_layer_num
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ExportedPaths(out / "encoder.onnx", out / "decoder_step.onnx", out / "meta.json")

    try:
        import onnx
        if exporter == "built":
            with atomic_path(paths.encoder, keep_suffix=True) as tmp:
                onnx.save(build_encoder_graph(model), str(tmp))
        else:
            _trace_encoder(model, paths.encoder, opset, exporter)
        step = build_step_graph(model)
        with atomic_path(paths.decoder_step, keep_suffix=True) as tmp:
            onnx.save(step, str(tmp))
    except HatError:
        raise
    except Exception as e:  # exporter internals raise many types; report one line naming the subnet
        raise HatError(f"ONNX export failed ({exporter} exporter, opset {opset}): {type(e).__name__}: "
                       f"{' '.join(str(e).split())[:300]}") from e
    if check:
        import onnx
        for p in (paths.encoder, paths.decoder_step):
            try:
                onnx.checker.check_model(str(p))
            except onnx.checker.ValidationError as e:
                raise HatError(f"{p}: ONNX checker failed: {' '.join(str(e).split())[:300]}") from None

    meta = graph_meta(model, FORMAT, paths.encoder.name, paths.decoder_step.name, quantize="none", opset=opset,
                      exporter=exporter)
    step_inputs, step_outputs = search_io_names(n_dec)
    meta["decoder_step"].update(inputs=step_inputs, outputs=step_outputs, candidates=CANDIDATES)
    update_meta(out, meta)
    return paths


def _trace_encoder(model, path: Path, opset: int, exporter: str) -> None:
    """``encoder.onnx`` traced from :func:`hat.export.graphs.build_graphs`' encoder module."""
    n_dec = model.subnet.decoder_layer_num
    names = io_names(n_dec)
    enc_graph, _ = build_graphs(model)
    (src,), _ = example_inputs(model, enc_graph)  # no pads; sizes >= 2 on dynamic axes
    enc_axes = {"src_tokens": {0: "batch", 1: "src_len"}, "encoder_padding_mask": {0: "batch", 1: "src_len"}}
    for i in range(n_dec):
        for kv in ("k", "v"):
            enc_axes[f"cross_{kv}_{i}"] = {0: "batch", 2: f"cross_len_{i}"}
    _export(enc_graph, (src,), path, names.encoder_inputs, names.encoder_outputs, enc_axes, opset, exporter)


def _export(module, args, path: Path, input_names, output_names, axes, opset: int, exporter: str) -> None:
    import torch
    with warnings.catch_warnings(), atomic_path(path, keep_suffix=True) as tmp:
        warnings.simplefilter("ignore")  # tracer warnings about python values are expected (static subnet)
        if exporter == "legacy":
            torch.onnx.export(module, args, str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
        else:
            # torch.export needs dynamic_shapes (one Dim object per named axis), positional like ``args``.
            dims = {}
            shapes = [{ax: dims.setdefault(name, torch.export.Dim.AUTO) for ax, name in axes.get(n, {}).items()}
                      or None for n in input_names]
            fixed = getattr(module, "n_fixed", len(shapes))  # StepGraph's trailing ``*flat`` is one nested arg
            shapes = tuple(shapes[:fixed]) + ((tuple(shapes[fixed:]),) if fixed < len(shapes) else ())
            torch.onnx.export(module, args, str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_shapes=shapes, opset_version=opset, dynamo=True, external_data=False,
                              optimize=True, verbose=False)


QUANTIZE_MODES = ("none", "int8")


def quantize_onnx(out_dir: str | os.PathLike, mode: str = "int8") -> list[Path]:
    """Quantize an :func:`export_onnx` folder in place: ONNX Runtime dynamic quantization of the MatMul weights.

    ``int8``: ``onnxruntime.quantization.quantize_dynamic`` with ``op_types_to_quantize=["MatMul"]`` and signed int8
    weights; activations are quantized per call at run time (``DynamicQuantizeLinear`` + ``MatMulInteger``), so no
    calibration data is needed. Embedding lookups, layer norms and softmax stay float32. ``meta.json`` records the
    mode under ``quantize``; the I/O contract does not change.

    Args:
        out_dir: an ONNX export directory (``meta.json``, ``encoder.onnx``, ``decoder_step.onnx``).
        mode: ``"int8"`` (``"none"`` leaves the folder as it is).

    Returns:
        The rewritten graph files.

    Raises:
        HatError: unknown mode, not an export directory, already quantized, or onnxruntime's quantizer failed.
    """
    if mode not in QUANTIZE_MODES:
        raise HatError(f"unknown quantization '{mode}': expected {' or '.join(QUANTIZE_MODES)}")
    from hat.runtime.onnx import load_meta
    out = Path(out_dir)
    meta = load_meta(out)
    if mode == "none":
        return []
    if meta.get("quantize", "none") != "none":
        raise HatError(f"{out}: already quantized ({meta['quantize']})")
    quantization = require("onnxruntime.quantization", "--quantize", pip="onnxruntime")
    QuantType, quantize_dynamic = quantization.QuantType, quantization.quantize_dynamic
    files = []
    for graph in ("encoder", "decoder_step"):
        p = out / meta[graph]["file"]
        with atomic_path(p, keep_suffix=True) as tmp:
            try:
                # The quantizer logs "consider pre-processing" on the root logger: shapes are already static enough.
                logging.disable(logging.WARNING)
                try:
                    # the step graph's fused (com.microsoft) nodes have no ONNX shape inference: their outputs are
                    # float32 tensors
                    quantize_dynamic(str(p), str(tmp), op_types_to_quantize=["MatMul"],
                                     weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": 1})
                finally:
                    logging.disable(logging.NOTSET)
            except Exception as e:  # the quantizer raises many types; one line naming the file
                raise HatError(f"{p}: int8 quantization failed: {type(e).__name__}: "
                               f"{' '.join(str(e).split())[:300]}") from e
        files.append(p)
    meta["quantize"] = mode
    update_meta(out, meta)
    return files


def update_meta(out_dir: str | os.PathLike, meta: dict) -> Path:
    """Write ``meta.json`` of an export directory atomically."""
    p = Path(out_dir) / "meta.json"
    atomic_write(p, json.dumps(meta, indent=1))
    return p


def bundle_text_files(out_dir: str | os.PathLike, data_dir: str | os.PathLike, src_lang: str | None = None,
                      tgt_lang: str | None = None, fmt: str = FORMAT) -> list[Path]:
    """Copy the dictionaries and ``spm.model`` of ``data_dir`` next to an export, and record the languages in
    ``meta.json`` (``source_lang``, ``target_lang``), so the export translates text on its own
    (:meth:`hat.runtime.OnnxTranslator.translate`).

    The languages come from the arguments, else from the data directory's file names (one dictionary file: the
    same language both sides is not assumed; the pair stays unrecorded).

    Returns:
        The copied files.

    Raises:
        HatError: ``data_dir`` missing or without dictionaries, or a dictionary of another size than the model's.
    """
    import shutil

    from hat.runtime.onnx import load_meta
    from hat.runtime.text import load_export_codec
    data = Path(data_dir)
    if not data.is_dir():
        raise HatError(f"{data_dir}: no such data directory")
    dicts = sorted(data.glob("dict.*.txt"))
    if not dicts:
        raise HatError(f"{data_dir}: no dict.*.txt to bundle with the export")
    out = Path(out_dir)
    meta = load_meta(out, fmt)
    if not (src_lang and tgt_lang):
        from hat.data.langs import infer_langs_any_split
        try:
            src_lang, tgt_lang = infer_langs_any_split(data, "train", src_lang, tgt_lang)
        except HatError:
            pass  # e.g. only dictionaries there: the runtime resolves them (or asks for the languages)
    copied = []
    for p in dicts + [data / "spm.model"]:
        if p.is_file():
            shutil.copyfile(p, out / p.name)
            copied.append(out / p.name)
    if src_lang and tgt_lang:
        meta["source_lang"], meta["target_lang"] = src_lang, tgt_lang
        update_meta(out, meta)
    load_export_codec(out, meta)  # fail now, not on the device, when the dictionaries do not fit the model
    return copied
