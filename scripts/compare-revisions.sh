#!/usr/bin/env bash
# Behaviour check for refactors: trains one preset per model family for 40 steps with a fixed seed,
# evaluates on both engines and generates with a fixed seed, at two git revisions, then compares.
# Weights, carried state and Adam moments must be bit-identical, NLLs equal and the WAVs
# byte-identical (checkpoint metadata holds wall time, so only its tensors are compared).
#
#   scripts/compare-revisions.sh <base-rev> [<other-rev>]     # other defaults to the working tree
#
# Needs `npm ci` done in this checkout (the revisions share its node_modules). Takes ~5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BASE=${1:?usage: scripts/compare-revisions.sh <base-rev> [<other-rev>]}
OTHER=${2:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctspeech-compare-XXXXXX")
trap 'git -C "$REPO" worktree remove --force "$WORK/base" >/dev/null 2>&1 || true;
      [ -n "$OTHER" ] && git -C "$REPO" worktree remove --force "$WORK/other" >/dev/null 2>&1 || true' EXIT

checkout() { # <rev> <dir>: a built copy of the revision
  git -C "$REPO" worktree add --detach "$2" "$1" >/dev/null
  ln -s "$REPO/node_modules" "$2/node_modules"
  (cd "$2" && npx tsc -p tsconfig.json)
}

exercise() { # <repo> <out>: both revisions train on one corpus, so only the model code differs
  local M="node $1/dist/src/cli/main.js" O=$2 prompt
  prompt=$(ls "$REPO"/samples/speech/test/* | head -1)
  mkdir -p "$O"
  for p in ct-tiny wavenet-tiny; do
    $M train "$WORK/corpus" --model $p --run "$O/$p" --steps 40 --valid-every 20 --valid-samples 4000 \
      --seed 3 --backend wasm > "$O/$p.train.log" 2>&1
    $M eval --run "$O/$p" --json --limit-files 2 > "$O/$p.eval-onnxruntime.json" 2> /dev/null
    $M eval --run "$O/$p" --json --limit-files 2 --engine tfjs --backend wasm > "$O/$p.eval-tfjs.json" 2> /dev/null
    $M generate --run "$O/$p" --seconds 0.25 --seed 5 --prompt "$prompt" --prompt-seconds 0.3 --count 2 \
      --out "$O/$p-gen.wav" > /dev/null 2>&1
  done
}

checkout "$BASE" "$WORK/base"
node "$WORK/base/dist/src/cli/main.js" prepare "$REPO/samples/speech" --out "$WORK/corpus" > /dev/null
if [ -n "$OTHER" ]; then checkout "$OTHER" "$WORK/other"; SECOND=$WORK/other; else
  (npx tsc -p tsconfig.json); SECOND=$REPO; fi
echo "exercising $BASE ..."; exercise "$WORK/base" "$WORK/out-base"
echo "exercising ${OTHER:-the working tree} ..."; exercise "$SECOND" "$WORK/out-other"
node scripts/compare-runs.mjs "$WORK/out-base" "$WORK/out-other"
