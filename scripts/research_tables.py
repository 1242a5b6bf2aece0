"""The research tables of docs/benchmarks.md (privacy, semi-supervised learning, the
ablation), from the committed benchmark JSON; used by scripts/readme_tables.py."""
import json
from pathlib import Path

RES = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def load(name):
    p = RES / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def privacy_tables() -> list[str]:
    """benchmarks/privacy_table.py: DP runs, their audits and the paired AUC tests."""
    out = []
    p = load("privacy_table")
    if p:
        st = p["setup"]
        out.append(f"\nPrivacy on FER2013 halves ({st['model']}; public {st['public_half']} / private "
                   f"{st['private_half']} faces; stage two trains `{st['trainable_stage_two']}`; "
                   f"audit: {st['audit_n']} members vs {st['audit_n']} val non-members, "
                   f"{st['shadow_models']} shadow models"
                   + (f"; two-stage: {st['epochs_stage_one']}-epoch public stage one, "
                      f"{st['epochs_stage_two']}-epoch stage two; calibrated attack against "
                      f"`{st['reference_model']}`" if st.get("reference_model") else "") + ")")
        sr = st.get("dp_scratch_recipe")
        if sr:
            out[-1] += (f"; DP from scratch: resnet_fast w{sr['width']}, {sr['optimizer'].upper()} "
                        f"lr {sr['lr']:g} momentum {sr['momentum']:g}, logical batch "
                        f"{sr['batch_size']}, {sr['schedule']}, {st['epochs_dp_scratch']} epochs")
        out[-1] += ":\n"
        out.append("| ε | recipe | val acc | macro-F1 | s/epoch | loss-attack AUC | LiRA AUC | "
                   "calibrated AUC [95%] | best TPR@1%FPR | ε bound on AUC |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")

        def auc(a):
            if not a:
                return "-"
            ci = a.get("auc_ci95")
            return f"{a['auc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        for r in p["rows"]:
            a = r["audit"]
            bound = f"{r['dp_bound_auc']:.3f}" if r.get("dp_bound_auc") else "-"
            tpr = max(v["tpr_at_1pct_fpr"] for v in a.values())
            out.append(f"| {r['epsilon']} | {r['recipe']} | {r['val_accuracy']:.4f} | "
                       f"{r.get('val_macro_f1') or float('nan'):.4f} | "
                       f"{r.get('seconds_per_epoch') or float('nan'):.0f} | "
                       f"{auc(a['loss_threshold'])} | {auc(a.get('shadow_lira'))} | "
                       f"{auc(a.get('reference_calibrated'))} | {tpr:.4f} | {bound} |")
        paired = [r for r in p["rows"] if r.get("non_private_minus_this")]
        if paired:
            out.append("\nIs the non-private model's leak larger? The same faces audited under both "
                       "models, AUC(non-private) minus AUC(DP) per attack, with DeLong's paired 95% "
                       "interval and p-value:\n")
            out.append("| ε | recipe | non-private run | loss attack | LiRA | calibrated |")
            out.append("|---|---|---|---|---|---|")

            def diff(c):
                if not c:
                    return "-"
                lo, hi = c["ci95"]
                return f"{c['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] p {c['p_value']:.1g}"
            for r in paired:
                for name, c in r["non_private_minus_this"].items():
                    out.append(f"| {r['epsilon']} | {r['recipe']} | {name} | "
                               f"{diff(c.get('loss_threshold'))} | {diff(c.get('shadow_lira'))} | "
                               f"{diff(c.get('reference_calibrated'))} |")
    return out


def semi_tables() -> list[str]:
    """benchmarks/semi_supervised.py: pseudo-label rounds and FixMatch epochs."""
    out = []
    s = load("semi_supervised")
    if s:
        a, c = s["a_supervised_10pct"], s["c_supervised_100pct"]
        out.append(f"\nSemi-supervised (10% labelled = {s['setup']['labelled']} faces; val accuracy): "
                   f"(a) 10% supervised {a['val_accuracy']:.4f}, (c) 100% supervised "
                   f"{c['val_accuracy']:.4f} ({c['epochs']} epochs)")
        cl = s.get("c_supervised_100pct_long")
        if cl:
            out[-1] += (f", and trained longer {cl['val_accuracy']:.4f} ({cl['epochs']} epochs; "
                        f"the last column measures the gap against it")
            for o in s.get("c_supervised_100pct_longer", [])[:-1]:
                out[-1] += f"; {o['epochs']} epochs: {o['val_accuracy']:.4f}"
            out[-1] += ")"
        out[-1] += (". A variant named `x+y` starts from the best model of variant `x` "
                    "instead of (a).\n")
        out.append("| variant | round | faces taken | purity | val acc | gap closed |"
                   + (" gap closed vs the longer (c) |" if cl else ""))
        out.append("|---|---|---|---|---|---|" + ("---|" if cl else ""))

        def share(acc, ref):        # share of the gap from (a) to ``ref``
            return (acc - a["val_accuracy"]) / (ref["val_accuracy"] - a["val_accuracy"])

        def closed(acc, ref):
            return f" {share(acc, ref):.0%} |"
        for run in s["b_pseudo_label"]:
            name = run.get("variant", f"threshold_{run['config']['threshold']}")
            for r in run["rounds"]:
                out.append(f"| {name} | {r['round']} | {r['selected']} | "
                           f"{r['purity']:.3f} | {r['val_accuracy']:.4f} |"
                           + closed(r["val_accuracy"], c)
                           + (closed(r["val_accuracy"], cl) if cl else ""))
        out += fixmatch_rows(s, a, c, cl)
    return out


def fixmatch_rows(s, a, c, cl) -> list[str]:
    """The FixMatch part of the semi-supervised table."""
    out = []

    def share(acc, ref):        # share of the gap from (a) to ``ref``
        return (acc - a["val_accuracy"]) / (ref["val_accuracy"] - a["val_accuracy"])

    def closed(acc, ref):
        return f" {share(acc, ref):.0%} |"
    online = s.get("b_fixmatch") or []
    if online:
        out.append("\nOnline pseudo-labels (FixMatch, `ferkit pseudo-label --method fixmatch`): "
                   "per epoch (one pass over the unlabelled faces, each seen once), the faces "
                   "that passed their class threshold, their purity against the hidden labels, "
                   "and the EMA model's val accuracy; every 5th epoch and the best:\n")
        out.append("| variant | starts from (val acc) | epoch | faces over the threshold | "
                   "purity | val acc | gap closed |" + (" gap closed vs the longer (c) |" if cl else ""))
        out.append("|---|---|---|---|---|---|---|" + ("---|" if cl else ""))
        for run in online:
            best = max(run["epochs"], key=lambda e: e["val_accuracy"])
            for e in run["epochs"]:
                if e["epoch"] % 5 and e is not best:
                    continue
                out.append(f"| {run['variant']} | {Path(run['start_model']).parent.name} "
                           f"({run['start_val_accuracy']:.4f}) | {e['epoch']}"
                           f"{' (best)' if e is best else ''} | {e['selected']} | "
                           f"{e['purity']:.3f} | {e['val_accuracy']:.4f} |"
                           + closed(e["val_accuracy"], c)
                           + (closed(e["val_accuracy"], cl) if cl else ""))
        top = max(online, key=lambda r: r["best_val_accuracy"])
        ref = cl or c
        last = top["epochs"][-1]["val_accuracy"]
        out.append(f"\nThe best (b), `{top['variant']}`, reaches {top['best_val_accuracy']:.4f} "
                   f"and closes {share(top['best_val_accuracy'], ref):.0%} of the gap to (c) "
                   f"at {ref['epochs']} epochs; its last epoch ({last:.4f}) closes "
                   f"{share(last, ref):.0%}. Every figure here, (c) included, is the best val "
                   "epoch of its run, so each is a little optimistic.")
    return out


def ablation_tables() -> list[str]:
    """benchmarks/ablation.py: training options and FER+ label schemes."""
    out = []
    ab = load("ablation")
    if ab:
        st = ab["setup"]
        out.append(f"\nAblation on FER2013 val ({st['model']} w{st['width']}, {st['epochs']} epochs, "
                   f"seed {st['seed']}):\n")
        out.append("| option | val acc | macro-F1 | wall s |\n|---|---|---|---|")
        for r in ab.get("fer2013", []):
            out.append(f"| {r['option']} | {r['val_accuracy']:.4f} | {r['val_macro_f1']:.4f} | "
                       f"{r['wall_seconds']:.0f} |")
        out.append(f"\nFER+ label schemes (8 classes, FER+ valid, {st['ferplus_epochs']} epochs):\n")
        out.append("| scheme | val acc | macro-F1 | wall s |\n|---|---|---|---|")
        for r in ab.get("ferplus", []):
            out.append(f"| {r['scheme']} | {r['val_accuracy']:.4f} | {r['val_macro_f1']:.4f} | "
                       f"{r['wall_seconds']:.0f} |")
    return out


def research_tables() -> list[str]:
    return privacy_tables() + semi_tables() + ablation_tables()
