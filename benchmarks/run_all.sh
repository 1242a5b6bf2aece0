#!/usr/bin/env bash
# Every benchmark, one after the other on an otherwise idle machine; results land in
# benchmarks/results/*.json. Needs the training extras and the shipped models.
# The research benchmarks (privacy, semi-supervised, GAN + ablation) take about 2 hours
# on 2 CPU cores; their runs are kept under runs/ and reused when re-run.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-../.venv/bin/python}
$PY classify_speed.py --update-cards
$PY quantize.py
$PY analyze_speed.py --model default
$PY analyze_speed.py --model fast
$PY vs_fer.py
$PY train_speed.py
$PY accuracy.py
$PY tta_views.py --model default
$PY privacy_table.py
$PY semi_supervised.py
../.venv/bin/ferkit gan train --data ../../shared/datasets/fer2013 --out ../runs/gan --epochs 5 --width 32
../.venv/bin/ferkit gan sample --run ../runs/gan --per-class 500 --out ../runs/gan_samples
$PY ablation.py --gan-samples ../runs/gan_samples
$PY temporal.py
