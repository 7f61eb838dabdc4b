"""Deployment runtime: numpy + onnxruntime only (importing it never imports torch).

- :class:`~hat.runtime.beam_search.BeamSearch`, :class:`~hat.runtime.beam_search.Hypothesis`: fairseq 0.12 beam search over a
  step callback (shared with :mod:`hat.generate`).
- :class:`~hat.runtime.onnx.OnnxTranslator`: greedy/beam translation with an ONNX export (:mod:`hat.export.onnx`).
- :func:`~hat.runtime.batching.translate_dataset`, :func:`~hat.runtime.batching.collate_source`.
- :class:`~hat.runtime.vocab.Vocabulary`: fairseq ``dict.txt`` reader for text in/out.
- :class:`~hat.runtime.text.TextCodec`, :func:`~hat.runtime.text.load_export_codec`: raw text <-> ids
  (sentencepiece + dictionaries), the codec bundled in an export directory.
"""

from hat.runtime.batching import collate_source, generation_order, translate_dataset
from hat.runtime.onnx import OnnxTranslator, load_meta, log_softmax
from hat.runtime.beam_search import BeamSearch, Hypothesis
from hat.runtime.text import ESCAPED_UNK, TextCodec, load_export_codec
from hat.runtime.vocab import Vocabulary

__all__ = ["BeamSearch", "ESCAPED_UNK", "Hypothesis", "OnnxTranslator", "TextCodec", "Vocabulary", "collate_source",
           "generation_order", "load_export_codec", "load_meta", "log_softmax", "translate_dataset"]
