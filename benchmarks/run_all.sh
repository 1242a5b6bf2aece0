#!/usr/bin/env bash
# Every benchmark, one after the other on an otherwise idle machine; results land in
# benchmarks/results/*.json. Needs the training extras and the shipped models.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-../.venv/bin/python}
$PY classify_speed.py --update-cards
$PY analyze_speed.py --model default
$PY analyze_speed.py --model fast
$PY accuracy.py
$PY vs_fer.py
$PY train_speed.py
