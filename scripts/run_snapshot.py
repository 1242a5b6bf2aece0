"""Carry a training run in one compact file (ferkit.train.snapshot): across machines, or
across a work tree laid anew between sessions, then continue it with --resume.

    python scripts/run_snapshot.py pack runs/fer2013_student_w64 snapshots/w64.pt
    python scripts/run_snapshot.py unpack snapshots/w64.pt runs/fer2013_student_w64
    python scripts/run_snapshot.py show snapshots/w64.pt
    python scripts/run_snapshot.py best runs/fer2013_member_w64 .carry/fer2013_member_w64_best.pt
                                        (a finished run: its best weights in float16)"""
from __future__ import annotations

import argparse
import sys

from ferkit.errors import FerkitError
from ferkit.train import snapshot


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="RUN/last.pt (+ small files) -> SNAPSHOT")
    p.add_argument("run")
    p.add_argument("dest")
    p.add_argument("--keep-optimizer", action="store_true",
                   help="keep the optimizer's per-parameter state (momentum, Adam moments)")
    p.add_argument("--with-best", action="store_true", help="carry best.pt too")
    p.add_argument("--averaged-only", action="store_true",
                   help="once averaging has started, carry only the averaged weights and "
                        "resume training from them (half the file)")
    u = sub.add_parser("unpack", help="SNAPSHOT -> a new RUN folder to --resume")
    u.add_argument("snapshot")
    u.add_argument("run")
    b = sub.add_parser("best", help="a finished RUN/best.pt -> a float16 checkpoint DEST")
    b.add_argument("run")
    b.add_argument("dest")
    s = sub.add_parser("show")
    s.add_argument("snapshot")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "pack":
            r = snapshot.pack(a.run, a.dest, keep_optimizer=a.keep_optimizer,
                              with_best=a.with_best, averaged_only=a.averaged_only)
            print(f"{a.dest}: epoch {r['epoch']}, best {r['best']:.4f} (epoch "
                  f"{r['best_epoch']}), {r['bytes'] / 2**20:.1f} MiB, files {r['files']}")
        elif a.cmd == "unpack":
            r = snapshot.unpack(a.snapshot, a.run)
            print(f"{a.run}: last.pt at epoch {r['epoch']}; continue with --resume")
        elif a.cmd == "best":
            r = snapshot.pack_best(a.run, a.dest)
            print(f"{a.dest}: {a.run}/best.pt in float16, {r['bytes'] / 2**20:.1f} MiB")
        else:
            print(snapshot.describe(a.snapshot))
    except FerkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
