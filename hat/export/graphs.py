"""The two graphs every deployment path runs: the encoder and one decoder step with an explicit K/V cache.

One home for what the ONNX export (:mod:`hat.export.onnx`), the TVM export (:mod:`hat.export.tvm`) and the TVM
latency backend (:mod:`hat.latency.backends.tvm`) trace: the graph modules, their flat I/O names, example inputs and
the ``meta.json`` description of the I/O contract (documented in :mod:`hat.export.onnx`).

torch is imported when a graph is built, not at import time: importing ``hat.export.onnx`` or ``hat.export.tvm`` (for
:class:`~hat.export.tvm.TvmTranslator`, which runs without torch) does not load torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hat.space import num_ende_layers


class IONames(NamedTuple):
    """Flat input/output names of both graphs, in graph order, for a model with ``n`` decoder layers."""

    encoder_inputs: list[str]
    encoder_outputs: list[str]
    step_inputs: list[str]
    step_outputs: list[str]
    cross: list[str]       # cross_k_0, cross_v_0, cross_k_1, ...: encoder outputs the step takes after the mask
    self_in: list[str]     # self_k_0, self_v_0, ...: the step's cache inputs
    self_out: list[str]    # new_self_k_0, ...: the step's cache outputs, same order as ``self_in``


def io_names(n_dec: int) -> IONames:
    """Graph I/O names for ``n_dec`` decoder layers (the order :func:`build_graphs`' modules take and return)."""
    cross = [f"cross_{kv}_{i}" for i in range(n_dec) for kv in ("k", "v")]
    self_in = [f"self_{kv}_{i}" for i in range(n_dec) for kv in ("k", "v")]
    self_out = [f"new_{n}" for n in self_in]
    return IONames(encoder_inputs=["src_tokens"], encoder_outputs=["encoder_padding_mask"] + cross,
                   step_inputs=["tokens", "step", "encoder_padding_mask"] + cross + self_in,
                   step_outputs=["logits"] + self_out, cross=cross, self_in=self_in, self_out=self_out)


def build_graphs(model) -> tuple[Any, Any]:
    """The encoder and decoder-step graphs of a static Transformer, as ``torch.nn.Module``s in eval mode.

    * encoder: ``src_tokens`` -> ``(encoder_padding_mask, cross_k_0, cross_v_0, ...)``: the padding mask and every
      decoder layer's cross-attention K/V (computed once per sentence, not per step).
    * step: ``(tokens, step, encoder_padding_mask, *cross, *self_cache)`` -> ``(logits, *new_self_cache)``, flat
      tensors in :func:`io_names` order; ``step.n_fixed`` (3) is the number of leading non-``*flat`` arguments.

    Args:
        model: a static :class:`hat.nn.Transformer` (not a SuperTransformer: take its ``get_active_subnet()``).
    """
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
        """One decoder step; flat tensor I/O in :func:`io_names` order."""

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


# What hat's ONNX decoder step (hat.export.step_graph) adds to the plain step (``build_graphs``): the beam reordering
# of its caches and the candidates the beam search needs, computed inside the graph.
SEARCH_INPUTS = ["tokens", "step", "reorder", "bias", "k"]
CANDIDATES = ["cand_lprobs", "cand_ids"]


def search_io_names(n_dec: int) -> tuple[list[str], list[str]]:
    """``(inputs, outputs)`` of the search step graph for ``n_dec`` decoder layers (:mod:`hat.export.step_graph`)."""
    names = io_names(n_dec)
    return SEARCH_INPUTS + ["encoder_padding_mask"] + names.cross + names.self_in, CANDIDATES + names.self_out


def decoder_layer_meta(model) -> list[dict]:
    """Per decoder layer: head counts and sizes, encoder layers attended, and its cache I/O names (``meta.json``)."""
    subnet, qkv = model.subnet, int(model.qkv_dim)
    layers = []
    for i in range(subnet.decoder_layer_num):
        h = subnet.decoder_self_attention_heads[i]
        eh = subnet.decoder_ende_attention_heads[i]
        layers.append({"self_heads": h, "self_head_dim": qkv // h, "ende_heads": eh, "ende_head_dim": qkv // eh,
                       "num_ende_layers": num_ende_layers(subnet.decoder_arbitrary_ende_attn[i]),
                       "self_k": f"self_k_{i}", "self_v": f"self_v_{i}", "cross_k": f"cross_k_{i}",
                       "cross_v": f"cross_v_{i}", "new_self_k": f"new_self_k_{i}", "new_self_v": f"new_self_v_{i}"})
    return layers


def example_inputs(model, enc_graph, batch: int = 2, src_len: int = 7, past: int = 3) -> tuple[tuple, tuple]:
    """Random example inputs to trace both graphs: ``((src_tokens,), step_args)``.

    Sizes on dynamic axes should be >= 2 (``torch.export`` specialises 0 and 1). The step's encoder inputs are
    ``enc_graph``'s outputs for the example source; its self cache has ``past`` positions. Uses torch's global RNG
    (the values do not matter, only shapes and dtypes).
    """
    import torch

    cfg, qkv = model.cfg, int(model.qkv_dim)
    src = torch.randint(4, cfg.src_vocab_size, (batch, src_len))
    with torch.no_grad():
        enc_outs = enc_graph(src)
    self_cache = []
    for h in model.subnet.decoder_self_attention_heads:
        self_cache += [torch.randn(batch, h, past, qkv // h), torch.randn(batch, h, past, qkv // h)]
    step_args = (torch.randint(4, cfg.tgt_vocab_size, (batch, 1)), torch.tensor(past, dtype=torch.long),
                 *enc_outs, *self_cache)
    return (src,), step_args


def graph_meta(model, fmt: str, encoder_file: str, decoder_file: str, **extra) -> dict:
    """The ``meta.json`` of an export: format, model sizes, per-layer cache layout and both graphs' I/O names.

    Args:
        model: the exported static Transformer.
        fmt: ``format`` value (``hat-onnx-2``, ``hat-tvm-1``).
        encoder_file, decoder_file: file names of the two graphs, relative to ``meta.json``.
        **extra: exporter-specific keys, placed right after ``format`` (e.g. ``opset``, ``target``).
    """
    subnet, cfg = model.subnet, model.cfg
    names = io_names(subnet.decoder_layer_num)
    return {
        "format": fmt,
        **extra,
        "subnet": subnet.to_dict(),
        "qkv_dim": int(model.qkv_dim),
        "src_vocab_size": cfg.src_vocab_size,
        "tgt_vocab_size": cfg.tgt_vocab_size,
        "padding_idx": cfg.padding_idx,
        "eos_idx": cfg.eos_idx,
        "bos_idx": 0,
        "max_source_positions": cfg.max_source_positions,
        "max_target_positions": cfg.max_target_positions,
        "encoder_layers": subnet.encoder_layer_num,
        "decoder_layers": decoder_layer_meta(model),
        "encoder": {"file": encoder_file, "inputs": names.encoder_inputs, "outputs": names.encoder_outputs},
        "decoder_step": {"file": decoder_file, "inputs": names.step_inputs, "outputs": names.step_outputs,
                         "from_encoder": ["encoder_padding_mask"] + names.cross,
                         "cache_outputs": dict(zip(names.self_out, names.self_in))},
    }
