#!/usr/bin/env bash
# Multi30k task 1 (image-caption translation) -> data-bin for hat-train.
#
#   scripts/prepare_multi30k.sh [--data-dir DIR] [--download] [--dest DIR] [--src de] [--tgt en]
#                               [--bpe-vocab 8000] [--dry-run] [-- extra hat-preprocess args]
#
# Raw data, first found: --data-dir DIR; ../shared/data/multi30k next to the repository; else download from the
# public Multi30k repository (github.com/multi30k/dataset, data/task1/raw) into data/raw/multi30k.
# Splits: train (29,000) / val (1,014) -> valid / test_2016_flickr (1,000) -> test. Joint sentencepiece BPE.
source "$(dirname "${BASH_SOURCE[0]}")/_prepare_common.sh"

DATA_DIR=""
DOWNLOAD=0
DEST="data-bin/multi30k_de_en"
DEST_SET=0
SRC=de
TGT=en
VOCAB=8000
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        --download) DOWNLOAD=1; shift ;;
        --dest) DEST="$2"; DEST_SET=1; shift 2 ;;
        --src) SRC="$2"; shift 2 ;;
        --tgt) TGT="$2"; shift 2 ;;
        --bpe-vocab) VOCAB="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$DEST_SET" = 1 ] || DEST="data-bin/multi30k_${SRC}_${TGT}"

if [ -z "$DATA_DIR" ] && [ "$DOWNLOAD" = 0 ] && [ -d "$REPO_ROOT/../shared/data/multi30k" ]; then
    DATA_DIR="$REPO_ROOT/../shared/data/multi30k"
fi
if [ -z "$DATA_DIR" ]; then
    DATA_DIR="data/raw/multi30k"
    run "$PYTHON" -m hat.data.multi30k "$DATA_DIR" --langs "$SRC,$TGT"
elif [ "$DRY_RUN" = 0 ] && [ ! -d "$DATA_DIR" ]; then
    die "$DATA_DIR: no such directory"
fi

run hat-preprocess --src "$SRC" --tgt "$TGT" \
    --trainpref "$DATA_DIR/train" --validpref "$DATA_DIR/val" --testpref "$DATA_DIR/test_2016_flickr" \
    --destdir "$DEST" --bpe-vocab "$VOCAB" --threads 2 ${EXTRA[@]+"${EXTRA[@]}"}
