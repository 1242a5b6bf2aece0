"""The FER+ runs of issue 16 on a lent GPU, in one call of at most ten minutes: unpack the
carried faces (scripts/pack_faces.py), time a short probe of both variants running side by
side, give both the same number of epochs so that they end before the deadline, train the
48-px / 64-px A/B concurrently, and pack each run folder (without last.pt) into $OUT in
pieces under the 16-MiB limit on returned files.

    python3 scripts/lease_ferplus.py --budget 520      # on the device machine; PYTHONPATH=src
Locally (no GPU) `--device cpu --cap 1 --probe-steps 2` checks the whole path quickly."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

VARIANTS = {"ferplus_r18_48": [], "ferplus_r18_64": ["--input-size", "64"]}
PIECE = 15 * 2**20


def train_cmd(name, extra, out, a, *more):
    return [sys.executable, "-m", "ferkit", "train", "--recipe", "recipes/ferplus_r18.yaml",
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


def probe(a, work: Path) -> float:
    """Seconds per training step with both variants running at once (validation included,
    so the estimate errs long)."""
    outs = {n: work / f"probe_{n}" for n in VARIANTS}
    t0 = time.time()
    rcs = run_all([train_cmd(n, x, outs[n], a, "--epochs", "2", "--max-steps-per-epoch",
                             str(a.probe_steps)) for n, x in VARIANTS.items()],
                  [work / f"probe_{n}.log" for n in VARIANTS])
    if any(rcs):
        for n in VARIANTS:
            print((work / f"probe_{n}.log").read_text()[-3000:])
        raise SystemExit(f"probe failed: {rcs}")
    per_step = max(json.loads((outs[n] / "history.json").read_text())[-1]["seconds"]
                   for n in VARIANTS) / a.probe_steps
    print(f"probe {time.time() - t0:.0f}s: {per_step * 1000:.1f} ms/step (slower variant)")
    return per_step


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=520, help="seconds from start to the end "
                    "of training")
    ap.add_argument("--packed", type=Path, default=Path(".devdata/ferplus.npz.xz"))
    ap.add_argument("--data", type=Path, default=Path("/tmp/ferplus"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/lease"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--cap", type=int, default=150, help="most epochs")
    ap.add_argument("--probe-steps", type=int, default=150)
    ap.add_argument("--steps", type=int, default=221,
                    help="steps per full epoch (28,385 faces / 128)")
    ap.add_argument("--smoke", action="store_true", help="3 steps per epoch (local check)")
    a = ap.parse_args()
    start = time.time()
    out = Path(os.environ.get("OUT", a.work / "out"))
    out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    if not (a.data / "FER2013Valid" / "label.csv").is_file():
        subprocess.run([sys.executable, "scripts/pack_faces.py", "unpack", str(a.packed),
                        str(a.data)], check=True)
    print(f"unpacked in {time.time() - start:.0f}s")
    per_step = probe(a, a.work)
    left = start + a.budget - time.time() - 30          # 30 s: data loading and start-up
    epochs = max(1, min(a.cap, int(left / (per_step * a.steps))))
    print(f"{left:.0f}s left: {epochs} epochs each", flush=True)
    runs = {n: a.work / n for n in VARIANTS}
    more = ["--max-steps-per-epoch", "3"] if a.smoke else []
    rcs = run_all([train_cmd(n, x, runs[n], a, "--epochs", str(epochs), *more)
                   for n, x in VARIANTS.items()],
                  [runs[n].with_suffix(".log") for n in VARIANTS], deadline=start + a.budget)
    print("return codes", rcs, f"at {time.time() - start:.0f}s")
    for run in runs.values():
        if run.is_dir():
            (run / "train.log").write_bytes(run.with_suffix(".log").read_bytes())
            pack(run, out)
    print(f"done at {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
