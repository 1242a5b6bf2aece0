"""Evaluation: metrics, calibration, `ferkit evaluate` (and model-vs-model comparison),
plots, and Grad-CAM explanations (the last needs ferkit[train])."""
