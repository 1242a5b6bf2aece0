#!/usr/bin/env bash
# Release a new FER2013 `default` from a finished training run, and re-measure everything
# that quotes it. Run on an otherwise idle machine (the speed figures are medians of
# repeated timings; a training run on the same cores halves them).
#
#     bash scripts/ship_default.sh runs/fer2013_student_w64 [VIEWS [CALIBRATION]]
#
# VIEWS are the extra test-time views (ferkit.zoo.tta text, e.g. "scale=1.1"), chosen on
# FER2013 val with benchmarks/tta_views.py; left out, the model ships with flip alone.
# CALIBRATION is how the int8 copy's activation ranges are set (`ferkit quantize
# --calibration`: minmax, the default, percentile or entropy).
# Steps: RUN/best.pt -> default_fp32 (ONNX and checkpoint with float16-stored weights, which
# keeps a w64 net's files under 25 MB; card; temperature fitted on val) -> its TTA ->
# int8 copy as `default` -> speed into the cards -> int8 A/B -> video speed for the three
# FER2013 models -> accuracy table -> TTA sets of `default` -> README tables.
set -euo pipefail
RUN=${1:?usage: ship_default.sh RUN [VIEWS [CALIBRATION]]}
VIEWS=${2:-}
CAL=${3:-minmax}
test -f "$RUN/best.pt" || { echo "ship_default.sh: $RUN/best.pt not found" >&2; exit 2; }
ROOT=$(realpath "$(dirname "$0")/..")
PY=$(realpath -s "${PY:-$ROOT/.venv/bin/python}")   # -s: keep the venv's symlink
RUN=$(realpath -s --relative-to="$ROOT" "$RUN")   # the run as the repository sees it
cd "$ROOT"

$PY scripts/ship_models.py "$RUN:default_fp32:half" "tta:default_fp32:$VIEWS" "int8:default_fp32:default:$CAL"
(
  cd benchmarks
  $PY classify_speed.py --update-cards
  $PY quantize.py
  for m in default default_fp32 fast; do $PY analyze_speed.py --model "$m"; done
  $PY accuracy.py
  $PY tta_views.py --model default
)
$PY scripts/readme_tables.py
git status --short src/ferkit/assets benchmarks/results README.md
