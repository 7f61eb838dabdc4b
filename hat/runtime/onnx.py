"""Translate with the exported ONNX encoder + decoder step (:mod:`hat.export.onnx` layout), numpy + onnxruntime only.

Decoding uses the same fairseq beam search as the PyTorch path (:class:`hat.runtime.beam_search.BeamSearch`), so given the
same log-probabilities both produce the same hypotheses.

Example:
    >>> tr = OnnxTranslator("export_dir", beam_size=5)
    >>> tr.translate(["Ein Mann fährt Fahrrad."])          # text in, text out (bundled spm.model + dictionaries)
    ['A man is riding a bike.']
    >>> hypos = tr.generate(src_tokens, src_lengths)   # token ids: int64 numpy, left-padded, EOS-terminated
    >>> best = [h[0].tokens for h in hypos]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from hat.errors import HatError  # plain Python (no torch)
from hat.runtime.batching import translate_dataset
from hat.runtime.bounds import check_decoding, cut_sources
from hat.runtime.beam_search import BeamSearch, GreedyMixin, Hypothesis
from hat.runtime.ort_calls import OrtCalls

FORMAT = "hat-onnx-2"
# Before 1.21 ONNX Runtime's CPU MultiHeadAttention reads a 2-D key padding mask with masked positions inside the
# sequence wrongly (measured against 1.32 and PyTorch: 0.35-2.1 apart); hat's cross attention over several encoder
# layers (HAT's arbitrary attention) concatenates left-padded layers, so batched decoding would translate wrong.
MIN_ONNXRUNTIME = (1, 21)


def check_onnxruntime(version: str) -> None:
    """Refuse an onnxruntime older than :data:`MIN_ONNXRUNTIME` (one line saying why and what to install).

    Raises:
        HatError: the version is older.
    """
    import re
    parts = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if parts < MIN_ONNXRUNTIME:
        need = ".".join(map(str, MIN_ONNXRUNTIME))
        raise HatError(f"onnxruntime {version} is older than {need}: its MultiHeadAttention misreads padding masks "
                       f"that hat's exports use; pip install -U 'onnxruntime>={need}'")



def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32 (as ``torch.log_softmax`` on float32 logits)."""
    x = x.astype(np.float32, copy=False)
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


GRAPHS = ("encoder", "decoder_step")
MAX_META_BYTES = 10_000_000


def load_meta(model_dir: str | os.PathLike, fmt: str = FORMAT) -> dict:
    """Read and check ``meta.json`` of an export directory (``fmt``: ``hat-onnx-2``, ``hat-tvm-1`` or
    ``hat-ctranslate2-1``).

    Checked: the directory, ``meta.json`` (valid JSON object, ``format`` exactly ``fmt``; another version says so),
    the special symbols, the graph files it names (plain names inside the directory, present), and, when the export
    recorded them (``files``), every file's SHA-256: a directory whose files were not written together (an
    interrupted re-export, a graph copied in from another export) is refused.

    Raises:
        HatError: one line naming the problem.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise HatError(f"{model_dir}: no such export directory")
    p = d / "meta.json"
    if not p.is_file():
        raise HatError(f"{model_dir}: no meta.json (not an export directory; run hat-export)")
    if p.stat().st_size > MAX_META_BYTES:
        raise HatError(f"{p}: larger than {MAX_META_BYTES // 1_000_000} MB; not an export description")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise HatError(f"{p}: not valid JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise HatError(f"{p}: not an export description (a JSON object is expected)")
    if meta.get("format") != fmt:
        got = meta.get("format")
        family = fmt.rsplit("-", 1)[0]
        hint = (f"written by another hat version ({family} format {got.rsplit('-', 1)[-1]}, this one reads "
                f"{fmt.rsplit('-', 1)[-1]}); re-export it with this hat-export"
                if isinstance(got, str) and got.rsplit("-", 1)[0] == family else "not an export of this kind")
        raise HatError(f"{p}: format {str(got)[:40]!r} is not {fmt!r}: {hint}")
    check_symbols(meta, p)
    if fmt != "hat-ctranslate2-1":
        check_graphs(meta, d, p)
    check_digests(meta, d, p)
    return meta


def check_symbols(meta: dict, where) -> None:
    """``padding_idx``, ``eos_idx`` and the vocabulary sizes are integers, the symbols inside the vocabularies."""
    for key in ("src_vocab_size", "tgt_vocab_size", "padding_idx", "eos_idx"):
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise HatError(f"{where}: '{key}' is {repr(v)[:40]}, not an integer >= 0; re-export it with hat-export")
    for key in ("padding_idx", "eos_idx"):
        if meta[key] >= min(meta["src_vocab_size"], meta["tgt_vocab_size"]):
            raise HatError(f"{where}: '{key}' {meta[key]} is outside the vocabulary; re-export it with hat-export")


def check_graphs(meta: dict, d: Path, where) -> None:
    """Both graph entries name a plain file of the export directory that exists, and the decoder layers are
    described."""
    for graph in GRAPHS:
        entry = meta.get(graph)
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise HatError(f"{where}: no '{graph}' entry; re-export it with hat-export")
        if Path(name).name != name or name in (".", ".."):
            raise HatError(f"{where}: '{graph}' names {name[:80]!r}, not a file of the export directory")
        if not (d / name).is_file():
            raise HatError(f"{d}: {name} is missing (meta.json names it); re-export it with hat-export")
    layers = meta.get("decoder_layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        raise HatError(f"{where}: 'decoder_layers' must describe at least one decoder layer; re-export it with "
                       f"hat-export")


def check_digests(meta: dict, d: Path, where) -> None:
    """Every file ``meta['files']`` lists is a regular file of the directory with the recorded SHA-256."""
    files = meta.get("files")
    if files is None:
        return  # an export written before digests were recorded
    if not isinstance(files, dict):
        raise HatError(f"{where}: 'files' is not a mapping; re-export it with hat-export")
    import hashlib
    for name, digest in files.items():
        f = d / str(name)
        if Path(str(name)).name != name or f.is_symlink() or not f.is_file():
            raise HatError(f"{d}: {str(name)[:80]} is missing or not a regular file of the export (meta.json lists "
                           f"it); re-export it with hat-export")
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            raise HatError(f"{f}: not the file this export wrote (SHA-256 differs from meta.json): the directory "
                           f"holds files of different exports; re-export it with hat-export")


class OnnxTranslator(GreedyMixin):
    """Greedy/beam translation with onnxruntime sessions of an exported SubTransformer.

    Args:
        model_dir: folder with ``encoder.onnx``, ``decoder_step.onnx``, ``meta.json``.
        beam_size, max_len_a, max_len_b, min_len, lenpen, unk_penalty: as :class:`hat.runtime.beam_search.BeamSearch`.
        unk: ``<unk>`` id (fairseq dictionaries: 3).
        threads: onnxruntime intra-op threads (0 = onnxruntime's default).
        providers: onnxruntime execution providers (default CPU).
        src_lang, tgt_lang: languages of the bundled dictionaries for ``translate`` (default: ``meta.json``'s).

    Raises:
        HatError: a bad export directory (see :func:`load_meta`) or a graph onnxruntime cannot load.

    ``translate(texts)`` reads the dictionaries (and ``spm.model``) bundled in ``model_dir`` by ``hat-export --data``
    on first use (see :func:`hat.runtime.text.load_export_codec`).

    Subclasses (the TVM runner in :mod:`hat.export.tvm`) override ``FORMAT``, ``load_sessions``, ``run_encoder``
    and ``run_step``; the I/O names and the decoding loop are shared.
    """

    FORMAT = FORMAT

    def __init__(self, model_dir: str | os.PathLike, beam_size: int = 5, max_len_a: float = 0.0,
                 max_len_b: int = 200, min_len: int = 1, lenpen: float = 1.0, unk_penalty: float = 0.0,
                 unk: int = 3, threads: int = 1, providers: Optional[Sequence[str]] = None,
                 src_lang: Optional[str] = None, tgt_lang: Optional[str] = None):
        check_decoding(beam_size, 1, max_len_a, max_len_b, min_len)
        self.meta = load_meta(model_dir, self.FORMAT)
        self.model_dir = Path(model_dir)
        self._langs = (src_lang, tgt_lang)
        self._codec = None
        self._setup_search(beam_size, max_len_a, max_len_b, min_len, lenpen, unk_penalty, unk)
        self.load_sessions(Path(model_dir), threads, providers)

    def _setup_search(self, beam_size, max_len_a, max_len_b, min_len, lenpen, unk_penalty, unk) -> None:
        meta = self.meta
        self.pad, self.eos = int(meta["padding_idx"]), int(meta["eos_idx"])
        self.search = BeamSearch(beam_size=beam_size, pad=self.pad, eos=self.eos, unk=unk, max_len_a=max_len_a,
                                 max_len_b=max_len_b, max_len=int(meta.get("max_target_positions", 1024)),
                                 min_len=min_len, lenpen=lenpen, unk_penalty=unk_penalty)
        self.encoder_outputs = meta["encoder"]["outputs"]
        self.step_outputs = meta["decoder_step"]["outputs"]
        self.vocab_size = int(meta["tgt_vocab_size"])
        self.from_encoder = meta["decoder_step"]["from_encoder"]
        self.cache_outputs = meta["decoder_step"]["cache_outputs"]  # new_self_k_i -> self_k_i

    def load_sessions(self, d: Path, threads: int, providers) -> None:
        import onnxruntime as ort

        check_onnxruntime(ort.__version__)
        meta = self.meta
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = list(providers or ["CPUExecutionProvider"])
        sessions = []
        for graph in ("encoder", "decoder_step"):
            path = d / meta[graph]["file"]
            try:
                sessions.append(ort.InferenceSession(str(path), opts, providers=providers))
            except Exception as e:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...): one line
                raise HatError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]}); re-export it with hat-export") from None
        self.encoder, self.decoder = sessions
        self.decoder_calls = OrtCalls(self.decoder)  # the per-step calls, without the wrapper's per-call cost
        self.encoder_inputs = {i.name for i in self.encoder.get_inputs()}
        self.step_inputs = [i.name for i in self.decoder.get_inputs()]

    @property
    def beam_size(self) -> int:
        return self.search.beam_size

    def encode(self, src_tokens: np.ndarray, src_lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Run the encoder graph; returns its outputs by name (padding mask and cross-attention K/V)."""
        feeds = {"src_tokens": np.ascontiguousarray(src_tokens, dtype=np.int64),
                 "src_lengths": np.ascontiguousarray(src_lengths, dtype=np.int64)}
        return self.run_encoder(feeds)

    def run_encoder(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The exporter drops unused inputs (src_lengths): feed only what the graph declares.
        outs = self.encoder.run(None, {k: v for k, v in feeds.items() if k in self.encoder_inputs})
        return dict(zip(self.encoder_outputs, outs))

    def run_step(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.step_outputs, self.decoder.run(None, {k: feeds[k] for k in self.step_inputs})))

    @property
    def codec(self):
        """The :class:`hat.runtime.text.TextCodec` of the bundled dictionaries/spm model (loaded on first use).

        Raises:
            HatError: dictionaries missing or of another size than the model's vocabularies.
        """
        if self._codec is None:
            from hat.runtime.text import load_export_codec
            self._codec = load_export_codec(self.model_dir, self.meta, *self._langs)
        return self._codec

    def translate(self, texts: Sequence[str], batch_size: int = 16, progress: bool = False,
                  warn: Optional[Callable[[str], None]] = None, first_line: int = 1) -> list[str]:
        """Translate raw sentences: sentencepiece + dictionary in, beam search, pieces joined back out.

        Sentences are batched by source length (fairseq-generate's order, so padding is minimal and the batches
        equal ``hat-translate --checkpoint --input``'s); the output follows the input order.

        Args:
            texts: one sentence per item (untokenized; the bundled ``spm.model`` splits it).
            batch_size: sentences per batch (at most :data:`hat.runtime.bounds.MAX_BATCH_SIZE`).
            progress: show a tqdm bar.
            warn: gets one line per input line longer than the model's positions (cut to fit; default
                ``warnings.warn``).
        """
        check_decoding(self.search.beam_size, batch_size, self.search.max_len_a, self.search.max_len_b,
                       self.search.min_len)
        codec = self.codec
        sources = cut_sources([codec.encode_source(t) for t in texts],
                              int(self.meta.get("max_source_positions", 1024)), self.eos, warn, first_line)
        if not sources:
            return []
        best = translate_dataset(self, sources, batch_size=batch_size, pad=self.pad, progress=progress)
        return [codec.decode_target(h.tokens) for h in best]

    def generate(self, src_tokens: np.ndarray, src_lengths: np.ndarray,
                 search: Optional[BeamSearch] = None) -> list[list[Hypothesis]]:
        """Beam search one batch (``src_tokens`` ``[B, S]`` int64, left-padded, EOS-terminated).

        Args:
            search: search to run instead of ``self.search`` (``greedy()`` passes a beam-1 copy).

        Returns:
            Per sentence, up to ``beam_size`` hypotheses sorted best first.
        """
        src_tokens = np.asarray(src_tokens, dtype=np.int64)
        bsz, src_len = src_tokens.shape
        search = search or self.search
        state = self.initial_state(self.encode(src_tokens, src_lengths), search.beam_size)

        def step_fn(tokens: np.ndarray, step: int, reorder: Optional[np.ndarray], bias: np.ndarray,
                    k: int) -> tuple[np.ndarray, np.ndarray]:
            return self.step_candidates(state, tokens[:, -1:], step, reorder, bias, k)

        return search.search(bsz, src_len, step_fn, self.vocab_size)

    def initial_state(self, enc: dict[str, np.ndarray], beam: int) -> dict:
        """The decoding state of a batch: the encoder outputs repeated per beam (kept as numpy, reordered only when
        sentences finish) and empty self-attention caches, as ONNX Runtime values (they never leave it). ``arrays``
        holds the numpy memory that values read (:class:`hat.runtime.ort_calls.OrtCalls`)."""
        state = {"encoder": {n: np.repeat(enc[n], beam, axis=0) for n in self.from_encoder}, "values": {},
                 "arrays": {}}
        rows = state["encoder"]["encoder_padding_mask"].shape[0]
        for layer in self.meta["decoder_layers"]:
            for name in (layer["self_k"], layer["self_v"]):
                self._set_value(state, name, np.zeros((rows, layer["self_heads"], 0, layer["self_head_dim"]),
                                                      np.float32))
        self._encoder_values(state)
        state["identity"] = np.arange(rows, dtype=np.int64)
        return state

    def _encoder_values(self, state: dict) -> None:
        for n, x in state["encoder"].items():
            self._set_value(state, n, np.ascontiguousarray(x))

    def _set_value(self, state: dict, name: str, array: np.ndarray) -> None:
        state["arrays"][name] = array  # the value reads this memory: it lives as long as the value is fed
        state["values"][name] = self.decoder_calls.value(array)

    def step_candidates(self, state: dict, tokens: np.ndarray, step: int, reorder: Optional[np.ndarray],
                        bias: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """One decoder step: reorder the caches (inside the graph), run it, return each row's ``k`` best
        ``log-prob + bias`` and token ids (the step function of :meth:`hat.runtime.beam_search.BeamSearch.search`)."""
        values, calls = state["values"], self.decoder_calls
        if reorder is None:
            reorder = state["identity"]
        elif len(reorder) != state["encoder"]["encoder_padding_mask"].shape[0]:
            # sentences finished: their rows leave the encoder outputs too (the caches follow ``reorder``)
            state["encoder"] = {n: x[reorder] for n, x in state["encoder"].items()}
            self._encoder_values(state)
        feeds = dict(values)
        fresh = [("tokens", np.ascontiguousarray(tokens, dtype=np.int64)), ("step", np.array(step, dtype=np.int64))]
        # the bias rows (the search's normal / early / last arrays), k and the identity order repeat over steps:
        # wrapped once per batch (the wrapper is a measurable share of a step's Python time)
        const = state.setdefault("const", {})
        for name, x in (("bias", bias), ("k", k)) + ((("reorder", reorder),) if reorder is state["identity"] else ()):
            key = (name, k if name == "k" else id(x))
            if key not in const:
                arr = np.array([k], dtype=np.int64) if name == "k" else np.ascontiguousarray(x)
                const[key] = (calls.value(arr), arr, x)  # holds arr (read by the value) and x (its id stays its own)
            feeds[name] = const[key][0]
        if reorder is not state["identity"]:
            fresh.append(("reorder", np.ascontiguousarray(reorder)))
        for name, x in fresh:  # ``fresh`` holds the arrays until the call returns
            feeds[name] = calls.value(x)
        outs = calls.run(self.step_outputs, feeds)
        for o, v in zip(self.step_outputs[2:], outs[2:]):
            values[self.cache_outputs[o]] = v
        return outs[0].numpy(), outs[1].numpy()
