#!/usr/bin/env bash
# WMT'19 English->German (HAT paper task "wmt19.en-de") -> data-bin/wmt19_en_de.
#
#   scripts/prepare_wmt19_en_de.sh [--raw-dir DIR] [--dest DIR] [--bpe-vocab 32000] [--extra-corpus PREFIX]
#                                  [--max-train-lines N] [--dry-run]
#
# WMT'19 news-task constrained corpora: Europarl v9, Common Crawl, News Commentary v14, Rapid 2019; valid
# newstest2018, test newstest2019 (sacrebleu). ParaCrawl v3 (TMX, ~31M noisy pairs) is not fetched: convert it to
# PREFIX.en / PREFIX.de and pass --extra-corpus PREFIX to include it. Needs internet and ~10 GB disk.
source "$(dirname "${BASH_SOURCE[0]}")/_prepare_common.sh"
NAME=wmt19_en_de SRC=en TGT=de VOCAB=32000
ARCHIVES=(
    http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
    https://s3-eu-west-1.amazonaws.com/tilde-model/rapid2019.de-en.zip
)
CORPORA=(
    europarl-v9.de-en
    news-commentary-v14.de-en
    training-parallel-commoncrawl/commoncrawl.de-en
    rapid2019.de-en/rapid2019.de-en
)
VALID_SET=wmt18 TEST_SET=wmt19

# The TSV corpora (German first, English second) become plain parallel files in RAW/orig.
extra_steps() {
    local name url
    for url in http://www.statmt.org/europarl/v9/training/europarl-v9.de-en.tsv.gz \
               http://data.statmt.org/news-commentary/v14/training/news-commentary-v14.de-en.tsv.gz; do
        name="$(basename "$url" .tsv.gz)"
        run "${FETCH[@]}" download "$url" "$RAW/orig/$name.tsv.gz"
        run "${FETCH[@]}" tsv "$RAW/orig/$name.tsv.gz" "$RAW/orig/$name" --langs de,en
    done
}
prepare_wmt "$@"
