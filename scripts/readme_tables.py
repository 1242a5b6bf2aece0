"""Fill the README's model and benchmark tables from the model cards and the committed
benchmark JSON files (so the README quotes measured figures only).

    python scripts/readme_tables.py
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from research_tables import load, research_tables  # noqa: E402


def models_table():
    from ferkit.zoo.shipped import shipped
    from ferkit.zoo.tta import describe
    speed = load("classify_speed") or {"rows": []}
    sp = {(r["model"], r["threads"], r["batch"]): r["faces_per_s"] for r in speed["rows"]}
    lines = ["| name | architecture | classes | TTA | val accuracy | macro-F1 | "
             "ECE raw / calibrated / calibrated, cross-fitted |"
             " faces/s 1 thread (batch 1 / 64) | faces/s 2 threads (batch 1 / 64) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in shipped():
        c, v = r.card, r.card["metrics"].get("val", {})
        arch = c["architecture"]
        a = f"{arch['name']} w{arch.get('width', '-')}"
        if arch.get("stem_stride") == 1:       # issue 16's full-resolution stem
            a += ", full-res stem"
        a += ", int8" if c.get("quantization") else ""
        f = lambda t, b: f"{sp[(r.name, t, b)]:,.0f}" if (r.name, t, b) in sp else "-"
        cfd = (c.get("calibration") or {}).get("ece_cross_fitted") or {}
        cf = f"{cfd['temperature+top_label_map']:.4f}" if cfd else "-"
        tta = describe(bool(c.get("tta_flip")), c.get("tta_views") or [])
        lines.append(f"| `{r.name}` | {a} | {len(r.classes)} | {tta} | "
                     f"{v.get('accuracy', 0):.4f} | "
                     f"{v.get('macro_f1', 0):.4f} | {v.get('ece_uncalibrated', 0):.4f} / "
                     f"{v.get('ece', 0):.4f} / {cf} | {f(1, 1)} / {f(1, 64)} | "
                     f"{f(2, 1)} / {f(2, 64)} |")
    if speed["rows"]:
        m = speed.get("machine", {})
        lines.append("\nFaces/s: the median of the repeats of one run of "
                     f"`benchmarks/classify_speed.py` ({m.get('cpu', 'CPU')}, "
                     f"{m.get('cores', '?')} cores, {str(m.get('date', ''))[:10]}), "
                     "each model with the TTA it ships with "
                     "(a flip doubles the work per face); "
                     "their 10th-90th percentile range is in its JSON.")
        lines.append(second_cpu_line())
    return "\n".join(lines)


SECOND_CPU = "classify_speed_amd"      # benchmarks/classify_speed.py --out classify_speed_amd


def _cpu(m: dict) -> str:
    feats = ", ".join(m.get("cpu_features") or []) or "features not recorded"
    return f"{m.get('cpu', 'CPU')} ({feats}; {m.get('cores', '?')} cores, {str(m.get('date', ''))[:10]})"


def second_cpu_line() -> str:
    """One README sentence: the shipped models' 1-thread batch-1 speed on the second CPU."""
    b = load(SECOND_CPU)
    if not b:
        return ""
    rates = ", ".join(f"`{r['model']}` {r['faces_per_s']:,.0f}" for r in b["rows"]
                      if r["threads"] == 1 and r["batch"] == 1)
    return (f"\nOn a second CPU, {_cpu(b['machine'])}, the same benchmark gives at 1 thread, "
            f"batch 1: {rates} faces/s (every figure: docs/benchmarks.md).")


def second_cpu_table() -> list[str]:
    """classify_speed on the reference CPU and on the second one, model by model."""
    a, b = load("classify_speed"), load(SECOND_CPU)
    if not (a and b):
        return []
    key = lambda r: (r["model"], r["threads"], r["batch"])
    ref = {key(r): r["faces_per_s"] for r in a["rows"]}
    out = ["Classification on two CPUs (`benchmarks/classify_speed.py`, faces/s, each model with "
           f"its TTA; one run on each): A = {_cpu(a['machine'])}; B = {_cpu(b['machine'])}. "
           "These are shared virtual machines whose speed also drifts by 30-45% between sessions "
           "on the same CPU, so B / A is a guide, not a constant.\n",
           "| model | threads | batch | A | B | B / A |", "|---|---|---|---|---|---|"]
    for r in b["rows"]:
        x = ref.get(key(r))
        a_rate, ratio = (f"{x:,.0f}", f"{r['faces_per_s'] / x:.2f}") if x else ("-", "-")
        out.append(f"| `{r['model']}` | {r['threads']} | {r['batch']} | {a_rate} | "
                   f"{r['faces_per_s']:,.0f} | {ratio} |")
    return out + [""]


def analyze_tables() -> list[str]:
    """benchmarks/analyze_speed.py: the video analysed with each model."""
    out = []
    for model in ("default", "default_fp32", "fast", "default_amd"):
        a = load(f"analyze_speed_{model}")
        if a:
            out.append(f"Analysis of short_hamilton_clip.mp4 (640x360, 275 frames) with "
                       f"`{model.removesuffix('_amd')}` on {_cpu(a['machine'])}:\n")
            out.append("| configuration | frames/s | decode | detect | align | classify | track+other "
                       "| write | ms/frame |")
            out.append("|---|---|---|---|---|---|---|---|---|")
            for r in a["rows"]:
                m = r["ms_per_frame"]
                c = r.get("config", {"threads": r["threads"]})
                name = f"{c['threads']} thread{'s' if c['threads'] > 1 else ''}"
                if c["threads"] > 1:
                    name += ", threaded detection" if c.get("pipeline", True) else ", sequential"
                if c.get("detect_every", 1) > 1:
                    name += f", detect every {c['detect_every']}"
                track = "overlapped" if m.get("track_other") is None else f"{m['track_other']:.2f}"
                out.append(f"| {name} | {r['fps_median']:.1f} | {m['decode']:.2f} | "
                           f"{m['detect']:.2f} | {m['align']:.2f} | {m['classify']:.2f} | "
                           f"{track} | {m['write']:.2f} | {m['total']:.2f} |")
            out.append("")
            out.append("(With threaded detection the stage columns are busy time per frame; "
                       "the stages overlap.)\n")
    return out


def tta_table() -> list[str]:
    """benchmarks/tta_views.py: one model under several test-time augmentation sets."""
    t = load("tta_views")
    if not t:
        return []
    out = [f"Test-time augmentation sets on `{t['model']}` (it ships with {t['shipped_tta']}), "
           f"FER2013 val, 1 ORT thread, batch 1, one run:\n",
           "| views | passes per face | val acc | macro-F1 | faces/s |", "|---|---|---|---|---|"]
    for r in t["rows"]:
        out.append(f"| {r['tta']} | {r['passes']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                   f"{r['faces_per_s_1thread_batch1']:,.0f} |")
    return out + [""]


def vs_fer_table() -> list[str]:
    """benchmarks/vs_fer.py: ferkit against the `fer` package."""
    out = []
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
    return out


def _shipped_calibration() -> str:
    from ferkit.zoo.shipped import shipped
    card = next(r.card for r in shipped() if r.name == "default")
    return card.get("quantization", {}).get("calibration", "minmax")


def quantize_table() -> list[str]:
    """benchmarks/quantize.py: int8 against float32."""
    out = []
    q = load("quantize")
    if q:
        out.append("int8 (`ferkit quantize`, activation ranges from 512 train faces by "
                   f"`--calibration` {' or '.join(q.get('calibrations', ['minmax']))}) "
                   "against float32, FER2013 val, "
                   f"1 ORT thread, same run; `default` ships the int8 {_shipped_calibration()} "
                   "copy:\n")
        out.append("| model | precision | val acc (shipped TTA) | val acc (single) | ECE | "
                   "faces/s batch 1 | faces/s batch 64 | ONNX MB |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in q["rows"]:
            t = r.get("tta") or r["tta_flip"]     # results written before multi-view TTA
            out.append(f"| {r['model']} | {r['precision']} | {t['accuracy']:.4f} | "
                       f"{r['single']['accuracy']:.4f} | {t['ece']:.4f} | "
                       f"{r['faces_per_s_1thread_batch1']:,.0f} | "
                       f"{r['faces_per_s_1thread_batch64']:,.0f} | {r['onnx_bytes'] / 1e6:.1f} |")
        out.append("")
    return out


def train_speed_table() -> list[str]:
    """benchmarks/train_speed.py: training images/s."""
    out = []
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
    return out


def runs_table() -> list[str]:
    """benchmarks/accuracy.py: the training runs and their time to 70% val."""
    out = []
    acc = load("accuracy")
    if acc and acc.get("time_to_70"):
        out.append("Training runs (from their histories; a run fine-tuned from another run's "
                   "checkpoint counts that run's epochs and seconds too):\n")
        out.append("| run | stages | epochs | best val acc | train seconds | median images/s | "
                   "first epoch >= 70% val |")
        out.append("|---|---|---|---|---|---|---|")
        for k, d in acc["time_to_70"].items():
            r = d["reached"]
            out.append(f"| {k} | {d.get('stages', 1)} | {d['epochs']} | {d['best_val_acc']:.4f} | "
                       f"{d['total_seconds']:.0f} | "
                       f"{d['median_train_images_per_s']:.0f} | "
                       f"{'epoch %d after %.0f s' % (r['epoch'], r['seconds']) if r else 'not reached'} |")
    return out


def bench_table():
    out = (analyze_tables() + second_cpu_table() + vs_fer_table() + quantize_table() + tta_table()
           + train_speed_table() + runs_table())
    return "\n".join(out + research_tables() + scale_tables())

def scale_tables() -> list[str]:
    """Issue 16-18 tables: the stem A/B, the server under load, engines and DDP."""
    out = []
    ab = load("stem_ab")
    if ab:
        st = ab["setup"]
        out.append(f"\nInput-resolution A/B (`benchmarks/stem_ab.py`): resnet18 w40, "
                   f"`{st['recipe']}` for {st['epochs']} epochs, seed {st['seed']}, FER2013 val "
                   f"with flip TTA:\n")
        out.append("| variant | MMACs per face | val acc (best epoch) | last epoch | "
                   "ten-crop | median s/epoch |")
        out.append("|---|---|---|---|---|---|")
        for r in ab["rows"]:
            tc = r.get("val_accuracy_tencrop")
            out.append(f"| {r['variant']} | {r['macs_per_face'] / 1e6:.0f} | "
                       f"{r['val_accuracy_best']:.4f} ({r['best_epoch']}) | "
                       f"{r['val_accuracy_last']:.4f} | {'-' if tc is None else f'{tc:.4f}'} | "
                       f"{r['median_epoch_seconds']:.0f} |")
        out.append("\n![Val accuracy per epoch of the four variants](img/stem_ab.png)\n")
    out += width_table() + ferplus_table()
    sl = load("serve_load")
    if sl:
        out.append(f"\n`ferkit serve` under load on 127.0.0.1 (`benchmarks/serve_load.py`): "
                   f"{sl['setup']['photo']} ({sl['setup']['faces_per_photo']} faces) per request, "
                   f"server `{' '.join(sl['setup']['server'])}`, clients on the same 2 cores:\n")
        out.append("| clients | requests | requests/s | p50 ms | p99 ms | errors |")
        out.append("|---|---|---|---|---|---|")
        for r in sl["levels"]:
            out.append(f"| {r['clients']} | {r['requests']} | {r['requests_per_s']:.1f} | "
                       f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} |")
        o = sl["overload"]
        out.append(f"\nOverload (no queue, 1 analysis at a time, {o['clients']} clients): "
                   f"{o['status_codes'].get('503', 0)} of {o['requests']} requests answered 503 "
                   f"with Retry-After, {o['status_codes'].get('200', 0)} served.")
    en = load("engines")
    if en:
        st = en["setup"]
        out.append(f"\nAnalysis engines (`benchmarks/engines.py`): {st['photos']} photos and "
                   f"{st['videos']} copies of the video ({st['video_frames_each']} frames each), "
                   f"local Ray cluster on {st['cpus']} CPUs (start-up "
                   f"{st['ray_local_cluster_start_s']:.1f} s, not counted):\n")
        out.append("| engine | seconds | files/s | frames/s | faces |")
        out.append("|---|---|---|---|---|")
        for r in en["rows"]:
            out.append(f"| {r['engine']} | {r['seconds']:.1f} | {r['files_per_s']:.2f} | "
                       f"{r['frames_per_s']:.1f} | {r['faces']} |")
    dd = load("ddp_speed")
    if dd:
        out.append(f"\nDDP training throughput (`benchmarks/ddp_speed.py`, "
                   f"{dd['setup']['model']}, bf16, global batch 128, 2 cores):\n")
        out.append("| processes x threads | images/s |")
        out.append("|---|---|")
        for r in dd["rows"]:
            out.append(f"| {r['processes']} x {r['threads_per_process']} | "
                       f"{r['images_per_s']:.0f} |")
        out.append(f"\n2 processes run at {dd['speedup_2_processes']:.2f}x one on this "
                   f"machine: there is no third core, and each step adds an all-reduce.")
    return out


def width_table() -> list[str]:
    """Issue 16's width A/B: val accuracy on a fixed budget, and each width's int8 speed."""
    wa = load("width_ab")
    if not wa:
        return []
    st = wa["setup"]
    out = [f"\nWidth A/B (`benchmarks/width_ab.py`): resnet18 with the full-resolution stem, "
           f"`{st['recipe']}` for {st['epochs']} epochs, seed {st['seed']}, FER2013 val; int8 "
           f"through ONNX Runtime, 1 thread, batch 1:\n",
           "| width | MMACs per face | val acc flip, PyTorch (best epoch) | median s/epoch | "
           "int8 val acc flip / flip+zooms | int8 faces/s flip / flip+zooms |",
           "|---|---|---|---|---|---|"]
    for r in wa["rows"]:
        f, z = r["int8"]["flip"], r["int8"]["flip+scales"]
        out.append(f"| {r['variant']} | {r['macs_per_face'] / 1e6:.0f} | "
                   f"{r['val_accuracy_best']:.4f} ({r['best_epoch']}) | "
                   f"{r['median_epoch_seconds']:.0f} | {f['val_accuracy']:.4f} / "
                   f"{z['val_accuracy']:.4f} | {f['faces_per_s']:,.0f} / {z['faces_per_s']:,.0f} |")
    out.append("\n![Val accuracy per epoch of each width](img/width_ab.png)\n")
    return out


def ferplus_table() -> list[str]:
    """Issue 16's FER+ runs: the 48/64-px A/B and the distilled 48-px model, as ONNX."""
    fa = load("ferplus_ab")
    if not fa:
        return []
    out = [f"\nFER+ (`benchmarks/ferplus_ab.py`): resnet18 w40 on vote distributions, "
           f"{fa['data']}; accuracy through ONNX Runtime, faces/s on 1 thread at batch 1:\n",
           "| run | px | MMACs | epochs | trained on | float32 flip / none | int8 flip / none "
           "| int8 faces/s flip / none |", "|---|---|---|---|---|---|---|---|"]
    for r in fa["rows"]:
        o = r["onnx"]
        acc = lambda k: f"{o[k]['val_accuracy']:.4f}"  # noqa: E731
        fps = lambda k: f"{o[k]['faces_per_s_1thread_batch1']:,.0f}"  # noqa: E731
        out.append(f"| `{r['run']}` | {r['input_size']} | {r['macs_per_face'] / 1e6:.0f} | "
                   f"{r['epochs_run']} | {r['hardware']}, {r['wall_seconds'] / 60:.0f} min | "
                   f"{acc('fp32_flip')} / {acc('fp32_none')} | {acc('int8_flip')} / "
                   f"{acc('int8_none')} | {fps('int8_flip')} / {fps('int8_none')} |")
    out.append("\n![FER+ val accuracy per epoch](img/ferplus_ab.png)\n")
    return out + prune_table()


def prune_table() -> list[str]:
    """The shipped `ferplus` (w40 pruned to w32, fine-tuned) against the w40, timed in
    alternation (benchmarks/model_ab.py)."""
    pa = load("ferplus_prune_ab")
    if not pa:
        return []
    out = ["The w40 pruned to w32 (`ferkit prune`) and fine-tuned 30 epochs with the w40 as "
           "teacher (`recipes/ferplus_w32_prune.yaml`), against the w40, int8 both "
           "(`benchmarks/model_ab.py`: FER2013Valid, 1 thread, the models timed in "
           "alternation; `ferplus` there is the w40 as shipped until then, commit "
           "e0ac1af):\n", "| model | TTA | val | faces/s batch 1 / 64 | ratio batch 1 / 64 |",
           "|---|---|---|---|---|"]
    for r in pa["rows"]:
        out.append(f"| {r['name']} | {r['tta']} | {r['val_accuracy']:.4f} | "
                   f"{r['faces_per_s_1thread_batch1']:,.0f} / "
                   f"{r['faces_per_s_1thread_batch64']:,.0f} | "
                   f"{r['ratio_to_first_batch1']:.2f} / {r['ratio_to_first_batch64']:.2f} |")
    return out + [""]


FILES = ("README.md", "docs/models.md", "docs/benchmarks.md")


def render(text: str, tables: dict[str, str]) -> str:
    """``text`` with every <!-- TAG:BEGIN -->...<!-- TAG:END --> block it has refilled."""
    for tag, table in tables.items():
        block = f"<!-- {tag}:BEGIN -->\n{table}\n<!-- {tag}:END -->"
        text = re.sub(rf"<!-- {tag}:BEGIN -->.*?<!-- {tag}:END -->", lambda m: block, text,
                      flags=re.S)
    return text


def tables() -> dict[str, str]:
    return {"MODELS": models_table(), "BENCH": bench_table()}


def main():
    t = tables()
    for name in FILES:
        path = ROOT / name
        path.write_text(render(path.read_text(), t))


if __name__ == "__main__":
    main()
