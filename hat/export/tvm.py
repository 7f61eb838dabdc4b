"""Compile a static SubTransformer with Apache TVM (Relax): encoder + one decoder step with an explicit K/V cache.

Optional extra ``pip install hat[tvm]`` (``apache-tvm==0.27.0.post1``); tvm is imported only when used.

Pipeline per graph: ``torch.export`` (batch, source length and cache length dynamic) ->
``tvm.relax.frontend.torch.from_exported_program`` -> ``tvm.compile`` -> ``export_library``. Graph I/O names and
``meta.json`` follow :mod:`hat.export.onnx` (``format: hat-tvm-1``, files ``encoder.so`` / ``decoder_step.so``), so
:class:`TvmTranslator` reuses the ONNX runtime's decoding loop (:class:`hat.runtime.onnx.OnnxTranslator`).
The encoder graph takes ``src_tokens`` only (padding comes from the tokens).

Targets: ``host`` = ``{"kind": "llvm"}``; ``rpi4`` = Raspberry Pi 4 (Cortex-A72, aarch64 + NEON), cross-compiled
with ``aarch64-linux-gnu-gcc`` (load the ``.so`` files on the Pi with the TVM runtime).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple, Optional

from hat.errors import HatError
from hat.export.graphs import build_graphs, example_inputs, graph_meta
from hat.io import atomic_path, atomic_write
from hat.optional import require
from hat.runtime.onnx import OnnxTranslator
from hat.space import num_ende_layers

FORMAT = "hat-tvm-1"
TARGETS = {
    "host": {"kind": "llvm"},
    "rpi4": {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "mattr": ["+neon"]},
}
CROSS_COMPILERS = {"rpi4": "aarch64-linux-gnu-gcc"}


class TvmPaths(NamedTuple):
    """Files written by :func:`export_tvm`."""

    encoder: Path
    decoder_step: Path
    meta: Path


def import_tvm(purpose: str = "TVM compilation"):
    """Import tvm with Relax (extra ``hat[tvm]``) or raise HatError with the install command.

    Args:
        purpose: what needs TVM, for the error message.
    """
    tvm = require("tvm", purpose, pip="apache-tvm==0.27.0.post1", extra="tvm")
    require("tvm.relax", purpose, pip="apache-tvm==0.27.0.post1", extra="tvm")  # builds without Relax exist
    return tvm


def _compile(ep, target: dict, path: Path, cross_compiler: Optional[str]) -> None:
    tvm = import_tvm()
    from tvm.relax.frontend.torch import from_exported_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = from_exported_program(ep, keep_params_as_input=False)
    # tvm.compile does not convert a dict target itself (0.27): pass a Target.
    ex = tvm.compile(mod, target=tvm.target.Target(target))
    with atomic_path(path, keep_suffix=True) as tmp:  # export_library picks the format by suffix
        if cross_compiler:
            ex.export_library(str(tmp), fcompile=tvm.support.cc.cross_compiler(cross_compiler))
        else:
            ex.export_library(str(tmp))


def export_tvm(model, out_dir: str | os.PathLike, target: str = "host") -> TvmPaths:
    """Compile ``model``'s encoder and decoder step to shared libraries in ``out_dir``.

    Args:
        model: static :class:`hat.nn.Transformer` (a SuperTransformer is compiled at its active subnet).
        out_dir: output folder (created): ``encoder.so``, ``decoder_step.so``, ``meta.json``.
        target: ``host`` (this CPU, llvm) or ``rpi4`` (aarch64 Cortex-A72, cross-compiled).

    Raises:
        HatError: tvm missing, unknown target, missing cross compiler, or compilation failure.
    """
    import shutil

    import torch

    if target not in TARGETS:
        raise HatError(f"unknown TVM target '{target}': expected one of {', '.join(TARGETS)}")
    cross = CROSS_COMPILERS.get(target)
    if cross and shutil.which(cross) is None:
        raise HatError(f"target {target} needs the cross compiler {cross} on PATH (apt install gcc-aarch64-linux-gnu)")
    import_tvm()
    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    model = model.eval()
    subnet = model.subnet
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = TvmPaths(out / "encoder.so", out / "decoder_step.so", out / "meta.json")
    enc_graph, step_graph = build_graphs(model)
    (src,), step_args = example_inputs(model, enc_graph)

    Dim = torch.export.Dim
    # No upper bounds: relax plans static storage for bounded symbolic shapes (bad_alloc at large bounds).
    batch, src_len, past = Dim("batch", min=1), Dim("src_len", min=2), Dim("past_len")
    cross_shapes, self_shapes = [], []
    for v in subnet.decoder_arbitrary_ende_attn:
        k = num_ende_layers(v)
        cross_len = src_len if k == 1 else k * src_len
        cross_shapes += [{0: batch, 2: cross_len}] * 2
        self_shapes += [{0: batch, 2: past}] * 2
    step_dyn = ({0: batch}, None, {0: batch, 1: src_len}, (*cross_shapes, *self_shapes))  # *flat is one tuple
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep_enc = torch.export.export(enc_graph, (src,), dynamic_shapes=({0: batch, 1: src_len},))
            ep_step = torch.export.export(step_graph, step_args, dynamic_shapes=step_dyn)
        _compile(ep_enc, TARGETS[target], paths.encoder, cross)
        _compile(ep_step, TARGETS[target], paths.decoder_step, cross)
    except HatError:
        raise
    except Exception as e:  # torch.export / TVM raise many types: one line for the CLI
        raise HatError(f"TVM compilation failed (target {target}): {type(e).__name__}: "
                       f"{' '.join(str(e).split())[:300]}") from e
    meta = graph_meta(model, FORMAT, paths.encoder.name, paths.decoder_step.name, target=target,
                      target_spec=TARGETS[target])
    atomic_write(paths.meta, json.dumps(meta, indent=1))
    return paths


class TvmTranslator(OnnxTranslator):
    """Greedy/beam translation with TVM-compiled graphs of a ``host`` export (same arguments as
    :class:`~hat.runtime.onnx.OnnxTranslator`; ``threads`` sets ``TVM_NUM_THREADS`` when not already set)."""

    FORMAT = FORMAT

    def load_sessions(self, d: Path, threads: int, providers) -> None:
        if threads:
            os.environ.setdefault("TVM_NUM_THREADS", str(threads))
        tvm = import_tvm("TVM translation")
        from tvm import relax

        if self.meta.get("target") != "host":
            raise HatError(f"{d}: compiled for {self.meta.get('target')}; only host libraries run here")
        self._tvm = tvm
        dev = tvm.cpu()
        self.encoder = relax.VirtualMachine(tvm.runtime.load_module(str(d / self.meta["encoder"]["file"])), dev)
        self.decoder = relax.VirtualMachine(tvm.runtime.load_module(str(d / self.meta["decoder_step"]["file"])), dev)
        self.step_inputs = self.meta["decoder_step"]["inputs"]

    def _call(self, vm, args) -> list:
        import numpy as np
        # np.require keeps 0-dim arrays 0-dim (ascontiguousarray would make ``step`` 1-dim).
        outs = vm["main"](*[self._tvm.runtime.tensor(np.require(a, requirements="C")) for a in args])
        return [o.numpy() for o in outs]

    def run_encoder(self, feeds):
        import numpy as np
        src = feeds["src_tokens"]
        if src.shape[1] < 2:  # the graph was exported for src_len >= 2; an extra left pad changes nothing
            src = np.concatenate([np.full((src.shape[0], 1), self.pad, np.int64), src], axis=1)
            return dict(zip(self.encoder_outputs, self._call(self.encoder, [src])))
        return dict(zip(self.encoder_outputs, self._call(self.encoder, [feeds["src_tokens"]])))

    def run_step(self, feeds):
        return dict(zip(self.step_outputs, self._call(self.decoder, [feeds[k] for k in self.step_inputs])))

    def initial_state(self, enc, beam: int) -> dict:
        """Numpy state: encoder outputs repeated per beam and empty caches (TVM's step returns logits)."""
        import numpy as np
        feeds = {n: np.repeat(enc[n], beam, axis=0) for n in self.from_encoder}
        rows = feeds["encoder_padding_mask"].shape[0]
        for layer in self.meta["decoder_layers"]:
            empty = np.zeros((rows, layer["self_heads"], 0, layer["self_head_dim"]), np.float32)
            feeds[layer["self_k"]] = feeds[layer["self_v"]] = empty
        return feeds

    def step_candidates(self, state: dict, tokens, step: int, reorder, bias, k: int):
        """Reorder the caches in numpy, run the compiled step, then log-softmax and per-row top-k in numpy."""
        import numpy as np

        from hat.runtime.onnx import log_softmax
        from hat.runtime.beam_search import row_candidates
        if reorder is not None:
            names = list(self.cache_outputs.values())
            if len(reorder) != state["encoder_padding_mask"].shape[0]:
                names += self.from_encoder  # beams share encoder outputs: reorder them only when sentences finish
            for n in names:
                state[n] = state[n][reorder]
        state["tokens"] = np.ascontiguousarray(tokens, dtype=np.int64)
        state["step"] = np.array(step, dtype=np.int64)
        outs = self.run_step(state)
        for o, i in self.cache_outputs.items():
            state[i] = outs[o]
        return row_candidates(log_softmax(outs["logits"]), bias, k)
