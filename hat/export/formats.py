"""Export formats behind one interface, registered by name (``hat-export --format NAME``).

After CTranslate2's ``Converter``: a format implements one step, :meth:`ExportFormat.write` (the model's files into a
fresh folder); what every format needs is shared in :meth:`ExportFormat.export`: check the options and that the
format can represent the model (:meth:`ExportFormat.validate`), write into a temp folder beside ``out``, bundle the
dictionaries and ``spm.model`` (``--data``), compare the export's output with PyTorch (:meth:`ExportFormat.check`),
record a SHA-256 digest of every file in ``meta.json`` (the runtimes refuse a folder whose files were not written
together), and only then put the folder in ``out``'s place as a whole (:func:`hat.io.atomic_dir`): a killed or
failed export leaves the old export, never a mix. A single-file format (fairseq) is written with
:func:`hat.io.atomic_path` beside what the folder already holds.

Built-in formats: ``onnx`` (hat's runtime, ONNX Runtime), ``tvm`` (Apache TVM Relax, extra ``hat[tvm]``),
``fairseq`` (a fairseq 0.12 checkpoint) and ``ctranslate2`` (a CTranslate2 model folder, extra
``hat[ctranslate2]``). Another one registers its class: ``register_export_format("name", MyFormat)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hat.errors import HatError
from hat.registry import Registry, make_register

EXPORT_FORMATS = Registry("export format", {
    "onnx": "hat.export.formats:OnnxFormat",
    "tvm": "hat.export.formats:TvmFormat",
    "fairseq": "hat.export.formats:FairseqFormat",
    "ctranslate2": "hat.export.formats:CTranslate2Format",
})
register_export_format = make_register(EXPORT_FORMATS)
META = "meta.json"


@dataclass
class ExportOptions:
    """What ``hat-export`` passes to a format.

    Attributes:
        data: data dir whose ``dict.*.txt`` (and ``spm.model``) are bundled, so the export translates text on its own.
        source_lang, target_lang: languages recorded with the bundled dictionaries (default: inferred from ``data``).
        quantize: ``none`` or a weight type the format supports (``int8``).
        target: TVM target (``host`` or ``rpi4``).
        opset: ONNX opset.
        check: compare the export's output with PyTorch (float exports must agree to 1e-3).
    """

    data: Optional[str] = None
    source_lang: Optional[str] = None
    target_lang: Optional[str] = None
    quantize: str = "none"
    target: str = "host"
    opset: int = 17
    check: bool = True


@dataclass
class ExportResult:
    """What :meth:`ExportFormat.export` wrote.

    Attributes:
        files: the files written (in ``out``).
        max_logit_diff: max |logit difference| of the export against ``checked_against`` (None: not checked).
        checked_against: what the check compared with (PyTorch, unless the format says otherwise).
    """

    files: list[Path]
    max_logit_diff: Optional[float] = None
    checked_against: str = "PyTorch"


class ExportFormat:
    """One export format (see the module docstring). Subclasses set :attr:`name`, :attr:`meta_format` and
    :attr:`quantize`, and implement :meth:`write`; most also :meth:`validate` and :meth:`check`."""

    name = ""
    meta_format = ""  # the ``format`` of its meta.json ("" for single-file formats)
    quantize: tuple[str, ...] = ("none",)
    single_file = False

    def validate(self, model, options: ExportOptions) -> None:
        """Refuse what this format cannot do, before anything is written (one line naming the cause)."""
        if options.quantize not in self.quantize:
            raise HatError(f"--quantize {options.quantize} is not supported by --format {self.name} "
                           f"(supported: {', '.join(self.quantize)})")

    def write(self, model, out: Path, options: ExportOptions) -> list[Path]:
        """Write the model's files into the fresh folder ``out`` (meta.json included); return them."""
        raise NotImplementedError

    def check(self, model, out: Path, options: ExportOptions) -> Optional[float]:
        """Max |logit difference| of the files in ``out`` against :meth:`check_reference` (None: not checked)."""
        return None

    def check_reference(self, options: ExportOptions) -> tuple[str, Optional[float]]:
        """What :meth:`check` compares with, and the largest difference accepted (None: reported only; a
        quantized export moves PyTorch's logits by design)."""
        return "PyTorch", 1e-3 if options.quantize == "none" else None

    def export(self, model, out: str | os.PathLike, options: Optional[ExportOptions] = None) -> ExportResult:
        """Validate, write, bundle, check and seal into a temp folder, then replace ``out`` with it as a whole.

        Raises:
            HatError: the format cannot represent the model, a float export's logits differ from PyTorch (> 1e-3),
                or ``out`` holds something that is not an export of this format.
        """
        from hat.io import atomic_dir
        options = options or ExportOptions()
        if hasattr(model, "get_active_subnet"):
            model = model.get_active_subnet()
        self.validate(model, options)
        out = Path(out)
        if self.single_file:
            return ExportResult(files=self.write(model, out, options))
        check_replaceable(out, self.meta_format)
        with atomic_dir(out) as tmp:
            files = self.write(model, tmp, options)
            if options.data:
                from hat.export.onnx import bundle_text_files
                files += bundle_text_files(tmp, options.data, options.source_lang, options.target_lang,
                                           fmt=self.meta_format)
            diff = self.check(model, tmp, options) if options.check else None
            reference, tolerance = self.check_reference(options)
            if diff is not None and tolerance is not None and diff > tolerance:
                raise HatError(f"exported {self.name} logits differ from {reference} by {diff:.3g} "
                               f"(> {tolerance:g}); {out} was left as it was")
            seal(tmp)
        files = sorted({out / Path(f).name for f in files} | {out / META})
        return ExportResult(files=files, max_logit_diff=diff, checked_against=reference)


def check_replaceable(out: Path, meta_format: str) -> None:
    """Refuse to replace a folder that holds anything but an export of ``meta_format`` (a user's training run,
    say): an export replaces its whole folder.

    Raises:
        HatError: one line naming the folder.
    """
    if not out.is_dir() or out.is_symlink() or not any(out.iterdir()):
        return
    try:
        fmt = json.loads((out / META).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    family = meta_format.rsplit("-", 1)[0]
    if not (isinstance(fmt, str) and fmt.rsplit("-", 1)[0] == family):
        raise HatError(f"{out}: not empty and not a {family} export; an export replaces its whole folder, so give "
                       f"a new or empty --out")


def seal(out: Path) -> None:
    """Record the SHA-256 of every file of the export folder ``out`` in its ``meta.json`` (``files``)."""
    from hat.io import atomic_write, file_digest
    meta_path = out / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["files"] = {p.name: file_digest(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != META}
    atomic_write(meta_path, json.dumps(meta, indent=1))


class OnnxFormat(ExportFormat):
    """hat's ONNX export: encoder + decoder step with an explicit cache, for hat's torch-free runtime."""

    name, meta_format, quantize = "onnx", "hat-onnx-2", ("none", "int8")

    def write(self, model, out: Path, options: ExportOptions) -> list[Path]:
        from hat.export.onnx import export_onnx, quantize_onnx
        paths = export_onnx(model, out, opset=options.opset, check=options.check)
        quantize_onnx(out, options.quantize)
        return [paths.encoder, paths.decoder_step, paths.meta]

    def check(self, model, out: Path, options: ExportOptions) -> Optional[float]:
        from hat.export.checks import compare_outputs
        return compare_outputs(model, out, "onnx")


class TvmFormat(ExportFormat):
    """The same two graphs compiled with Apache TVM Relax (``host`` or cross-compiled for ``rpi4``)."""

    name, meta_format = "tvm", "hat-tvm-1"

    def write(self, model, out: Path, options: ExportOptions) -> list[Path]:
        from hat.export.tvm import export_tvm
        paths = export_tvm(model, out, target=options.target)
        return [paths.encoder, paths.decoder_step, paths.meta]

    def check(self, model, out: Path, options: ExportOptions) -> Optional[float]:
        if options.target != "host":
            return None  # cross-compiled: cannot run here
        from hat.export.checks import compare_outputs
        return compare_outputs(model, out, "tvm")


class FairseqFormat(ExportFormat):
    """A fairseq 0.12 ``transformer`` checkpoint (uniform layers only), written atomically into ``out``."""

    name, single_file = "fairseq", True

    def validate(self, model, options: ExportOptions) -> None:
        super().validate(model, options)
        from hat.export.fairseq import nonuniform_layers
        diff = nonuniform_layers(model.subnet)
        if diff:
            raise HatError(f"fairseq's transformer needs identical layers, but layers differ: {'; '.join(diff)}")

    def write(self, model, out: Path, options: ExportOptions) -> list[Path]:
        from hat.export.fairseq import export_fairseq
        return [Path(export_fairseq(model, out, data_dir=options.data))]


class CTranslate2Format(ExportFormat):
    """A CTranslate2 model folder (``model.bin``, ``config.json``, vocabularies) plus hat's ``meta.json``."""

    name, meta_format, quantize = "ctranslate2", "hat-ctranslate2-1", ("none", "int8")

    def validate(self, model, options: ExportOptions) -> None:
        super().validate(model, options)
        from hat.export.ctranslate2 import ctranslate2_blockers
        why = ctranslate2_blockers(model.subnet)
        if why:
            raise HatError("CTranslate2 cannot execute this SubTransformer: " + "; ".join(why))

    def convert(self, model, out: Path, options: ExportOptions, quantization: Optional[str]) -> None:
        """CTranslate2's model files of ``model`` in ``out``, weights stored as ``quantization`` (None: float32)."""
        from hat.export.ctranslate2 import build_spec, convert_spec, latency_symbols
        cfg = model.cfg
        # the spec's vocabularies are the dictionaries' symbols when bundled, else placeholders of the right size
        symbols = [latency_symbols(cfg.src_vocab_size), latency_symbols(cfg.tgt_vocab_size)]
        if options.data:
            symbols = dictionary_symbols(options, cfg)
        convert_spec(build_spec(model.eval(), *symbols), out, quantization=quantization)

    def write(self, model, out: Path, options: ExportOptions) -> list[Path]:
        from hat.io import atomic_write
        cfg = model.cfg
        self.convert(model, out, options, None if options.quantize == "none" else options.quantize)
        meta = {"format": self.meta_format, "quantize": options.quantize, "subnet": model.subnet.to_dict(),
                "qkv_dim": int(model.qkv_dim), "src_vocab_size": cfg.src_vocab_size,
                "tgt_vocab_size": cfg.tgt_vocab_size, "padding_idx": cfg.padding_idx, "eos_idx": cfg.eos_idx,
                "max_source_positions": cfg.max_source_positions, "max_target_positions": cfg.max_target_positions}
        atomic_write(out / META, json.dumps(meta, indent=1))
        return sorted(p for p in out.iterdir() if p.is_file())

    def check(self, model, out: Path, options: ExportOptions) -> Optional[float]:
        from hat.export.checks import compare_ctranslate2, compare_ctranslate2_quantized
        if options.quantize == "none":
            return compare_ctranslate2(model, out)
        with tempfile.TemporaryDirectory() as float_dir:
            self.convert(model, Path(float_dir), options, None)
            return compare_ctranslate2_quantized(model, out, Path(float_dir), options.quantize)

    def check_reference(self, options: ExportOptions) -> tuple[str, Optional[float]]:
        if options.quantize == "none":
            return super().check_reference(options)
        return f"its float32 export quantized to {options.quantize} by CTranslate2 at load", 1e-3


def dictionary_symbols(options: ExportOptions, cfg) -> list[list[str]]:
    """The source and target dictionaries' symbols of ``options.data`` (fairseq ``dict.*.txt``), checked against
    the model's vocabulary sizes."""
    from hat.data.langs import infer_langs_any_split
    from hat.runtime.vocab import Vocabulary
    src, tgt = options.source_lang, options.target_lang
    if not (src and tgt):
        src, tgt = infer_langs_any_split(options.data, "train", src, tgt)
    out = []
    for lang, size in ((src, cfg.src_vocab_size), (tgt, cfg.tgt_vocab_size)):
        v = Vocabulary.load(Path(options.data) / f"dict.{lang}.txt")
        if len(v) != size:
            raise HatError(f"{options.data}/dict.{lang}.txt has {len(v)} symbols but the model's vocabulary has "
                           f"{size}: wrong --data for this checkpoint?")
        out.append(list(v.symbols))
    return out


def export_format(name: str):
    """An instance of the export format registered as ``name``.

    Raises:
        ConfigError: unknown format (the known ones are listed).
    """
    return EXPORT_FORMATS.get(name, "hat-export --format")()
