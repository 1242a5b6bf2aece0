#!/usr/bin/env bash
# Int8 ONNX copies of FER2013 checkpoints, to serve as online-distillation teachers (issue 16):
# an int8 w64 teacher scores a batch in about 60% of the time of its bf16 PyTorch pass
# (benchmarks/results/teacher_speed.json), and a recipe's `distill:` list takes .onnx files.
#
#     bash scripts/int8_teachers.sh OUTDIR NAME=RUN/best.pt [NAME=CKPT ...]
#
# Writes OUTDIR/NAME_int8.onnx (card, percentile activation ranges on 512 train faces) for
# each; the float export in between is removed. Check the copies against their checkpoints
# with benchmarks/ensemble_val.py (NAME=OUTDIR/NAME_int8.onnx).
set -euo pipefail
OUT=${1:?usage: int8_teachers.sh OUTDIR NAME=CKPT [NAME=CKPT ...]}
shift
test $# -gt 0 || { echo "int8_teachers.sh: name at least one NAME=CKPT" >&2; exit 2; }
ROOT=$(realpath "$(dirname "$0")/..")
FERKIT=${FERKIT:-$ROOT/.venv/bin/ferkit}
DATA=${DATA:-$ROOT/../shared/datasets/fer2013}
mkdir -p "$OUT"
for spec in "$@"; do
  name=${spec%%=*}
  ckpt=${spec#*=}
  if [ "$name" = "$spec" ] || [ ! -f "$ckpt" ]; then
    echo "int8_teachers.sh: $spec: expected NAME=CHECKPOINT with an existing checkpoint" >&2
    exit 2
  fi
  tmp="$OUT/${name}_float.onnx"
  "$FERKIT" export "$ckpt" --out "$tmp" --name "$name" --parity-data "$DATA" --no-val
  "$FERKIT" quantize --model "$tmp" --calib-data "$DATA" --n 512 --calibration percentile \
    --out "$OUT/${name}_int8.onnx"
  rm -f "$tmp" "${tmp%.onnx}.json" "${tmp%.onnx}.head.npz"
  echo "wrote $OUT/${name}_int8.onnx"
done
