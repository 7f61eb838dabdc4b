"""Data: fairseq-compatible dictionaries, mmap indexed datasets, language-pair batches, preprocessing.

Public API (see docs/design.md, ``hat.data``):

- :class:`~hat.data.dictionary.Dictionary`
- :class:`~hat.data.indexed.MMapIndexedDataset`, :class:`~hat.data.indexed.MMapIndexedDatasetBuilder`
- :class:`~hat.data.pair.LanguagePairDataset`, :func:`~hat.data.pair.collate`, :func:`~hat.data.pair.load_split`,
  :func:`~hat.data.pair.batch_by_tokens`
- :class:`~hat.data.bpe.SentencePieceBPE`
- :func:`~hat.data.langs.infer_langs`: the language pair of a binarized directory (file names)
- ``hat.data.preprocess``: ``PreprocessSettings``, ``preprocess`` (CLI ``hat-preprocess``); not re-exported here,
  since a function named ``preprocess`` would shadow the submodule attribute.
"""

from hat.data.bpe import SentencePieceBPE
from hat.data.dictionary import Dictionary
from hat.data.langs import infer_langs
from hat.data.indexed import MMapIndexedDataset, MMapIndexedDatasetBuilder
from hat.data.pair import LanguagePairDataset, batch_by_tokens, collate, load_split

__all__ = [
    "Dictionary",
    "MMapIndexedDataset",
    "MMapIndexedDatasetBuilder",
    "LanguagePairDataset",
    "batch_by_tokens",
    "collate",
    "load_split",
    "infer_langs",
    "SentencePieceBPE",
]
