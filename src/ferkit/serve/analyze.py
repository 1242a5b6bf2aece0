"""One /v1/analyze request: decode each uploaded image in memory, find and classify its
faces with a pooled Analyzer, and shape the JSON answer (the same per-face fields as
``faces.jsonl``) or the annotated image."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
from fastapi import Query

from ferkit.analysis import writers
from ferkit.analysis.media import decode_image
from ferkit.serve.engine import AnalyzerPool


@dataclass
class AnalyzeOptions:
    model: str | None = Query(None, description="shipped model name (default: the server's)")
    detector: str | None = Query(None, description="yunet | haar | none (inputs are face crops)")
    tta: bool | None = Query(None, description="test-time augmentation as the card defines it "
                             "(mirror image plus any extra views; default: the card's choice)")
    abstain: str | None = Query(None, description="prob:T or entropy:T: answer 'uncertain'")
    blur: bool = Query(False, description="pixelate faces in the annotated image")
    annotate: bool = Query(False, description="answer with the annotated JPEG instead of JSON")

    def analyzer_options(self) -> dict:
        return {"model": self.model, "detector": self.detector, "tta": self.tta,
                "abstain": self.abstain}


def analyze_uploads(pool: AnalyzerPool, uploads: list[tuple[str, bytes]],
                    opts: AnalyzeOptions) -> dict:
    """Runs in a worker thread. Every image is decoded before any is analysed, so a bad
    file in a batch answers 4xx without work wasted on the others."""
    images = [(name, decode_image(data, name, pool.max_pixels)) for name, data in uploads]
    results = []
    with pool.lease(**opts.analyzer_options()) as analyzer:
        for name, img in images:
            results.append((img, analyzer.analyze_image(img, source=name)))
        clf = analyzer.classifier
        model, classes, tta, tta_name = clf.ref.name, analyzer.classes, clf.tta, clf.tta_name
    per_image = [{"source": r.source, "width": r.width, "height": r.height,
                  "negative_score": r.negative_score, "faces": [f.to_dict() for f in r.faces]}
                 for _, r in results]
    response = {"model": model, "classes": classes, "tta": tta, "tta_views": tta_name,
                "images": per_image,
                "faces": [f for im in per_image for f in im["faces"]]}
    return {"response": response, "results": results, "blur": opts.blur}


def annotated_jpeg(result: dict) -> bytes:
    img, res = result["results"][0]
    ok, buf = cv2.imencode(".jpg", writers.annotate(img, res, blur=result["blur"]),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()
