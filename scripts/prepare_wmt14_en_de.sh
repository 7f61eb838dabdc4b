#!/usr/bin/env bash
# WMT'14 English->German (HAT paper task "wmt14.en-de") -> data-bin/wmt14_en_de.
#
#   scripts/prepare_wmt14_en_de.sh [--raw-dir DIR] [--dest DIR] [--bpe-vocab 32000] [--extra-corpus PREFIX]
#                                  [--max-train-lines N] [--dry-run]
#
# Same corpora as fairseq's examples/translation/prepare-wmt14en2de.sh (the data HAT trained on): Europarl v7,
# Common Crawl, News Commentary v12 (~4.5M pairs after cleaning); valid newstest2013, test newstest2014 (full,
# 3,003 lines), fetched with sacrebleu. HAT used a 32K joint BPE; here a 32K joint sentencepiece BPE on raw text
# (score detokenized output with sacrebleu; HAT's paper BLEU is tokenized with compound splitting).
# Needs internet, ~1.5 GB download and ~10 GB disk.
source "$(dirname "${BASH_SOURCE[0]}")/_prepare_common.sh"
NAME=wmt14_en_de SRC=en TGT=de VOCAB=32000
ARCHIVES=(
    http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
    http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
    http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz
)
CORPORA=(
    training-parallel-europarl-v7/training/europarl-v7.de-en
    training-parallel-commoncrawl/commoncrawl.de-en
    training-parallel-nc-v12/training/news-commentary-v12.de-en
)
VALID_SET=wmt13 TEST_SET=wmt14/full
prepare_wmt "$@"
