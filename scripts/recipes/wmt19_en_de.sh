#!/usr/bin/env bash
# HAT recipe for wmt19_en_de (space wmt14_space0). See pipeline.sh for the steps and flags; e.g. `scripts/recipes/wmt19_en_de.sh --dry-run`.
TASK=wmt19_en_de SPACE=wmt14_space0 PREPARE=prepare_wmt19_en_de.sh DEVICE=${DEVICE:-gpu} LATENCIES=${LATENCIES:-100ms,150ms,200ms} SRC=en TGT=de
source "$(dirname "${BASH_SOURCE[0]}")/pipeline.sh" "$@"
