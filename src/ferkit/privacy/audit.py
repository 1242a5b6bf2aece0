"""`ferkit privacy-audit`: how much does a model reveal about who was in its training set?

Two membership-inference attacks on equal-size, seeded draws of members and non-members:
- loss threshold (Yeom et al. 2018): lower loss on the true label -> member;
- shadow models, likelihood-ratio style (offline LiRA, Carlini et al. 2022): K shadow models
  trained on random halves of a disjoint reference set give, per face, the distribution of
  its logit-scaled confidence when it was NOT trained on; the target's score is measured
  against that distribution;
- reference-model difficulty calibration (Watson et al. 2022): the target's logit-scaled
  confidence minus that of one model that never saw the audited faces. For the two-stage
  recipe the natural reference is the public stage-one model, which the attacker has; the
  difference isolates what fine-tuning on the private faces added.
Reported: AUC, best-threshold accuracy, TPR at 1% and 0.1% FPR, an ROC plot, and for a DP
model the bounds its (epsilon, delta) implies for any attack. Two models audited on the same
faces can be compared attack by attack with DeLong's paired test (compare_audits).
"""
from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from ferkit.data import FaceArray, load_dataset
from ferkit.io import atomic_path
from ferkit.labels import ClassSpec
from ferkit.privacy.roc_stats import auc_ci95, delong_paired, roc

__all__ = ["attack_report", "audit_arrays", "auc_ci95", "compare_audits", "dp_bounds",
           "privacy_audit", "roc"]

log = logging.getLogger(__name__)


def attack_report(scores_in, scores_out) -> dict:
    fpr, tpr, auc = roc(scores_in, scores_out)
    acc = float(np.max((tpr + 1 - fpr) / 2))
    tpr_at = lambda f: float(np.max(tpr[fpr <= f])) if np.any(fpr <= f) else 0.0
    return {"auc": auc, "auc_ci95": auc_ci95(auc, len(scores_in), len(scores_out)),
            "accuracy": acc, "tpr_at_1pct_fpr": tpr_at(0.01),
            "tpr_at_0.1pct_fpr": tpr_at(0.001), "roc": (fpr, tpr),
            "scores": (np.asarray(scores_in), np.asarray(scores_out))}


def dp_bounds(epsilon: float, delta: float) -> dict:
    """What (epsilon, delta)-DP allows any attack at most: TPR <= e^eps FPR + delta and
    TPR <= 1 - e^-eps (1 - delta - FPR)."""
    e = math.exp(epsilon)
    f = np.linspace(0, 1, 10001)
    tpr = np.minimum.reduce([np.ones_like(f), e * f + delta, 1 - (1 - delta - f) / e])
    tpr = np.clip(tpr, 0, 1)
    return {"epsilon": epsilon, "delta": delta, "auc_max": float(np.trapezoid(tpr, f)),
            "accuracy_max": min(1.0, (e + delta) / (1 + e)),
            "tpr_at_1pct_fpr_max": min(1.0, e * 0.01 + delta),
            "tpr_at_0.1pct_fpr_max": min(1.0, e * 0.001 + delta), "roc": (f, tpr)}


def _draw(members: FaceArray, non: FaceArray, n: int | None, seed: int):
    n = min(len(members), len(non), n or 10**9)
    rng = np.random.default_rng(seed)
    return (members.subset(rng.permutation(len(members))[:n]),
            non.subset(rng.permutation(len(non))[:n]))


class _Scorer:
    """True-label probabilities from an ONNX model (shipped name/.onnx) or a .pt checkpoint."""

    def __init__(self, model):
        self.path = str(model)
        if self.path.endswith(".pt"):
            from ferkit.train import checkpoint
            ck = checkpoint.load(self.path)
            self.kind, self.ck = "torch", ck
            self.net = checkpoint.build_from_checkpoint(ck)
            self.classes, mc = ck["classes"], ck["model_config"]
            self.size, self.channels, self.privacy = mc["input_size"], mc["in_chans"], ck.get("privacy")
        else:
            from ferkit.zoo.classify import OnnxClassifier
            self.kind, self.clf = "onnx", OnnxClassifier(model, threads=2, tta=False)
            self.classes, self.size, self.channels = self.clf.classes, self.clf.size, self.clf.channels
            self.privacy = self.clf.ref.card.get("privacy")

    def probs(self, ds: FaceArray) -> np.ndarray:
        if self.kind == "onnx":
            return self.clf.predict_proba(ds.images)
        import torch

        from ferkit.train.loop import images_to_tensor, predict_logits
        mc = self.ck["model_config"]
        z = predict_logits(self.net, images_to_tensor(ds.images), mc["mean"], mc["std"],
                           channels_last=False)
        return torch.softmax(z, 1).numpy()


def _phi(probs, labels):
    """Logit-scaled confidence on the true label (LiRA's statistic)."""
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7)
    return np.log(p) - np.log(1 - p)


def privacy_audit(model, members: str | Path, non_members: str | Path, *, n: int | None = None,
                  seed: int = 0, reference: str | Path | None = None, shadow_models: int = 0,
                  shadow_recipe: dict | None = None, workdir: str | Path | None = None,
                  plots: str | Path | None = None, reference_model=None,
                  keep_scores: bool = False, compare_model=None) -> dict:
    """Audit ``model`` on labelled face folders (see audit_arrays). ``compare_model`` (same
    classes) is audited on the same faces with the same attacks and shadow models, and the
    report gains ``comparison`` (compare_audits: model minus compare_model)."""
    scorer = _Scorer(model)
    other = _reference(scorer, compare_model, "compared model") if compare_model else None
    if reference_model is not None:     # one scorer for both audits of a comparison
        reference_model = _reference(scorer, reference_model)
    spec = ClassSpec(tuple(scorer.classes))
    kw = dict(size=scorer.size, channels=scorer.channels, spec=spec)
    ref = load_dataset(reference, None, **kw) if reference is not None else None
    mem, non = load_dataset(members, None, **kw), load_dataset(non_members, None, **kw)
    if other is None:
        return audit_arrays(scorer, mem, non, n=n, seed=seed, reference=ref,
                            shadow_models=shadow_models, shadow_recipe=shadow_recipe,
                            workdir=workdir, plots=plots, reference_model=reference_model,
                            keep_scores=keep_scores)
    import tempfile
    with tempfile.TemporaryDirectory(prefix="ferkit-shadows-") as tmp:  # shadows trained once
        kw = dict(n=n, seed=seed, reference=ref, shadow_models=shadow_models,
                  shadow_recipe=shadow_recipe, workdir=workdir or tmp, keep_scores=True,
                  reference_model=reference_model)
        rep = audit_arrays(scorer, mem, non, plots=plots, **kw)
        cmp_rep = audit_arrays(other, mem, non, **kw)
    rep["comparison"] = compare_audits(rep, cmp_rep)
    rep["comparison"]["compared_report"] = _drop_scores(cmp_rep)
    if not keep_scores:
        _drop_scores(rep)
    return rep


def _drop_scores(report: dict) -> dict:
    for a in report["attacks"].values():
        a.pop("scores", None)
    return report


def audit_arrays(model, members: FaceArray, non_members: FaceArray, *, n: int | None = None,
                 seed: int = 0, reference: FaceArray | None = None, shadow_models: int = 0,
                 shadow_recipe: dict | None = None, workdir: str | Path | None = None,
                 plots: str | Path | None = None, reference_model=None,
                 keep_scores: bool = False) -> dict:
    """Membership inference against ``model`` (a path or a _Scorer) on in-memory faces.
    ``reference_model`` (a path or a _Scorer, same classes, trained without the audited faces)
    adds the difficulty-calibrated attack.
    Shadow models are kept in ``workdir`` and reused by later audits that give the same
    workdir, reference set, audited faces and recipe (one set of shadows for many targets).
    ``keep_scores`` keeps each attack's per-face scores (numpy, not JSON) for compare_audits;
    ``faces`` in the report fingerprints the audited draw, so that two reports can be checked
    to be about the same faces."""
    scorer = model if isinstance(model, _Scorer) else _Scorer(model)
    ref_scorer = None
    if reference_model is not None:     # checked before any shadow model is trained
        ref_scorer = _reference(scorer, reference_model)
    mem, non = _draw(members, non_members, n, seed)
    p_in, p_out = scorer.probs(mem), scorer.probs(non)
    loss_in = -np.log(np.clip(p_in[np.arange(len(mem)), mem.labels], 1e-12, None))
    loss_out = -np.log(np.clip(p_out[np.arange(len(non)), non.labels], 1e-12, None))
    attacks = {"loss_threshold": attack_report(-loss_in, -loss_out)}
    if shadow_models > 0:
        if reference is None:
            from ferkit.errors import ConfigError
            raise ConfigError("the shadow-model attack needs --reference DATA: labelled faces "
                              "disjoint from both members and non-members")
        phi_out = _shadow_phis(reference, mem, non, shadow_models, shadow_recipe or {}, seed,
                               workdir)
        mu = phi_out.mean(0)
        sigma = float(phi_out.std(0).mean()) + 1e-6         # global variance (offline LiRA)
        t_in, t_out = _phi(p_in, mem.labels), _phi(p_out, non.labels)
        attacks["shadow_lira"] = attack_report((t_in - mu[:len(mem)]) / sigma,
                                               (t_out - mu[len(mem):]) / sigma)
        attacks["shadow_lira"]["shadow_models"] = shadow_models
    if ref_scorer is not None:
        attacks["reference_calibrated"] = _calibrated(ref_scorer, mem, non, p_in, p_out)
    report = {"model": scorer.path, "n_members": len(mem), "n_non_members": len(non),
              "seed": seed, "faces": _digest(mem, non),
              "member_accuracy": float((p_in.argmax(1) == mem.labels).mean()),
              "non_member_accuracy": float((p_out.argmax(1) == non.labels).mean()),
              "attacks": attacks}
    if scorer.privacy:
        report["privacy"] = {k: scorer.privacy.get(k) for k in ("epsilon", "delta", "accountant")}
        report["dp_bound"] = dp_bounds(scorer.privacy["epsilon"], scorer.privacy["delta"])
    if plots:
        _roc_png(Path(plots) / "roc.png", report)
    for a in attacks.values():
        a.pop("roc")
    if not keep_scores:
        _drop_scores(report)
    if "dp_bound" in report:
        report["dp_bound"].pop("roc")
    return report


def _digest(mem: FaceArray, non: FaceArray) -> str:
    """A fingerprint of the audited faces, in order: their labels and pixels."""
    h = hashlib.sha256()
    for arr in (mem.labels, mem.images, non.labels, non.images):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def compare_audits(a: dict, b: dict) -> dict:
    """Attack by attack, is model a's leak larger than model b's? Both reports must come from
    audit_arrays(..., keep_scores=True) on the same faces; each shared attack gets DeLong's
    paired test of AUC(a) - AUC(b): the difference, its 95% interval and its p-value."""
    from ferkit.errors import ConfigError
    if a.get("faces") != b.get("faces"):
        raise ConfigError(f"{a['model']} and {b['model']} were audited on different faces "
                          "(members, non-members, n or seed differ): a paired comparison needs "
                          "the same faces")
    if min(a["n_members"], a["n_non_members"]) < 2:
        raise ConfigError("a paired comparison needs at least 2 members and 2 non-members "
                          f"(got {a['n_members']} and {a['n_non_members']}): raise --n")
    out = {}
    for name in a["attacks"].keys() & b["attacks"].keys():
        if "scores" not in a["attacks"][name] or "scores" not in b["attacks"][name]:
            raise ConfigError("compare_audits needs reports made with keep_scores=True")
        out[name] = delong_paired(*a["attacks"][name]["scores"], *b["attacks"][name]["scores"])
    return {"model": a["model"], "compared_with": b["model"], "attacks": dict(sorted(out.items()))}


def _reference(scorer, reference_model, role: str = "reference model") -> _Scorer:
    """The scorer of a second model, refused unless its classes are the target's."""
    ref = reference_model if isinstance(reference_model, _Scorer) else _Scorer(reference_model)
    if list(ref.classes) != list(scorer.classes):
        from ferkit.errors import ConfigError
        raise ConfigError(f"{role} {ref.path} has classes {list(ref.classes)}, the "
                          f"audited model {list(scorer.classes)}: they must match")
    return ref


def _calibrated(ref: _Scorer, mem, non, p_in, p_out) -> dict:
    """phi(target) - phi(reference) per face: high where the target is surer than a model
    that never saw the face."""
    r_in, r_out = ref.probs(mem), ref.probs(non)
    rep = attack_report(_phi(p_in, mem.labels) - _phi(r_in, mem.labels),
                        _phi(p_out, non.labels) - _phi(r_out, non.labels))
    rep["reference_model"] = ref.path
    return rep


def _shadow_phis(ref: FaceArray, mem, non, k, recipe, seed, workdir) -> np.ndarray:
    """phi of every audited face under K shadow models that never saw it (K, 2n)."""
    import json
    import tempfile

    from ferkit.train.config import TrainConfig
    from ferkit.train.trainer import Trainer
    if workdir is None:                 # nothing of the shadow models is left behind
        with tempfile.TemporaryDirectory(prefix="ferkit-shadow-") as tmp:
            return _shadow_phis(ref, mem, non, k, recipe, seed, tmp)
    audited = FaceArray(np.concatenate([mem.images, non.images]),
                        np.concatenate([mem.labels, non.labels]), mem.classes,
                        mem.paths + non.paths)
    base = {"model": "resnet_fast", "width": 16, "epochs": 8, "batch_size": 128, "val_tta": False,
            "augment": {"erase_p": 0.0}, **recipe, "data": "<in-memory>"}
    rng = np.random.default_rng(seed + 1)
    out = []
    root = Path(workdir)
    h = hashlib.sha256(json.dumps(base, sort_keys=True).encode())
    for arr in (ref.images, ref.labels, audited.images, audited.labels):
        h.update(np.ascontiguousarray(arr).tobytes())
    key = h.hexdigest()[:16]
    for i in range(k):
        perm = rng.permutation(len(ref))
        half, rest = perm[: len(ref) // 2], perm[len(ref) // 2:]
        run = root / f"shadow-{key}-{seed}-{i}"
        cached = run / "phi.npy"
        if cached.is_file():
            log.info("shadow model %d/%d: reusing %s", i + 1, k, run)
            out.append(np.load(cached))
            continue
        cfg = TrainConfig.from_dict({**base, "seed": seed + 100 + i})
        log.info("shadow model %d/%d on %d reference faces", i + 1, k, len(half))
        Trainer(cfg, run, splits=(ref.subset(half), ref.subset(rest)), progress=False).fit()
        phi = _phi(_Scorer(run / "best.pt").probs(audited), audited.labels)
        with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
            np.save(fh, phi)
        out.append(phi)
    return np.stack(out)


def _roc_png(path: Path, report: dict) -> None:
    from ferkit.evaluation.plots import _plt, _save
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, a in report["attacks"].items():
        fpr, tpr = a["roc"]
        ax.plot(np.maximum(fpr, 1e-4), np.maximum(tpr, 1e-4), label=f"{name} (AUC {a['auc']:.3f})")
    if "dp_bound" in report:
        f, t = report["dp_bound"]["roc"]
        ax.plot(np.maximum(f, 1e-4), np.maximum(t, 1e-4), "k:",
                label=f"bound at eps={report['dp_bound']['epsilon']:.2g}")
    ax.plot([1e-4, 1], [1e-4, 1], "--", color="gray", label="chance")
    ax.set(xscale="log", yscale="log", xlim=(1e-3, 1), ylim=(1e-3, 1), xlabel="false positive rate",
           ylabel="true positive rate", title="Membership inference ROC")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    plt.close(fig)
