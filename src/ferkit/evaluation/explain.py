"""`ferkit explain`: Grad-CAM heat maps (Selvaraju et al. 2017) over the aligned faces the
analysis path finds, for the predicted class and any class asked for.

Detection and alignment come from the analysis path (the same faces `ferkit analyze`
classifies); the heat maps need gradients, so this module uses the PyTorch checkpoint
that ships beside each model (or a .pt the user gives). Outputs: one PNG strip per face
(face | CAM of the prediction | CAM of each requested class), a grid.png of every face when
a folder is explained, and explain.json with the predictions."""
from __future__ import annotations

import logging
import weakref
from pathlib import Path

import cv2
import numpy as np

from ferkit.errors import ConfigError, ModelError
from ferkit.train.checkpoint import load_model as load_torch_model

log = logging.getLogger(__name__)
TILE = 144
_CAM_LAYERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def target_layer(model):
    """The last module of ``features`` whose output is still a spatial map (H, W > 1);
    found once per model by a probe forward pass."""
    import torch
    if model in _CAM_LAYERS:
        return _CAM_LAYERS[model]
    mc = model.config
    x = torch.zeros(1, mc.in_chans, mc.input_size, mc.input_size)
    last = None
    with torch.no_grad():
        for mod in model.features:
            x = mod(x)
            if x.ndim == 4 and x.shape[2] > 1 and x.shape[3] > 1:
                last = mod
    if last is None:
        raise ModelError("model has no spatial feature map for Grad-CAM")
    _CAM_LAYERS[model] = last
    return last


def grad_cam(model, x, class_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps (len(class_ids), H, W) in [0, 1] at input resolution for one normalised
    input (1, C, H, W), and the class probabilities."""
    import torch
    layer = target_layer(model)
    acts = {}

    def hook(_m, _i, out):
        out.retain_grad()
        acts["a"] = out
    h = layer.register_forward_hook(hook)
    try:
        model.eval()
        logits = model(x)
    finally:
        h.remove()
    probs = torch.softmax(logits, 1)[0].detach().numpy()
    maps = []
    for c in class_ids:
        model.zero_grad()
        if acts["a"].grad is not None:
            acts["a"].grad = None
        logits[0, c].backward(retain_graph=True)
        a, g = acts["a"][0], acts["a"].grad[0]
        w = g.mean((1, 2), keepdim=True)
        cam = torch.relu((w * a).sum(0)).detach().numpy()
        cam = cv2.resize(cam, (x.shape[3], x.shape[2]), interpolation=cv2.INTER_LINEAR)
        maps.append(cam / cam.max() if cam.max() > 0 else cam)
    return np.stack(maps), probs


def overlay(face: np.ndarray, cam: np.ndarray, size: int = TILE) -> np.ndarray:
    """BGR tile: the face with the heat map blended over it."""
    f = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    if f.ndim == 2:
        f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
    heat = cv2.applyColorMap((cv2.resize(cam, (size, size)) * 255).astype(np.uint8),
                             cv2.COLORMAP_JET)
    return cv2.addWeighted(f, 0.55, heat, 0.45, 0)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def _explain_face(net, names, mc, face: np.ndarray, asked: list[str], title: str):
    """One aligned face: Grad-CAM of the predicted class and of each asked class, as a strip
    of tiles (the face, then one overlay per class), and its report row."""
    import torch

    from ferkit.train.loop import to_input
    t = torch.from_numpy(face[None, None] if face.ndim == 2 else
                         face.transpose(2, 0, 1)[None].copy())
    x = to_input(t, mc["mean"], mc["std"])
    with torch.no_grad():
        pred_first = int(net(x).argmax(1))
    ids = [pred_first] + [names.index(c) for c in asked if names.index(c) != pred_first]
    cams, probs = grad_cam(net, x, ids)
    bgr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else face
    tiles = [_label(cv2.resize(bgr, (TILE, TILE), interpolation=cv2.INTER_CUBIC), title)]
    for c, cam in zip(ids, cams):
        tiles.append(_label(overlay(face, cam), f"{names[c]} {probs[c]:.2f}"))
    row = {"label": names[pred_first], "probs": {n: float(p) for n, p in zip(names, probs)},
           "explained": [names[c] for c in ids]}
    return np.hstack(tiles), row


def explain(inputs: list[str], out_dir: str | Path, *, model=None, classes: list[str] | None = None,
            detector: str = "yunet", threads: int = 2) -> dict:
    import torch

    from ferkit.analysis.align import align_face
    from ferkit.analysis.detect import make_detector
    from ferkit.analysis.media import expand_inputs, is_video, load_image
    from ferkit.analysis.writers import write_image
    from ferkit.errors import FerkitError
    from ferkit.io import write_json

    torch.set_num_threads(threads)
    net, names, mc = load_torch_model(model)
    asked = [c.strip() for c in (classes or []) if c.strip()]
    bad = [c for c in asked if c not in names]
    if bad:
        raise ConfigError(f"--classes: {', '.join(bad)} not in the model's classes {names}")
    det = make_detector(detector)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, strips, errors = [], [], []
    for path in expand_inputs(inputs):
        if is_video(path):
            errors.append({"source": path, "error": "videos are not explained; give frames"})
            continue
        try:
            img = load_image(path)
        except FerkitError as exc:
            log.warning("%s", exc)
            errors.append({"source": path, "error": str(exc)})
            continue
        for i, box in enumerate(det.detect(img)):
            face = align_face(img, box, mc["input_size"], mc["in_chans"]).image
            strip, row = _explain_face(net, names, mc, face, asked, f"{Path(path).stem[:12]} #{i}")
            name = f"{Path(path).stem}_face{i}.png"
            write_image(out / name, strip)
            strips.append(strip)
            rows.append({"source": path, "face": i, "box": [box.x, box.y, box.w, box.h],
                         **row, "file": name})
    if len(strips) > 1:
        width = max(s.shape[1] for s in strips)
        grid = np.vstack([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in strips])
        write_image(out / "grid.png", grid)
    report = {"model": str(model or "default"), "faces": rows, "errors": errors}
    write_json(out / "explain.json", report)
    return report
