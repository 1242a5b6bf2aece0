"""Subcommands for explanations, synthetic faces, video heads, int8 and pruned models and
cross-fitted targets: `ferkit explain`, `ferkit gan train|sample`, `ferkit temporal train`,
`ferkit quantize`, `ferkit prune`, `ferkit crossfit` (registered by cli.build_parser)."""
from __future__ import annotations

import json
from pathlib import Path

from ferkit.errors import FerkitError


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="Grad-CAM heat maps on the faces of photos",
                       description="Detect and align every face, classify it and draw "
                       "Grad-CAM heat maps for the predicted class and any --classes.")
    p.add_argument("inputs", nargs="+", help="images or folders ('-' reads paths from stdin)")
    p.add_argument("--model", default=None,
                   help="shipped name (uses its PyTorch checkpoint) or a .pt checkpoint")
    p.add_argument("--out", required=True, help="folder for PNG strips, grid.png, explain.json")
    p.add_argument("--classes", default="", help="also explain these classes, e.g. happy,sad")
    p.add_argument("--detector", choices=["yunet", "haar", "none"], default="yunet",
                   help="none: inputs are already face crops")
    p.add_argument("--threads", type=int, default=2)


def cmd_explain(a) -> int:
    from ferkit.evaluation.explain import explain
    rep = explain(a.inputs, a.out, model=a.model, classes=a.classes.split(","),
                  detector=a.detector, threads=a.threads)
    for f in rep["faces"]:
        print(f"{f['source']} face {f['face']}: {f['label']} -> {a.out}/{f['file']}")
    for e in rep["errors"]:
        print(f"skipped {e['source']}: {e['error']}")
    if not rep["faces"]:
        raise FerkitError("no face found in the inputs" + ("" if not rep["errors"] else
                                                            f" ({len(rep['errors'])} bad file(s))"))
    return 1 if rep["errors"] else 0


def add_gan(sub) -> None:
    p = sub.add_parser("gan", help="class-conditional face GAN: train, sample")
    gs = p.add_subparsers(dest="gan_cmd", required=True)
    t = gs.add_parser("train", help="train the conditional DCGAN on labelled 48 px faces")
    t.add_argument("--data", required=True, help="labelled faces (folders, CSV, label file)")
    t.add_argument("--out", required=True, help="run folder: checkpoints, samples/, history")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--fid-model", default="default",
                   help="classifier whose features score sample quality ('none' to skip)")
    t.add_argument("--no-progress", action="store_true")
    s = gs.add_parser("sample", help="write synthetic faces as OUT/<class>/*.png")
    s.add_argument("--run", required=True, help="GAN run folder (or its .pt)")
    s.add_argument("--per-class", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--classes", default=None, help="only these classes (comma list)")
    s.add_argument("--seed", type=int, default=0)


def cmd_gan(a) -> int:
    if a.gan_cmd == "train":
        from ferkit.train.gan import GanConfig, train_gan
        cfg = GanConfig(data=a.data, epochs=a.epochs, batch_size=a.batch_size, width=a.width,
                        lr=a.lr, seed=a.seed, threads=a.threads,
                        fid_model=None if a.fid_model == "none" else a.fid_model)
        r = train_gan(cfg, a.out, progress=not a.no_progress)
        print(json.dumps({k: r[k] for k in ("epochs", "best_frechet_distance")}, indent=2))
        return 0
    from ferkit.train.gan import sample_folder
    if a.per_class < 1:
        raise FerkitError("--per-class must be >= 1")
    r = sample_folder(a.run, a.out, a.per_class, seed=a.seed,
                      classes=a.classes.split(",") if a.classes else None)
    print(json.dumps(r, indent=2))
    return 0


def add_temporal(sub) -> None:
    p = sub.add_parser("temporal", help="video sequence head (GRU over per-frame features)")
    ts = p.add_subparsers(dest="temporal_cmd", required=True)
    t = ts.add_parser("train", help="train it on clips synthesised from labelled stills")
    t.add_argument("--model", default="default", help="shipped name or .onnx it will run on")
    t.add_argument("--data", required=True, help="labelled faces with train and val splits")
    t.add_argument("--out", required=True, help="folder for temporal.npz and temporal.json")
    t.add_argument("--window", type=int, default=8)
    t.add_argument("--n-train", type=int, default=6000, help="training clips")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)


def cmd_temporal(a) -> int:
    from ferkit.train.sequence import train_temporal
    if a.window < 2:
        raise FerkitError("--window must be >= 2")
    r = train_temporal(a.model, a.data, a.out, window=a.window, n_train=a.n_train,
                       epochs=a.epochs, hidden=a.hidden, seed=a.seed, threads=a.threads)
    print(json.dumps(r["val_accuracy"], indent=2))
    print(f"wrote {a.out}/temporal.npz (use: ferkit analyze VIDEO --model {a.model} "
          f"--temporal {a.out}/temporal.npz)")
    return 0


def add_quantize(sub) -> None:
    from ferkit.zoo.quantize import CALIBRATIONS  # numpy only: cheap at parser build
    p = sub.add_parser("quantize", help="int8 copy of a model for faster CPU inference",
                       description="Post-training static int8 quantisation (ONNX Runtime QDQ, "
                       "per-channel weights); activation ranges calibrated on training faces. "
                       "Writes OUT.onnx, its model card and MC-dropout head; --val re-measures "
                       "val metrics into the card. Needs the onnx package (ferkit[train]).")
    p.add_argument("--model", default=None, help="shipped name or .onnx (default: default)")
    p.add_argument("--calib-data", required=True,
                   help="faces to calibrate on: a dataset (its train split is used)")
    p.add_argument("--n", type=int, default=512,
                   help="calibration faces (seeded draw; over 32, whole batches of 32 are used)")
    p.add_argument("--calibration", default="minmax", choices=list(CALIBRATIONS),
                   help="how activation ranges are set from those faces (default: minmax)")
    p.add_argument("--out", required=True, help="the int8 model, NAME.onnx")
    p.add_argument("--val", default=None,
                   help="labelled val data: fit its calibration there and measure it")
    p.add_argument("--seed", type=int, default=0)


def cmd_quantize(a) -> int:
    from ferkit.zoo.quantize import calibration_faces, quantize_model
    if a.n < 1:
        raise FerkitError("--n must be >= 1")
    faces = calibration_faces(a.calib_data, a.model, n=a.n, seed=a.seed)
    card = quantize_model(a.model, a.out, faces, calib_source=str(a.calib_data),
                          calibration=a.calibration)
    if a.val:                        # its own calibration and val metrics, as shipped ones
        from ferkit.evaluation.evaluate import calibrate_and_measure
        card = calibrate_and_measure(a.out, a.val)
    print(json.dumps({"out": str(a.out), "quantization": card["quantization"],
                      "val": card["metrics"].get("val"),
                      "val_float": card["metrics"].get("val_float")}, indent=2))
    return 0


def add_prune(sub) -> None:
    p = sub.add_parser("prune", help="narrower copy of a trained ResNet, for fine-tuning",
                       description="Structured channel pruning (network slimming): keep the "
                       "channels with the largest BatchNorm scales, whole residual streams "
                       "together, and write a checkpoint of the same network at --width. "
                       "Fine-tune it with init_from (and the wide net as a distillation "
                       "teacher). Needs ferkit[train].")
    p.add_argument("checkpoint", help="the trained wide network (.pt)")
    p.add_argument("--width", type=int, required=True, help="the narrower width")
    p.add_argument("--out", required=True,
                   help="the pruned checkpoint (.pt), in a folder of its own: prune.json "
                   "beside it names the source, for the model card's training stages")


def cmd_prune(a) -> int:
    from ferkit.io import write_json
    from ferkit.train import checkpoint
    from ferkit.train.lineage import PRUNE_NOTE
    from ferkit.train.prune import prune_checkpoint
    ck = prune_checkpoint(checkpoint.load(a.checkpoint), a.width)
    checkpoint.save(a.out, ck)
    # run lineage (model cards) follows this note from the fine-tuning run to the wide run
    write_json(Path(a.out).parent / PRUNE_NOTE, {**ck["pruned_from"], "to_width": a.width,
                                                 "source": a.checkpoint, "out": a.out})
    print(f"wrote {a.out}: {ck['model_config']['name']} width {a.width} "
          f"(from width {ck['pruned_from']['width']}); fine-tune it with init_from")
    return 0


def add_crossfit(sub) -> None:
    p = sub.add_parser("crossfit", help="out-of-fold logits of the train faces from K fold "
                       "runs, as distillation targets",
                       description="Score every train face with the one run of `ferkit train "
                       "--fold I/K` that never saw it (flip TTA) and write the logits to "
                       "one .npz; train a student on them with --distill-targets. Needs "
                       "ferkit[train].")
    p.add_argument("runs", nargs="+", help="the K fold runs (folders with best.pt, or .pt files)")
    p.add_argument("--out", required=True, help="the targets file (.npz)")


def cmd_crossfit(a) -> int:
    from ferkit.train.crossfit import crossfit_logits
    print(json.dumps(crossfit_logits(a.runs, a.out), indent=2))
    return 0
