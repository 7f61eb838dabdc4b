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
from hat.io import atomic_path, atomic_write
from hat.space import num_ende_layers

FORMAT = "hat-onnx-1"
DEFAULT_OPSET = 17


class ExportedPaths(NamedTuple):
    """Files written by :func:`export_onnx`."""

    encoder: Path
    decoder_step: Path
    meta: Path


def _io_names(n_dec: int) -> dict:
    cross = [f"cross_{kv}_{i}" for i in range(n_dec) for kv in ("k", "v")]
    self_in = [f"self_{kv}_{i}" for i in range(n_dec) for kv in ("k", "v")]
    self_out = [f"new_{n}" for n in self_in]
    return {
        "enc_in": ["src_tokens"],
        "enc_out": ["encoder_padding_mask"] + cross,
        "dec_in": ["tokens", "step", "encoder_padding_mask"] + cross + self_in,
        "dec_out": ["logits"] + self_out,
        "cross": cross,
        "self_in": self_in,
        "self_out": self_out,
    }


def _wrappers(model):
    import torch

    class EncoderGraph(torch.nn.Module):
        """src -> padding mask and every decoder layer's cross-attention K/V."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, src_tokens):
            enc = self.m.encoder(src_tokens)
            kv = self.m.decoder.cross_kv(enc)
            return (enc.padding_mask,) + tuple(t for pair in kv for t in pair)

    class StepGraph(torch.nn.Module):
        """One decoder step; flat tensor I/O in :func:`_io_names` order."""

        n_fixed = 3  # tokens, step, encoder_padding_mask; then *flat

        def __init__(self, m, n):
            super().__init__()
            self.m, self.n = m, n

        def forward(self, tokens, step, encoder_padding_mask, *flat):
            n = self.n
            cross = [(flat[2 * i], flat[2 * i + 1]) for i in range(n)]
            sk = [flat[2 * n + 2 * i] for i in range(n)]
            sv = [flat[2 * n + 2 * i + 1] for i in range(n)]
            logits, nk, nv = self.m.decoder.step(tokens, step, cross, sk, sv, encoder_padding_mask)
            return (logits,) + tuple(t for pair in zip(nk, nv) for t in pair)

    n = model.subnet.decoder_layer_num
    return EncoderGraph(model).eval(), StepGraph(model, n).eval()


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
    import torch

    if exporter not in ("legacy", "dynamo"):
        raise HatError(f"unknown ONNX exporter '{exporter}': expected legacy or dynamo")
    if hasattr(model, "get_active_subnet"):  # SuperTransformer: export its active SubTransformer
        model = model.get_active_subnet()
    model = model.eval()
    subnet = model.subnet
    cfg = model.cfg
    qkv = int(model.qkv_dim)
    n_dec = subnet.decoder_layer_num
    names = _io_names(n_dec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ExportedPaths(out / "encoder.onnx", out / "decoder_step.onnx", out / "meta.json")

    # Example inputs: sizes >= 2 on dynamic axes (torch.export specialises 0/1), no pads.
    batch, src_len, past = 2, 7, 3
    src = torch.randint(4, cfg.src_vocab_size, (batch, src_len))
    enc_graph, step_graph = _wrappers(model)
    with torch.no_grad():
        enc_outs = enc_graph(src)
    layers = []
    self_cache = []
    for i in range(n_dec):
        h = subnet.decoder_self_attention_heads[i]
        eh = subnet.decoder_ende_attention_heads[i]
        layers.append({"self_heads": h, "self_head_dim": qkv // h, "ende_heads": eh, "ende_head_dim": qkv // eh,
                       "num_ende_layers": num_ende_layers(subnet.decoder_arbitrary_ende_attn[i]),
                       "self_k": f"self_k_{i}", "self_v": f"self_v_{i}", "cross_k": f"cross_k_{i}",
                       "cross_v": f"cross_v_{i}", "new_self_k": f"new_self_k_{i}", "new_self_v": f"new_self_v_{i}"})
        self_cache += [torch.randn(batch, h, past, qkv // h), torch.randn(batch, h, past, qkv // h)]
    step_args = (torch.randint(4, cfg.tgt_vocab_size, (batch, 1)), torch.tensor(past, dtype=torch.long),
                 *enc_outs, *self_cache)

    enc_axes = {"src_tokens": {0: "batch", 1: "src_len"}, "encoder_padding_mask": {0: "batch", 1: "src_len"}}
    dec_axes = {"tokens": {0: "batch"}, "encoder_padding_mask": {0: "batch", 1: "src_len"}, "logits": {0: "batch"}}
    for i in range(n_dec):
        for kv in ("k", "v"):
            enc_axes[f"cross_{kv}_{i}"] = {0: "batch", 2: f"cross_len_{i}"}
            dec_axes[f"cross_{kv}_{i}"] = {0: "batch", 2: f"cross_len_{i}"}
            dec_axes[f"self_{kv}_{i}"] = {0: "batch", 2: "past_len"}
            dec_axes[f"new_self_{kv}_{i}"] = {0: "batch", 2: "new_len"}
    try:
        _export(enc_graph, (src,), paths.encoder, names["enc_in"], names["enc_out"], enc_axes, opset, exporter)
        _export(step_graph, step_args, paths.decoder_step, names["dec_in"], names["dec_out"], dec_axes, opset,
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

    meta = {
        "format": FORMAT,
        "opset": opset,
        "exporter": exporter,
        "subnet": subnet.to_dict(),
        "qkv_dim": qkv,
        "src_vocab_size": cfg.src_vocab_size,
        "tgt_vocab_size": cfg.tgt_vocab_size,
        "padding_idx": cfg.padding_idx,
        "eos_idx": cfg.eos_idx,
        "bos_idx": 0,
        "max_target_positions": cfg.max_target_positions,
        "encoder_layers": subnet.encoder_layer_num,
        "decoder_layers": layers,
        "encoder": {"file": paths.encoder.name, "inputs": names["enc_in"], "outputs": names["enc_out"]},
        "decoder_step": {"file": paths.decoder_step.name, "inputs": names["dec_in"], "outputs": names["dec_out"],
                         "from_encoder": ["encoder_padding_mask"] + names["cross"],
                         "cache_outputs": dict(zip(names["self_out"], names["self_in"]))},
    }
    atomic_write(paths.meta, json.dumps(meta, indent=1))
    return paths


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
