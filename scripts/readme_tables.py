"""Fill the README's model and benchmark tables from the model cards and the committed
benchmark JSON files (so the README quotes measured figures only).

    python scripts/readme_tables.py
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))


def load(name):
    p = RES / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def models_table():
    from ferkit.zoo import shipped
    speed = load("classify_speed") or {"rows": []}
    sp = {(r["model"], r["threads"], r["batch"]): r["faces_per_s"] for r in speed["rows"]}
    lines = ["| name | architecture | classes | val accuracy (flip TTA) | macro-F1 | ECE calibrated / raw |"
             " faces/s 1 thread (batch 1 / 64) | faces/s 2 threads (batch 1 / 64) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in shipped():
        c, v = r.card, r.card["metrics"].get("val", {})
        arch = c["architecture"]
        a = f"{arch['name']} w{arch.get('width', '-')}"
        f = lambda t, b: f"{sp[(r.name, t, b)]:,.0f}" if (r.name, t, b) in sp else "-"
        lines.append(f"| `{r.name}` | {a} | {len(r.classes)} | {v.get('accuracy', 0):.4f} | "
                     f"{v.get('macro_f1', 0):.4f} | {v.get('ece', 0):.4f} / "
                     f"{v.get('ece_uncalibrated', 0):.4f} | {f(1, 1)} / {f(1, 64)} | "
                     f"{f(2, 1)} / {f(2, 64)} |")
    return "\n".join(lines)


def bench_table():
    out = []
    for model in ("default", "fast"):
        a = load(f"analyze_speed_{model}")
        if a:
            out.append(f"Analysis of short_hamilton_clip.mp4 (640x360, 275 frames) with `{model}`:\n")
            out.append("| threads | frames/s | decode | detect | align | classify | track+other | write | ms/frame |")
            out.append("|---|---|---|---|---|---|---|---|---|")
            for r in a["rows"]:
                m = r["ms_per_frame"]
                out.append(f"| {r['threads']} | {r['fps_median']:.1f} | {m['decode']:.2f} | "
                           f"{m['detect']:.2f} | {m['align']:.2f} | {m['classify']:.2f} | "
                           f"{m['track_other']:.2f} | {m['write']:.2f} | {m['total']:.2f} |")
            out.append("")
    v = load("vs_fer")
    if v:
        fk, fr = v["ferkit"], v["fer"]
        out.append(f"ferkit vs `fer` {fr['fer_version']} (Haar + TFLite, its own Video pipeline), "
                   f"{fk['threads']} threads, same run:\n")
        out.append("| | ferkit | fer |\n|---|---|---|")
        out.append(f"| video frames/s | {fk['video']['fps']:.1f} | {fr['video']['fps']:.1f} |")
        out.append(f"| faces found in the video | {fk['video']['faces']} | {fr['video']['faces']} |")
        for k in fk["images"]:
            out.append(f"| {k}: faces / ms | {fk['images'][k]['faces']} / "
                       f"{fk['images'][k]['median_ms']:.0f} | {fr['images'][k]['faces']} / "
                       f"{fr['images'][k]['median_ms']:.0f} |")
        out.append("")
    t = load("train_speed")
    if t:
        out.append("Training throughput on this 2-core CPU (batch 128, augmentation included, images/s):\n")
        out.append("| model | params (M) | fp32 channels-last | fp32 NCHW | bf16 channels-last | bf16 NCHW |")
        out.append("|---|---|---|---|---|---|")
        rows = {}
        for r in t["rows"]:
            key = f"{r['model']} w{r.get('width', '-')}"
            rows.setdefault(key, {"params": r["params_m"]})[(r["bf16"], r["channels_last"])] = r["images_per_s"]
        for k, d in rows.items():
            out.append(f"| {k} | {d['params']:.2f} | {d[(False, True)]:.0f} | {d[(False, False)]:.0f} | "
                       f"{d[(True, True)]:.0f} | {d[(True, False)]:.0f} |")
        out.append("")
    acc = load("accuracy")
    if acc and acc.get("time_to_70"):
        out.append("Training runs (from their histories):\n")
        out.append("| run | epochs | best val acc | train seconds | median images/s | first epoch >= 70% val |")
        out.append("|---|---|---|---|---|---|")
        for k, d in acc["time_to_70"].items():
            r = d["reached"]
            out.append(f"| {k} | {d['epochs']} | {d['best_val_acc']:.4f} | {d['total_seconds']:.0f} | "
                       f"{d['median_train_images_per_s']:.0f} | "
                       f"{'epoch %d after %.0f s' % (r['epoch'], r['seconds']) if r else 'not reached'} |")
    return "\n".join(out)


def main():
    readme = ROOT / "README.md"
    s = readme.read_text()
    for tag, text in (("MODELS", models_table()), ("BENCH", bench_table())):
        block = f"<!-- {tag}:BEGIN -->\n{text}\n<!-- {tag}:END -->"
        if f"<!-- {tag}:BEGIN -->" in s:
            s = re.sub(rf"<!-- {tag}:BEGIN -->.*?<!-- {tag}:END -->", lambda m: block, s, flags=re.S)
        else:
            s = s.replace(f"{tag}_TABLE", block)
    readme.write_text(s)


if __name__ == "__main__":
    main()
