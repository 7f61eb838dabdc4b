#!/usr/bin/env bash
# IWSLT'14 German->English (HAT paper task "iwslt14.de-en") -> data-bin/iwslt14_de_en.
#
#   scripts/prepare_iwslt14_de_en.sh [--archive de-en.tgz | --url URL] [--raw-dir DIR] [--dest DIR]
#                                    [--bpe-vocab 10000] [--dry-run]
#
# As fairseq's examples/translation/prepare-iwslt14.sh (the data HAT used): TED talks from the IWSLT'14 de-en
# archive, lowercased; training pairs of 1-175 words with length ratio <= 1.5; every 23rd training pair held out
# as valid (~7.3K); test = TED.dev2010 + TEDX.dev2012 + TED.tst2010-2012 (~6.8K). HAT used a 10K joint BPE.
# The original WIT3 URL is often down: download de-en.tgz from a mirror and pass --archive.
source "$(dirname "${BASH_SOURCE[0]}")/_prepare_common.sh"
URL="https://wit3.fbk.eu/archive/2014-01/texts/de/en/de-en.tgz"
ARCHIVE=""
RAW="data/raw/iwslt14_de_en"
DEST="data-bin/iwslt14_de_en"
VOCAB=10000
while [ $# -gt 0 ]; do
    case "$1" in
        --archive) ARCHIVE="$2"; shift 2 ;;
        --url) URL="$2"; shift 2 ;;
        --raw-dir) RAW="$2"; shift 2 ;;
        --dest) DEST="$2"; shift 2 ;;
        --bpe-vocab) VOCAB="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
ORIG="$RAW/orig"
TMP="$RAW/tmp"
if [ -z "$ARCHIVE" ]; then
    ARCHIVE="$ORIG/de-en.tgz"
    run "${FETCH[@]}" download "$URL" "$ARCHIVE"
fi
run "${FETCH[@]}" extract "$ARCHIVE" "$ORIG"
TESTS=(IWSLT14.TED.dev2010 IWSLT14.TEDX.dev2012 IWSLT14.TED.tst2010 IWSLT14.TED.tst2011 IWSLT14.TED.tst2012)
for l in de en; do
    run "${FETCH[@]}" xml2txt "$ORIG/de-en/train.tags.de-en.$l" "$TMP/train.tags.$l" --lowercase
    for t in "${TESTS[@]}"; do
        run "${FETCH[@]}" xml2txt "$ORIG/de-en/$t.de-en.$l.xml" "$TMP/$t.$l" --lowercase
    done
done
run "${FETCH[@]}" concat --src de --tgt en --out "$TMP/train_clean" --max-len 175 --ratio 1.5 "$TMP/train.tags"
run "${FETCH[@]}" holdout --src de --tgt en --every 23 "$TMP/train_clean" "$RAW/train" "$RAW/valid"
TEST_PREFIXES=()
for t in "${TESTS[@]}"; do
    TEST_PREFIXES+=("$TMP/$t")
done
run "${FETCH[@]}" concat --src de --tgt en --out "$RAW/test" --no-filter "${TEST_PREFIXES[@]}"
run hat-preprocess --src de --tgt en --trainpref "$RAW/train" --validpref "$RAW/valid" --testpref "$RAW/test" \
    --destdir "$DEST" --bpe-vocab "$VOCAB" --threads 2
