#!/usr/bin/env bash
# HAT recipe for iwslt14_de_en (space iwslt14_space1). See pipeline.sh for the steps and flags; e.g. `scripts/recipes/iwslt14_de_en.sh --dry-run`.
TASK=iwslt14_de_en SPACE=iwslt14_space1 PREPARE=prepare_iwslt14_de_en.sh DEVICE=${DEVICE:-gpu} LATENCIES=${LATENCIES:-50ms,100ms,150ms} SRC=de TGT=en
source "$(dirname "${BASH_SOURCE[0]}")/pipeline.sh" "$@"
