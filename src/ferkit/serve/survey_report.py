"""`ferkit survey report`: people against the model on the same faces. Human accuracy per
participant and per class, the model's accuracy on the faces, human-human agreement
(Fleiss' kappa, for any number of raters per face) and human-model agreement (Cohen's kappa
per participant), confusion matrices and a participants-vs-model plot; per group too."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np

from ferkit.evaluation.metrics import confusion
from ferkit.io import write_json, write_text
from ferkit.serve.survey_db import SurveyDB


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of an (items, categories) matrix of rating counts; items may have
    different numbers of raters (those with fewer than two are left out)."""
    counts = np.asarray(counts, float)
    n = counts.sum(1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(n) == 0:
        return None
    p_i = ((counts ** 2).sum(1) - n) / (n * (n - 1))
    p_j = counts.sum(0) / n.sum()
    p_bar, p_e = p_i.mean(), (p_j ** 2).sum()
    return None if p_e >= 1 else float((p_bar - p_e) / (1 - p_e))


def cohen_kappa(a: np.ndarray, b: np.ndarray, k: int) -> float | None:
    if len(a) == 0:
        return None
    cm = confusion(a, b, k).astype(float) / len(a)
    po, pe = np.trace(cm), float(cm.sum(1) @ cm.sum(0))
    return None if pe >= 1 else float((po - pe) / (1 - pe))


def model_predictions(faces: list[dict], classes: list[str], model: str) -> np.ndarray:
    """The model's label index (in ``classes``) for each face image (already a crop)."""
    from ferkit.zoo.classify import OnnxClassifier
    clf = OnnxClassifier(model, threads=2)
    missing = set(classes) - set(clf.classes)
    if missing:
        from ferkit.errors import ConfigError
        raise ConfigError(f"model {model!r} has no class {', '.join(sorted(missing))} of the "
                          f"survey; pick a model with the survey's classes")
    imgs = [cv2.imdecode(np.frombuffer(f["image"], np.uint8), cv2.IMREAD_UNCHANGED)
            for f in faces]
    probs = clf.predict_proba(imgs)
    order = [clf.classes.index(c) for c in classes]
    return probs[:, order].argmax(1)


def _summary(faces, answers, classes, model_pred) -> dict:
    """Every figure for one set of faces (all, or one group)."""
    k, idx = len(classes), {c: i for i, c in enumerate(classes)}
    fpos = {f["id"]: i for i, f in enumerate(faces)}
    truth = np.array([idx[f["label"]] for f in faces])
    rated = [a for a in answers if a["face_id"] in fpos and a["answer"] is not None]
    counts = np.zeros((len(faces), k))
    for a in rated:
        counts[fpos[a["face_id"]], idx[a["answer"]]] += 1
    people = {}
    for a in rated:
        people.setdefault(a["participant"], []).append((fpos[a["face_id"]], idx[a["answer"]]))
    rows = []
    for pid, pairs in sorted(people.items()):
        pos, ans = np.array([p for p, _ in pairs]), np.array([a for _, a in pairs])
        rows.append({"participant": pid, "answered": len(pairs),
                     "skipped": sum(a["participant"] == pid and a["answer"] is None
                                    and a["face_id"] in fpos for a in answers),
                     "accuracy": float((ans == truth[pos]).mean()),
                     "model_accuracy_same_faces": float((model_pred[pos] == truth[pos]).mean()),
                     "agreement_with_model": float((ans == model_pred[pos]).mean()),
                     "cohen_kappa_with_model": cohen_kappa(ans, model_pred[pos], k)})
    h_true = np.array([truth[fpos[a["face_id"]]] for a in rated], int)
    h_pred = np.array([idx[a["answer"]] for a in rated], int)
    cm_h = confusion(h_true, h_pred, k)
    cm_m = confusion(truth, model_pred, k)
    per_class = {c: {"faces": int((truth == i).sum()),
                     "human_accuracy": float(cm_h[i, i] / cm_h[i].sum()) if cm_h[i].sum() else None,
                     "model_accuracy": float(cm_m[i, i] / cm_m[i].sum()) if cm_m[i].sum() else None}
                 for i, c in enumerate(classes)}
    kappas = [r["cohen_kappa_with_model"] for r in rows if r["cohen_kappa_with_model"] is not None]
    return {"faces": len(faces), "answers": len(rated), "participants": len(rows),
            "human_accuracy": float((h_true == h_pred).mean()) if len(rated) else None,
            "human_accuracy_mean_of_participants":
                float(np.mean([r["accuracy"] for r in rows])) if rows else None,
            "model_accuracy": float((model_pred == truth).mean()) if len(faces) else None,
            "fleiss_kappa_humans": fleiss_kappa(counts),
            "cohen_kappa_human_model_mean": float(np.mean(kappas)) if kappas else None,
            "per_class": per_class, "participants_table": rows,
            "confusion_humans": cm_h.tolist(), "confusion_model": cm_m.tolist()}


def survey_report(db_path: Path, model: str, out: Path) -> dict:
    db = SurveyDB(db_path)
    faces, answers = db.faces(), db.answers()
    classes = db.classes
    pred = model_predictions(faces, classes, model)
    report = {"survey": str(db_path), "model": model, "classes": classes,
              "all": _summary(faces, answers, classes, pred), "groups": {}}
    groups = sorted({f["group"] for f in faces})
    if len(groups) > 1:
        for g in groups:
            keep = [i for i, f in enumerate(faces) if f["group"] == g]
            report["groups"][g] = _summary([faces[i] for i in keep], answers, classes, pred[keep])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    _participants_csv(out / "participants.csv", report)
    _plots(out, report)
    return report


def _participants_csv(path: Path, report: dict) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["group", "participant", "answered", "skipped", "accuracy",
                "model_accuracy_same_faces", "agreement_with_model", "cohen_kappa_with_model"])
    for name, s in [("all", report["all"]), *report["groups"].items()]:
        for r in s["participants_table"]:
            w.writerow([name, r["participant"], r["answered"], r["skipped"], r["accuracy"],
                        r["model_accuracy_same_faces"], r["agreement_with_model"],
                        r["cohen_kappa_with_model"]])
    write_text(path, buf.getvalue())


def _plots(out: Path, report: dict) -> None:
    from ferkit.evaluation.plots import _plt, _save, confusion_matrix_png
    classes = report["classes"]
    for name, s in [("all", report["all"]), *report["groups"].items()]:
        sfx = "" if name == "all" else f"_{name}"
        for who in ("humans", "model"):
            cm = s[f"confusion_{who}"]
            acc = s["human_accuracy" if who == "humans" else "model_accuracy"] or 0.0
            confusion_matrix_png({"confusion_matrix": cm, "classes": classes, "accuracy": acc},
                                 out / f"confusion_{who}{sfx}.png",
                                 f"{'People' if who == 'humans' else 'Model'} ({name}): "
                                 f"accuracy {acc:.3f}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    rows = report["all"]["participants_table"]
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="person = model")
    ax.scatter([r["model_accuracy_same_faces"] for r in rows], [r["accuracy"] for r in rows],
               s=[12 + 2 * r["answered"] for r in rows], alpha=0.7, label="a participant")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="model accuracy on the participant's faces",
           ylabel="participant accuracy", title="Each participant against the model")
    ax.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, out / "participants_vs_model.png")
    plt.close(fig)
