# Shared helpers for scripts/prepare_*.sh (sourced, not run).
# Every step goes through `run`, which prints the command and runs it unless --dry-run was given,
# so `--dry-run` shows exactly what a real run would do. Steps are resumable: downloads skip files that exist and
# hat-preprocess skips finished outputs.

set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPTS_DIR/.." && pwd)"
DRY_RUN=0
PYTHON="${PYTHON:-python3}"
FETCH=("$PYTHON" "$SCRIPTS_DIR/fetch_corpus.py")

run() {
    printf '%q ' "$@"
    printf '\n'
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    fi
}

# run_to FILE CMD...: run CMD with stdout into FILE (written to FILE.tmp, then renamed); skipped if FILE exists.
run_to() {
    local out="$1"
    shift
    printf '%q ' "$@"
    printf '> %q\n' "$out"
    if [ "$DRY_RUN" = 0 ] && [ ! -s "$out" ]; then
        "$@" > "$out.tmp"
        mv "$out.tmp" "$out"
    fi
}

die() {
    echo "$(basename "$0"): error: $*" >&2
    exit 2
}

# prepare_wmt ARGS...: the shared WMT recipe. The calling script sets
#   NAME SRC TGT VOCAB               task name (data-bin/NAME), language pair, sentencepiece vocabulary
#   ARCHIVES=(URL ...)               tarballs downloaded to RAW/orig and extracted there
#   CORPORA=(PREFIX ...)             parallel training corpora, relative to RAW/orig (PREFIX.SRC / PREFIX.TGT)
#   VALID_SET TEST_SET               sacrebleu test-set names (dev/test text comes from sacrebleu's cache)
# and may define `extra_steps` (run after extraction, before concatenation).
# Options: --raw-dir DIR --dest DIR --bpe-vocab N --extra-corpus PREFIX (repeatable) --max-train-lines N --dry-run
prepare_wmt() {
    local raw="data/raw/$NAME" dest="data-bin/$NAME" extra=() pp_extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --raw-dir) raw="$2"; shift 2 ;;
            --dest) dest="$2"; shift 2 ;;
            --bpe-vocab) VOCAB="$2"; shift 2 ;;
            --extra-corpus) extra+=("$2"); shift 2 ;;
            --max-train-lines) pp_extra+=(--max-train-lines "$2"); shift 2 ;;
            --dry-run) DRY_RUN=1; shift ;;
            -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
    RAW="$raw"
    local orig="$raw/orig" url archive
    for url in "${ARCHIVES[@]}"; do
        archive="$orig/$(basename "$url")"
        run "${FETCH[@]}" download "$url" "$archive"
        run "${FETCH[@]}" extract "$archive" "$orig/$(basename "$url" | sed -E 's/\.(tgz|tar\.gz|tar|zip)$//')"
    done
    if declare -F extra_steps > /dev/null; then
        extra_steps
    fi
    local prefixes=() p
    for p in "${CORPORA[@]}"; do
        prefixes+=("$orig/$p")
    done
    prefixes+=(${extra[@]+"${extra[@]}"})
    # fairseq's WMT recipes: Moses clean-corpus-n 1-250 words, length ratio 1.5
    run "${FETCH[@]}" concat --src "$SRC" --tgt "$TGT" --out "$raw/train" --max-len 250 --ratio 1.5 "${prefixes[@]}"
    run_to "$raw/valid.$SRC" sacrebleu -t "$VALID_SET" -l "$SRC-$TGT" --echo src
    run_to "$raw/valid.$TGT" sacrebleu -t "$VALID_SET" -l "$SRC-$TGT" --echo ref
    run_to "$raw/test.$SRC" sacrebleu -t "$TEST_SET" -l "$SRC-$TGT" --echo src
    run_to "$raw/test.$TGT" sacrebleu -t "$TEST_SET" -l "$SRC-$TGT" --echo ref
    run hat-preprocess --src "$SRC" --tgt "$TGT" --trainpref "$raw/train" --validpref "$raw/valid" \
        --testpref "$raw/test" --destdir "$dest" --bpe-vocab "$VOCAB" --threads 2 ${pp_extra[@]+"${pp_extra[@]}"}
}
