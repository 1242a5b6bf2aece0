"""Training runs on a lent GPU in one call of at most ten minutes (issue 16): unpack the
carried faces (scripts/pack_faces.py), time a short probe of all variants running side by
side, give each the same number of epochs so that they end before the deadline, train them
concurrently, and pack each run folder (without last.pt) into $OUT in pieces under the
16-MiB limit on returned files. A variant is NAME=EXTRA-OPTIONS for `ferkit train`.

    # the FER+ 48/64-px A/B of 2026-12-04 (PYTHONPATH=src, on the device machine):
    python3 scripts/lease_train.py --packed .devdata/ferplus.npz.xz --data /tmp/ferplus \\
        --recipe recipes/ferplus_r18.yaml --variant ferplus_r18_48= \\
        --variant "ferplus_r18_64=--input-size 64" --budget 500
Locally (no GPU) `--device cpu --cap 1 --probe-steps 2 --smoke` checks the whole path."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PIECE = 15 * 2**20


def train_cmd(a, extra, out, *more):
    return [sys.executable, "-m", "ferkit", "train", "--recipe", str(a.recipe),
            "--data", str(a.data), "--device", a.device, "--threads", str(a.threads),
            "--out", str(out), "--no-progress", *extra, *more]


def run_all(cmds, logs, deadline=None):
    procs = [subprocess.Popen(c, stdout=open(lg, "w"), stderr=subprocess.STDOUT)
             for c, lg in zip(cmds, logs)]
    for p in procs:
        left = None if deadline is None else max(1, deadline - time.time())
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait()
    return [p.returncode for p in procs]


def probe(a, variants: dict) -> tuple[float, int]:
    """(seconds per training step with every variant running at once, steps per full
    epoch). Validation is in the timed epoch, so the estimate errs long."""
    outs = {n: a.work / f"probe_{n}" for n in variants}
    t0 = time.time()
    rcs = run_all([train_cmd(a, x, outs[n], "--epochs", "2", "--max-steps-per-epoch",
                             str(a.probe_steps)) for n, x in variants.items()],
                  [a.work / f"probe_{n}.log" for n in variants])
    if any(rcs):
        for n in variants:
            print((a.work / f"probe_{n}.log").read_text()[-3000:])
        raise SystemExit(f"probe failed: {rcs}")
    per_step = max(json.loads((outs[n] / "history.json").read_text())[-1]["seconds"]
                   for n in variants) / a.probe_steps
    first = outs[next(iter(variants))]
    n_train = sum(json.loads((first / "summary.json").read_text())["train_counts"].values())
    steps = n_train // json.loads((first / "config.json").read_text())["batch_size"]
    print(f"probe {time.time() - t0:.0f}s: {per_step * 1000:.1f} ms/step (slowest variant), "
          f"{steps} steps/epoch")
    return per_step, steps


def pack(run: Path, out: Path) -> None:
    tar = out / f"{run.name}.tar"
    with tarfile.open(tar, "w") as tf:
        for f in sorted(run.iterdir()):
            if f.name != "last.pt":
                tf.add(f, arcname=f"{run.name}/{f.name}")
    data = tar.read_bytes()
    tar.unlink()
    for i in range(0, len(data), PIECE):
        (out / f"{run.name}.tar.{i // PIECE}").write_bytes(data[i:i + PIECE])


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, required=True)
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=OPTIONS")
    ap.add_argument("--packed", type=Path, required=True, help="scripts/pack_faces.py output")
    ap.add_argument("--data", type=Path, required=True, help="folder to unpack the faces to")
    ap.add_argument("--budget", type=float, default=500, help="seconds from start to the end "
                    "of training")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lease"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--cap", type=int, default=150, help="most epochs")
    ap.add_argument("--probe-steps", type=int, default=150)
    ap.add_argument("--smoke", action="store_true", help="3 steps per epoch (local check)")
    return ap.parse_args()


def main() -> None:
    a = parse_args()
    start = time.time()
    variants = {v.split("=", 1)[0]: shlex.split(v.split("=", 1)[1] if "=" in v else "")
                for v in a.variant}
    out = Path(os.environ.get("OUT", a.work / "out"))
    out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    if not a.data.is_dir():
        subprocess.run([sys.executable, "scripts/pack_faces.py", "unpack", str(a.packed),
                        str(a.data)], check=True)
    print(f"unpacked in {time.time() - start:.0f}s")
    per_step, steps = probe(a, variants)
    left = start + a.budget - time.time() - 30          # 30 s: data loading and start-up
    epochs = max(1, min(a.cap, int(left / (per_step * steps))))
    print(f"{left:.0f}s left: {epochs} epochs each", flush=True)
    runs = {n: a.work / n for n in variants}
    more = ["--max-steps-per-epoch", "3"] if a.smoke else []
    rcs = run_all([train_cmd(a, x, runs[n], "--epochs", str(epochs), *more)
                   for n, x in variants.items()],
                  [runs[n].with_suffix(".log") for n in variants], deadline=start + a.budget)
    print("return codes", rcs, f"at {time.time() - start:.0f}s")
    for run in runs.values():
        if run.is_dir():
            (run / "train.log").write_bytes(run.with_suffix(".log").read_bytes())
            pack(run, out)
    print(f"done at {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
