#!/usr/bin/env bash
# WMT'14 English->French (HAT paper task "wmt14.en-fr") -> data-bin/wmt14_en_fr.
#
#   scripts/prepare_wmt14_en_fr.sh [--raw-dir DIR] [--dest DIR] [--bpe-vocab 40000] [--extra-corpus PREFIX]
#                                  [--max-train-lines N] [--dry-run]
#
# Corpora of fairseq's examples/translation/prepare-wmt14en2fr.sh: Europarl v7, Common Crawl, UN, News
# Commentary v9, Gigaword Fr-En (~36M pairs after cleaning); valid newstest2013 (fairseq holds out train lines
# instead), test newstest2014 (full), both from sacrebleu. HAT used a 40K joint BPE. Needs internet, ~5 GB download
# and ~40 GB disk; --max-train-lines N binarizes only the first N pairs.
source "$(dirname "${BASH_SOURCE[0]}")/_prepare_common.sh"
NAME=wmt14_en_fr SRC=en TGT=fr VOCAB=40000
ARCHIVES=(
    http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
    http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
    http://statmt.org/wmt13/training-parallel-un.tgz
    http://statmt.org/wmt14/training-parallel-nc-v9.tgz
    http://statmt.org/wmt10/training-giga-fren.tar
)
CORPORA=(
    training-parallel-europarl-v7/training/europarl-v7.fr-en
    training-parallel-commoncrawl/commoncrawl.fr-en
    training-parallel-un/un/undoc.2000.fr-en
    training-parallel-nc-v9/training/news-commentary-v9.fr-en
    training-giga-fren/giga-fren.release2.fixed
)
VALID_SET=wmt13 TEST_SET=wmt14/full
prepare_wmt "$@"
