"""Issue 18: training images/s with 1 process (2 threads) and with 2 DDP processes (1 thread
each, torchrun, gloo) on this 2-core machine: the default net (resnet18 w40, bf16), global
batch 128, on FER2013 train; the second epoch of 40 steps is timed (a 70-face val set keeps
validation out of the way).

    python benchmarks/ddp_speed.py [--steps 40]
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SHARED, write_result

FER = SHARED / "datasets" / "fer2013"


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, threads: int, steps: int, val: Path, out: Path) -> dict:
    launcher = [sys.executable, "-m", "ferkit"] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
         "--master_addr", "127.0.0.1", "--master_port", str(port()), "-m", "ferkit"]
    cmd = launcher + ["train", "--data", str(FER), "--val-data", str(val), "--out", str(out),
                      "--model", "resnet18", "--width", "40", "--bf16", "--epochs", "2",
                      "--batch-size", "128", "--threads", str(threads), "--no-progress",
                      "--max-steps-per-epoch", str(steps), "--no-val-tta"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
    h = json.loads((out / "history.json").read_text())[-1]
    return {"processes": nproc, "threads_per_process": threads, "global_batch": 128,
            "images_per_s": round(h["images_per_s"], 1), "epoch_seconds": round(h["seconds"], 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        val = Path(tmp) / "val"
        for d in sorted((FER / "val").iterdir()):
            (val / d.name).mkdir(parents=True)
            for p in sorted(d.glob("*.jpg"))[:10]:
                shutil.copy(p, val / d.name / p.name)
        for nproc, threads in ((1, 2), (2, 1)):
            rows.append(run(nproc, threads, args.steps, val, Path(tmp) / f"run{nproc}"))
            print(rows[-1], flush=True)
    write_result("ddp_speed", {"setup": {"model": "resnet18 w40", "bf16": True,
                                         "steps_timed": args.steps, "cores": 2},
                               "rows": rows,
                               "speedup_2_processes": round(rows[1]["images_per_s"]
                                                            / rows[0]["images_per_s"], 3)})


if __name__ == "__main__":
    main()
