#!/usr/bin/env bash
# The main job on the embedded default: build an index of 10,000 generated
# personas, query it, and (as the sampler lands) draw a batch.
set -euo pipefail
PI=${1:-persona-index}; DB=${2:-demo.lance}; OUT=${3:-demo-out}
mkdir -p "$OUT"
export PERSONA_INDEX_DB="$DB"
T0=$(date +%s%N)
step() { printf '\n== [%6.1f s] %s\n' "$(awk "BEGIN{print ($(date +%s%N) - $T0) / 1e9}")" "$*"; }

step "build: 10,000 generated personas (embedded with all-MiniLM-L6-v2, offline)"
"$PI" generate --count 10000 --seed 0
step "info"
"$PI" info
step "similar: 'a secondary-school chemistry teacher in rural Kenya'"
"$PI" similar "a secondary-school chemistry teacher in rural Kenya" -k 5
step "similar, only personas in Asia"
"$PI" similar "a secondary-school chemistry teacher in rural Kenya" -k 5 --where "region = 'Asia'"
step "distant: the 5 least similar personas"
"$PI" distant "a secondary-school chemistry teacher in rural Kenya" -k 5
step "sample: a batch of 50 that covers the persona space (default strategy), with its manifest"
"$PI" sample -n 50 --seed 1 --out "$OUT/batch.jsonl"
step "coverage of that batch, next to the mean of 5 uniform batches of the same size"
"$PI" coverage --ids "$OUT/batch.jsonl" --compare-uniform 5
step "stratified by region, equal allocation"
"$PI" sample -n 14 --by region --seed 2
step "synthesis, offline: the batch as persona-conditioned prompts (OpenAI Batch API jsonl)"
"$PI" synthesize --template instruction --template math --personas "$OUT/batch.jsonl" \
  --requests-only --out "$OUT/requests.jsonl"
head -c 600 "$OUT/requests.jsonl"; echo " ..."
step "done"
printf '\nDone. Send %s to any OpenAI-compatible batch endpoint, or rerun synthesize with --base-url.\n' "$OUT/requests.jsonl"
