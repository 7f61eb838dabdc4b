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

``decoder_step.onnx`` (one incremental step for ``rows`` = batch x beam rows)
    Inputs:
      * ``tokens`` int64 ``[rows, 1]``: previous output token (EOS = ``eos_idx`` at step 0)
      * ``step`` int64 scalar (0-dim): 0-based position of ``tokens``
      * ``encoder_padding_mask``, ``cross_k_{i}``, ``cross_v_{i}``: the encoder outputs, rows repeated per beam
        (``np.repeat(x, beam, axis=0)``) and reordered with the beams like any cache
      * ``self_k_{i}``, ``self_v_{i}`` float32 ``[rows, self_heads_i, past_len, self_head_dim_i]``: keys/values of
        the previous steps (``past_len`` = step; zeros of shape ``[rows, H, 0, d]`` at step 0)

    Outputs:
      * ``logits`` float32 ``[rows, tgt_vocab]`` (unnormalized; log_softmax for scores)
      * ``new_self_k_{i}``, ``new_self_v_{i}`` ``[rows, self_heads_i, past_len + 1, self_head_dim_i]``: feed back
        as ``self_k_{i}``/``self_v_{i}`` (after beam reordering, ``x[beam_order]``)

    Batch, source length and ``past_len`` axes are dynamic.

``meta.json``
    ``format`` (``"hat-onnx-1"``), ``opset``, ``exporter``, ``subnet`` (SubnetConfig dict), ``qkv_dim``,
    ``src_vocab_size``, ``tgt_vocab_size``, ``padding_idx``, ``eos_idx``, ``bos_idx`` (0), ``encoder_layers``,
    ``decoder_layers`` (a list, per layer: ``self_heads``, ``self_head_dim``, ``ende_heads``, ``ende_head_dim``,
    ``num_ende_layers`` and its I/O names ``self_k``, ``self_v``, ``cross_k``, ``cross_v``, ``new_self_k``,
    ``new_self_v``), ``max_target_positions``, and for each graph ``encoder`` / ``decoder_step``: ``file``,
    ``inputs``, ``outputs`` (names in order); ``decoder_step.from_encoder`` lists the encoder outputs the step
    takes (same names), ``decoder_step.cache_outputs`` maps each ``new_self_*`` output to its input.

A greedy loop in numpy + onnxruntime (``device_profiling/runner.py`` implements the timing version)::

    enc = dict(zip(meta["encoder"]["outputs"], enc_sess.run(None, {"src_tokens": src})))
    feeds = {n: np.repeat(enc[n], beam, 0) for n in meta["decoder_step"]["from_encoder"]}
    for L in meta["decoder_layers"]:
        feeds[L["self_k"]] = feeds[L["self_v"]] = np.zeros((rows, L["self_heads"], 0, L["self_head_dim"]), np.float32)
    tok = np.full((rows, 1), meta["eos_idx"], np.int64)
    for t in range(max_len):
        out = dict(zip(meta["decoder_step"]["outputs"],
                       dec_sess.run(None, {**feeds, "tokens": tok, "step": np.array(t, np.int64)})))
        for o, i in meta["decoder_step"]["cache_outputs"].items():
            feeds[i] = out[o]
        tok = out["logits"].argmax(-1)[:, None]
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

from hat.errors import HatError
from hat.export.graphs import build_graphs, example_inputs, graph_meta, io_names

FORMAT = "hat-onnx-1"
DEFAULT_OPSET = 17


class ExportedPaths(NamedTuple):
    """Files written by :func:`export_onnx`."""

    encoder: Path
    decoder_step: Path
    meta: Path


def export_onnx(model, out_dir: str | os.PathLike, opset: int = DEFAULT_OPSET, check: bool = True,
                exporter: str = "legacy") -> ExportedPaths:
    """Export ``model``'s encoder and decoder step to ``out_dir`` (see the module docstring for the I/O contract).

    Args:
        model: a static :class:`hat.nn.Transformer` (a SuperTransformer is exported at its active subnet).
        out_dir: folder to write ``encoder.onnx``, ``decoder_step.onnx``, ``meta.json`` (created).
        opset: ONNX opset (17 by default, explicit in the files and ``meta.json``).
        check: run ``onnx.checker.check_model`` on both graphs.
        exporter: ``"legacy"`` (TorchScript tracing, ``dynamo=False``; the default: ~10x faster to export and
            exact with dynamic axes, see docs/benchmarks.md) or ``"dynamo"`` (``torch.export`` + onnxscript).

    Returns:
        :class:`ExportedPaths` (encoder, decoder_step, meta).

    Raises:
        HatError: unknown exporter, or the export / checker failed.
    """
    if exporter not in ("legacy", "dynamo"):
        raise HatError(f"unknown ONNX exporter '{exporter}': expected legacy or dynamo")
    if hasattr(model, "get_active_subnet"):  # SuperTransformer: export its active SubTransformer
        model = model.get_active_subnet()
    model = model.eval()
    n_dec = model.subnet.decoder_layer_num
    names = io_names(n_dec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ExportedPaths(out / "encoder.onnx", out / "decoder_step.onnx", out / "meta.json")

    enc_graph, step_graph = build_graphs(model)
    (src,), step_args = example_inputs(model, enc_graph)  # no pads; sizes >= 2 on dynamic axes

    enc_axes = {"src_tokens": {0: "batch", 1: "src_len"}, "encoder_padding_mask": {0: "batch", 1: "src_len"}}
    dec_axes = {"tokens": {0: "batch"}, "encoder_padding_mask": {0: "batch", 1: "src_len"}, "logits": {0: "batch"}}
    for i in range(n_dec):
        for kv in ("k", "v"):
            enc_axes[f"cross_{kv}_{i}"] = {0: "batch", 2: f"cross_len_{i}"}
            dec_axes[f"cross_{kv}_{i}"] = {0: "batch", 2: f"cross_len_{i}"}
            dec_axes[f"self_{kv}_{i}"] = {0: "batch", 2: "past_len"}
            dec_axes[f"new_self_{kv}_{i}"] = {0: "batch", 2: "new_len"}
    try:
        _export(enc_graph, (src,), paths.encoder, names.encoder_inputs, names.encoder_outputs, enc_axes, opset,
                exporter)
        _export(step_graph, step_args, paths.decoder_step, names.step_inputs, names.step_outputs, dec_axes, opset,
                exporter)
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

    meta = graph_meta(model, FORMAT, paths.encoder.name, paths.decoder_step.name, opset=opset, exporter=exporter)
    tmp = paths.meta.with_name(paths.meta.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, paths.meta)
    return paths


def _export(module, args, path: Path, input_names, output_names, axes, opset: int, exporter: str) -> None:
    import torch
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
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
    os.replace(tmp, path)
