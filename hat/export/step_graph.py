"""hat's ONNX decoder step, built node by node on ONNX Runtime's fused operators (the search step of the export).

Why not the traced graph: at batch 1 a decoder step is a few million FLOPs spread over ~200 graph nodes, so ONNX
Runtime's per-node cost, not arithmetic, set its speed (traced: ~200 nodes). Built here with
``com.microsoft.MultiHeadAttention`` (one node per attention, the cache appended and the Q/K/V biases added inside
it), fused Q/K/V projections and ``SkipLayerNormalization`` (residual + bias + LayerNorm in one node), a decoder
layer is ~15 nodes instead of ~45 (measured: docs/benchmarks.md, "hat's runtime vs CTranslate2"); at that count a
node costs well under a microsecond of overhead, and the kernels and the Python loop around the graph remain.

It computes what :meth:`hat.nn.model.TransformerDecoder.step` computes (the export compares them): token embedding x
``sqrt(dim)`` (unless ``no_scale_embedding``) + the sinusoidal position of ``step``; per layer self-attention over the
cache, encoder-decoder attention over the (arbitrary) encoder layers' K/V, FFN, each with residual and post- or
pre-LayerNorm; the output projection; then, for the beam search, ``log_softmax + bias`` and the per-row top ``k``.
The I/O contract is :mod:`hat.export.onnx`'s (``decoder_step.onnx``); weights are the active slices of hat's
elastic modules.

:func:`build_encoder_graph` builds ``encoder.onnx`` the same way (what :class:`hat.nn.model.TransformerEncoder`
and the decoder layers' ``cross_kv`` compute): ~10 nodes per layer where the traced graph has ~35 after ONNX
Runtime's own fusions (its attention is left as MatMul/Softmax/Transpose/Reshape nodes).
"""

from __future__ import annotations

import math

import numpy as np

from hat.errors import HatError
from hat.export.graphs import search_io_names
from hat.space import num_ende_layers

OPSET = 17
ACTIVATIONS = {"relu": ("Relu", ""), "gelu": ("Gelu", "com.microsoft"), "gelu_accurate": ("FastGelu", "com.microsoft"),
               "gelu_fast": ("FastGelu", "com.microsoft"), "tanh": ("Tanh", ""), "linear": ("Identity", "")}


def _np(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def _w(mod) -> np.ndarray:
    """A linear's active weight, transposed for ``MatMul(x, W)``."""
    return _np(mod.active_weight()).T


def _b(mod) -> np.ndarray:
    return _np(mod.active_bias())


def _ln(mod, dim: int) -> tuple[np.ndarray, np.ndarray, float]:
    return _np(mod.weight[:dim]), _np(mod.bias[:dim]), float(mod.eps)


class _Graph:
    """Nodes and initializers with fresh names."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, array: np.ndarray, name: str = "") -> str:
        from onnx import numpy_helper
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, domain: str = "", **attrs):
        from onnx import helper
        if isinstance(outputs, int):
            self.count += 1
            outputs = [f"{op_type.lower()}{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, domain=domain or None, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def norm(self, x: str, ln, dim: int) -> str:
        g, b, eps = _ln(ln, dim)
        return self.op("LayerNormalization", [x, self.const(g), self.const(b)], axis=-1, epsilon=eps)

    def residual(self, res: str, y: str, bias: np.ndarray, ln, dim: int, post: bool) -> str:
        """``LN(res + y + bias)`` (post-norm, one fused node) or ``res + (y + bias)`` (pre-norm)."""
        if post:
            g, b, eps = _ln(ln, dim)
            return self.op("SkipLayerNormalization", [res, y, self.const(g), self.const(b), self.const(bias)],
                           domain="com.microsoft", epsilon=eps)
        return self.op("Add", [res, self.op("Add", [y, self.const(bias)])])


def _qkv(g: _Graph, h: str, a) -> tuple[str, str, str, str]:
    """One fused Q/K/V projection of ``h`` split three ways, and the three biases as one constant (for
    ``MultiHeadAttention``'s bias input, which adds them inside the attention node)."""
    w = np.concatenate([_w(a.q_proj), _w(a.k_proj), _w(a.v_proj)], axis=1)
    qkv_dim = w.shape[1] // 3
    q, k, v = g.op("Split", [g.op("MatMul", [h, g.const(w)]), g.const(np.array([qkv_dim] * 3, np.int64))], 3, axis=-1)
    return q, k, v, g.const(np.concatenate([_b(a.q_proj), _b(a.k_proj), _b(a.v_proj)]))


def _self_attention(g: _Graph, x: str, layer, i: int, heads: int, dim: int, post: bool) -> str:
    a = layer.self_attn
    q, k, v, bias = _qkv(g, x if post else g.norm(x, layer.self_attn_layer_norm, dim), a)
    past_k = g.op("Gather", [f"self_k_{i}", "reorder"], axis=0)
    past_v = g.op("Gather", [f"self_v_{i}", "reorder"], axis=0)
    o = g.op("MultiHeadAttention", [q, k, v, bias, "", "", past_k, past_v],
             ["attn_self_%d" % i, f"new_self_k_{i}", f"new_self_v_{i}"], domain="com.microsoft", num_heads=heads)[0]
    y = g.op("MatMul", [o, g.const(_w(a.out_proj))])
    return g.residual(x, y, _b(a.out_proj), layer.self_attn_layer_norm, dim, post)


def _cross_attention(g: _Graph, x: str, layer, i: int, heads: int, mask: str, dim: int, post: bool) -> str:
    a = layer.encoder_attn
    h = x if post else g.norm(x, layer.encoder_attn_layer_norm, dim)
    q = g.op("MatMul", [h, g.const(_w(a.q_proj))])
    qb = _b(a.q_proj)  # the cached K/V hold their biases already: zeros for them
    bias = g.const(np.concatenate([qb, np.zeros(2 * qb.shape[0], np.float32)]))
    o = g.op("MultiHeadAttention", [q, f"cross_k_{i}", f"cross_v_{i}", bias, mask], domain="com.microsoft",
             num_heads=heads)
    y = g.op("MatMul", [o, g.const(_w(a.out_proj))])
    return g.residual(x, y, _b(a.out_proj), layer.encoder_attn_layer_norm, dim, post)


def _ffn(g: _Graph, x: str, layer, activation: tuple[str, str], dim: int, post: bool) -> str:
    h = x if post else g.norm(x, layer.final_layer_norm, dim)
    a = g.op(activation[0], [g.op("Add", [g.op("MatMul", [h, g.const(_w(layer.fc1))]), g.const(_b(layer.fc1))])],
             domain=activation[1])
    y = g.op("MatMul", [a, g.const(_w(layer.fc2))])
    return g.residual(x, y, _b(layer.fc2), layer.final_layer_norm, dim, post)


def _activation(cfg, graph: str) -> tuple[str, str]:
    """The node (op type, domain) of the model's activation function.

    Raises:
        HatError: one the graphs have no node for.
    """
    if cfg.activation_fn not in ACTIVATIONS:
        raise HatError(f"the ONNX {graph} graph supports activation {', '.join(ACTIVATIONS)}, got {cfg.activation_fn}")
    return ACTIVATIONS[cfg.activation_fn]


def _cross_shapes(model) -> dict[str, tuple]:
    """``{cross_k_i / cross_v_i: (type, shape)}``: what the encoder returns and every step takes."""
    from onnx import TensorProto
    subnet, qkv = model.subnet, int(model.qkv_dim)
    return {f"cross_{kv}_{i}": (TensorProto.FLOAT, ["batch", eh, f"cross_len_{i}", qkv // eh])
            for i, eh in enumerate(subnet.decoder_ende_attention_heads[:subnet.decoder_layer_num]) for kv in ("k", "v")}


def _model(g: _Graph, name: str, inputs: list, outputs: list):
    """The ``ModelProto`` of ``g``'s nodes and initializers (opset :data:`OPSET` + ``com.microsoft``)."""
    from onnx import helper
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                helper.make_opsetid("com.microsoft", 1)], producer_name="hat")
    m.ir_version = 8
    return m


def _inputs_outputs(model):
    """Value infos of the graph's inputs and outputs (:func:`hat.export.graphs.search_io_names` order)."""
    from onnx import TensorProto, helper
    subnet, cfg, qkv = model.subnet, model.cfg, int(model.qkv_dim)
    shapes = {"tokens": (TensorProto.INT64, ["batch", 1]), "step": (TensorProto.INT64, []),
              "reorder": (TensorProto.INT64, ["batch"]), "bias": (TensorProto.FLOAT, [cfg.tgt_vocab_size]),
              "k": (TensorProto.INT64, [1]), "encoder_padding_mask": (TensorProto.BOOL, ["batch", "src_len"]),
              **_cross_shapes(model)}
    for i in range(subnet.decoder_layer_num):
        sh = subnet.decoder_self_attention_heads[i]
        for kv in ("k", "v"):
            shapes[f"self_{kv}_{i}"] = (TensorProto.FLOAT, ["prev_batch", sh, "past_len", qkv // sh])
            shapes[f"new_self_{kv}_{i}"] = (TensorProto.FLOAT, ["batch", sh, "new_len", qkv // sh])
    shapes["cand_lprobs"] = (TensorProto.FLOAT, ["batch", "k"])
    shapes["cand_ids"] = (TensorProto.INT64, ["batch", "k"])
    ins, outs = search_io_names(subnet.decoder_layer_num)
    return ([helper.make_tensor_value_info(n, *shapes[n]) for n in ins],
            [helper.make_tensor_value_info(n, *shapes[n]) for n in outs])


def build_step_graph(model):
    """The ONNX ``ModelProto`` of the search step of a static :class:`hat.nn.Transformer` (see the module docstring).

    Raises:
        HatError: an activation function it has no node for.
    """
    subnet, cfg, dec = model.subnet, model.cfg, model.decoder
    activation = _activation(cfg, "step")
    dim, post = subnet.decoder_embed_dim, not cfg.normalize_before
    g = _Graph()
    scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
    embed = _np(dec.embed_tokens.weight[:, :dim]) * np.float32(scale)
    x = g.op("Gather", [g.const(embed), "tokens"], axis=0)  # [rows, 1, dim]
    # fairseq's positions start after padding_idx: the table starts there, so ``step`` indexes it directly
    table = _np(dec.embed_positions.table(dim, cfg.max_target_positions + cfg.padding_idx + 1)[cfg.padding_idx + 1:])
    pos = g.op("Gather", [g.const(table), "step"], axis=0)
    x = g.op("Add", [x, pos])
    keep = g.op("Cast", [g.op("Not", ["encoder_padding_mask"])], to=6)  # int32: 1 = attend
    masks: dict[int, str] = {1: keep}
    for i in range(subnet.decoder_layer_num):
        layer, n = dec.layers[i], num_ende_layers(subnet.decoder_arbitrary_ende_attn[i])
        if n not in masks:
            masks[n] = g.op("Tile", [keep, g.const(np.array([1, n], np.int64))])
        x = _self_attention(g, x, layer, i, subnet.decoder_self_attention_heads[i], dim, post)
        x = _cross_attention(g, x, layer, i, subnet.decoder_ende_attention_heads[i], masks[n], dim, post)
        x = _ffn(g, x, layer, activation, dim, post)
    if getattr(dec, "layer_norm", None) is not None:
        x = g.norm(x, dec.layer_norm, dim)
    logits = g.op("MatMul", [x, g.const(_w(dec.output_projection))])
    logits = g.op("Reshape", [logits, g.const(np.array([-1, cfg.tgt_vocab_size], np.int64))])
    lp = g.op("Add", [g.op("LogSoftmax", [logits], axis=-1), "bias"])
    g.op("TopK", [lp, "k"], ["cand_lprobs", "cand_ids"], axis=-1, largest=1, sorted=1)
    return _model(g, "hat_decoder_search_step", *_inputs_outputs(model))


def _encoder_layer(g: _Graph, x: str, layer, heads: int, keep: str, activation, dim: int, post: bool) -> str:
    a = layer.self_attn
    q, k, v, bias = _qkv(g, x if post else g.norm(x, layer.self_attn_layer_norm, dim), a)
    o = g.op("MultiHeadAttention", [q, k, v, bias, keep], domain="com.microsoft", num_heads=heads)
    y = g.op("MatMul", [o, g.const(_w(a.out_proj))])
    return _ffn(g, g.residual(x, y, _b(a.out_proj), layer.self_attn_layer_norm, dim, post), layer, activation, dim,
                post)


def _cross_kv(g: _Graph, states: list[str], layer, i: int, heads: int) -> None:
    """``cross_k_i`` / ``cross_v_i`` ``[B, H, n*S, d]``: one projection of the attended states, split per head."""
    c = layer.encoder_attn
    mem = states[0] if len(states) == 1 else g.op("Concat", states, axis=1)
    w = np.concatenate([_w(c.k_proj), _w(c.v_proj)], axis=1)
    kv = g.op("Add", [g.op("MatMul", [mem, g.const(w)]), g.const(np.concatenate([_b(c.k_proj), _b(c.v_proj)]))])
    head_dim = w.shape[1] // 2 // heads
    kv = g.op("Transpose", [g.op("Reshape", [kv, g.const(np.array([0, -1, 2 * heads, head_dim], np.int64))])],
              perm=[0, 2, 1, 3])
    g.op("Split", [kv, g.const(np.array([heads, heads], np.int64))], [f"cross_k_{i}", f"cross_v_{i}"], axis=1)


def _encoder_io(model):
    from onnx import TensorProto, helper
    outs = {"encoder_padding_mask": (TensorProto.BOOL, ["batch", "src_len"]), **_cross_shapes(model)}
    return ([helper.make_tensor_value_info("src_tokens", TensorProto.INT64, ["batch", "src_len"])],
            [helper.make_tensor_value_info(n, *shape) for n, shape in outs.items()])


def build_encoder_graph(model):
    """The ONNX ``ModelProto`` of the encoder of a static :class:`hat.nn.Transformer`: ``src_tokens`` ->
    ``encoder_padding_mask`` and every decoder layer's cross-attention K/V (:mod:`hat.export.onnx`'s contract).

    Raises:
        HatError: an activation function it has no node for.
    """
    subnet, cfg, enc = model.subnet, model.cfg, model.encoder
    activation = _activation(cfg, "encoder")
    dim, post, pad = subnet.encoder_embed_dim, not cfg.normalize_before, cfg.padding_idx
    g = _Graph()
    g.op("Equal", ["src_tokens", g.const(np.array(pad, np.int64))], ["encoder_padding_mask"])
    nonpad = g.op("Not", ["encoder_padding_mask"])
    keep = g.op("Cast", [nonpad], to=6)  # int32, 1 = attend: the attention's key padding mask
    keep64 = g.op("Cast", [nonpad], to=7)
    # fairseq's make_positions: non-pad tokens numbered from padding_idx + 1, pads get padding_idx (a zero row)
    positions = g.op("Add", [g.op("Mul", [g.op("CumSum", [keep64, g.const(np.array(1, np.int64))]), keep64]),
                             g.const(np.array(pad, np.int64))])
    scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
    embed = _np(enc.embed_tokens.weight[:, :dim]) * np.float32(scale)
    table = _np(enc.embed_positions.table(dim, cfg.max_source_positions + pad + 1))
    x = g.op("Add", [g.op("Gather", [g.const(embed), "src_tokens"], axis=0),
                     g.op("Gather", [g.const(table), positions], axis=0)])
    x = g.op("Mul", [x, g.op("Unsqueeze", [g.op("Cast", [nonpad], to=1), g.const(np.array([-1], np.int64))])])
    states = []
    for i in range(subnet.encoder_layer_num):
        x = _encoder_layer(g, x, enc.layers[i], subnet.encoder_self_attention_heads[i], keep, activation, dim, post)
        states.append(x)
    if getattr(enc, "layer_norm", None) is not None:
        states[-1] = g.norm(states[-1], enc.layer_norm, dim)
    for i in range(subnet.decoder_layer_num):
        layer = model.decoder.layers[i]
        _cross_kv(g, [states[j] for j in layer.ende_states(len(states))], layer, i,
                  subnet.decoder_ende_attention_heads[i])
    return _model(g, "hat_encoder", *_encoder_io(model))
