#!/usr/bin/env bash
# The K fold runs of a recipe, one after another, then their out-of-fold logits (issue 16:
# cross-fitted distillation targets; docs/guide/train.md):
#
#     bash scripts/crossfit_folds.sh RECIPE K OUTROOT [train flags ...]
#
# Trains OUTROOT/fold_I with `--fold I/K` for I = 1..K (each with --resume, so a call after
# an interruption continues where the last stopped; a fold with summary.json is done), then
# writes OUTROOT/oof.npz with `ferkit crossfit` and its summary to OUTROOT/oof.json.
# With CROSSFIT_CARRY=DIR, a fold not done under OUTROOT but kept as DIR/fold_I.pt (its best
# weights: `python scripts/run_snapshot.py best OUTROOT/fold_I DIR/fold_I.pt`) counts as
# done and is scored from that file: finished folds outlive a work tree laid anew.
set -euo pipefail
RECIPE=${1:?usage: crossfit_folds.sh RECIPE K OUTROOT [train flags ...]}
K=${2:?usage: crossfit_folds.sh RECIPE K OUTROOT [train flags ...]}
OUT=${3:?usage: crossfit_folds.sh RECIPE K OUTROOT [train flags ...]}
shift 3
[[ "$K" =~ ^[0-9]+$ && "$K" -ge 2 ]] || { echo "crossfit_folds.sh: K must be >= 2" >&2; exit 2; }
ROOT=$(realpath "$(dirname "$0")/..")
FERKIT=${FERKIT:-$ROOT/.venv/bin/ferkit}
mkdir -p "$OUT"
runs=()
for i in $(seq 1 "$K"); do
  run="$OUT/fold_$i"
  runs+=("$run")
  if [ -f "$run/summary.json" ]; then
    echo "crossfit_folds.sh: $run is done"
    continue
  fi
  if [ -n "${CROSSFIT_CARRY:-}" ] && [ -f "$CROSSFIT_CARRY/fold_$i.pt" ]; then
    echo "crossfit_folds.sh: fold $i is done, carried as $CROSSFIT_CARRY/fold_$i.pt"
    runs[-1]="$CROSSFIT_CARRY/fold_$i.pt"
    continue
  fi
  echo "crossfit_folds.sh: fold $i/$K -> $run ($(date -u +%FT%TZ))"
  "$FERKIT" train --recipe "$RECIPE" --fold "$i/$K" --out "$run" --resume "$@"
done
"$FERKIT" crossfit "${runs[@]}" --out "$OUT/oof.npz" > "$OUT/oof.json.tmp"
mv "$OUT/oof.json.tmp" "$OUT/oof.json"
cat "$OUT/oof.json"
