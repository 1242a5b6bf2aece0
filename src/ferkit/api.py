"""The one-line Python API: ``ferkit.analyze`` and ``ferkit.load_model``.

>>> import ferkit
>>> result = ferkit.analyze("../shared/media/two_people.jpg")
>>> len(result.faces)
2
>>> result.faces[0].label in result.classes
True

Nothing heavy is imported until one of these is called (no torch, ever: they run the
shipped ONNX models through ONNX Runtime).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError
from ferkit.types import FaceResult, FrameResult


@dataclass
class AnalysisResult:
    """Every face found, per frame (a photo is one frame; a video has many)."""

    frames: list[FrameResult] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    @property
    def faces(self) -> list[FaceResult]:
        return [f for fr in self.frames for f in fr.faces]

    def __len__(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict:
        """The same per-face fields as ``faces.jsonl`` (rows under ``faces``)."""
        return {"classes": self.classes, "faces": [f.to_dict() for f in self.faces],
                "frames": len(self.frames), "failed": self.failed}

    def to_dataframe(self):
        """One row per face, probabilities as p_<class> columns (needs pandas)."""
        import pandas as pd
        rows = []
        for f in self.faces:
            d = f.to_dict()
            probs = d.pop("probs")
            rows.append({**d, **{f"p_{c}": v for c, v in probs.items()}})
        return pd.DataFrame(rows)


def _items(source) -> list:
    """A path, folder, array or list of them -> a flat list of files and arrays."""
    from ferkit.analysis.media import expand_inputs
    if isinstance(source, np.ndarray):
        return [source]
    if isinstance(source, (str, Path)):
        return expand_inputs([str(source)])
    out = []
    for s in source:
        out += _items(s)
    return out


def analyze(source, *, model: str = "default", detector: str = "yunet",
            tta: bool | str | None = None,
            abstain: str | None = None, threads: int = 2, stride: int = 1,
            skip_bad: bool = False, analyzer=None) -> AnalysisResult:
    """Find and classify every face in ``source``: an image path, a folder, a video path, a
    BGR numpy image (as OpenCV reads it) or a list of any of these. Videos are tracked and
    smoothed as ``ferkit analyze`` does. A bad file raises FerkitError naming it, or with
    ``skip_bad`` is listed in ``result.failed``. Pass ``analyzer`` (an Analyzer) to reuse
    loaded models across calls."""
    from ferkit.analysis.media import is_video
    from ferkit.analysis.pipeline import Analyzer, AnalyzerConfig
    an = analyzer or Analyzer(AnalyzerConfig.build(model=model, detector=detector, tta=tta,
                                                   abstain=abstain, threads=threads))
    result = AnalysisResult(classes=list(an.classes))
    for item in _items(source):
        try:
            if isinstance(item, np.ndarray):
                result.frames.append(an.analyze_image(item, source="<array>"))
            elif is_video(item):
                result.frames += list(an.analyze_video(item, stride=stride))
            else:
                result.frames.append(an.analyze_image(item, source=str(item)))
        except FerkitError as exc:
            if not skip_bad:
                raise
            result.failed.append({"input": str(item) if not isinstance(item, np.ndarray)
                                  else "<array>", "error": str(exc)})
    return result


def _crops(faces) -> list:
    """One crop (H, W) or (H, W, 3|4), a stack (N, H, W) or (N, H, W, 3|4), or a list."""
    if isinstance(faces, np.ndarray):
        single = faces.ndim == 2 or (faces.ndim == 3 and faces.shape[-1] in (3, 4))
        return [faces] if single else list(faces)
    return list(faces)


class Model:
    """A shipped or exported classifier for aligned face crops (see ``load_model``)."""

    def __init__(self, name: str = "default", *, threads: int = 1,
                 tta: bool | str | None = None):
        from ferkit.zoo.classify import OnnxClassifier
        self._clf = OnnxClassifier(name, threads=threads, tta=tta)

    @property
    def labels(self) -> list[str]:
        return list(self._clf.classes)

    @property
    def card(self) -> dict:
        """The model card: training data, recipe, val metrics, speed, calibration."""
        return dict(self._clf.ref.card)

    @property
    def name(self) -> str:
        return self._clf.ref.name

    def predict(self, faces) -> np.ndarray:
        """Calibrated probabilities (N, classes) for face crops: uint8 arrays of any size,
        grey or BGR (one crop or a list)."""
        return self._clf.predict_proba(_crops(faces))

    def predict_labels(self, faces) -> list[str]:
        return [self.labels[i] for i in self.predict(faces).argmax(1)]

    def predict_mc(self, faces, passes: int = 20, *, seed: int = 0) -> dict:
        """Monte-Carlo dropout: mean probabilities, their std, predictive entropy and mutual
        information (epistemic uncertainty) per face."""
        return self._clf.predict_mc(_crops(faces), passes, seed=seed)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, labels={self.labels})"


def load_model(name: str = "default", *, threads: int = 1,
               tta: bool | str | None = None) -> Model:
    """A classifier by shipped name (``default``, ``default_fp32``, ``fast``, ``ferplus``)
    or .onnx path (with its model card beside it)."""
    return Model(name, threads=threads, tta=tta)
