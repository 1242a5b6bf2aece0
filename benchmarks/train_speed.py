"""Training throughput (images/s) per model on this CPU: one optimiser step on a batch of
128 augmented 48-px faces, median over steps; fp32 vs bf16 autocast, channels-last on/off.

    python benchmarks/train_speed.py                  # the model table (train_speed.json)
    python benchmarks/train_speed.py --recipe recipes/fer2013_student_aug20.yaml

With ``--recipe`` it times that recipe's network (channels-last, its batch size) in float32
and in bf16 and says which is faster here (train_speed_<recipe>.json): bf16 autocast is
faster with AMX or on Zen 4/5 and can be slower on CPUs without AMX, so a run continued on
another machine can check before it resumes (``ferkit train --resume --no-bf16``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import ROOT, median_time, write_result

sys.path.insert(0, str(ROOT / "src"))

MODELS = [("seed_cnn", {}), ("resnet18", {"width": 40}), ("resnet18", {"width": 64}),
          ("resnet34", {"width": 48}), ("resnet50", {}), ("resnet_fast", {"width": 16}),
          ("resnet_fast", {"width": 24})]


def step_time(m, cl: bool, bf16: bool, batch: int = 128, size: int = 48,
              repeats: int = 6, sgd: bool = False) -> float:
    """Median seconds of one optimiser step (AdamW, or Nesterov SGD) of the freshly built
    model ``m`` on an augmented batch."""
    import torch

    from ferkit.train.augment import AugmentConfig, augment
    from ferkit.train.losses import per_sample_loss
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(batch, 1, size, size, generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 7, (batch,), generator=g), 7).float()
    m = m.train()
    if cl:
        m = m.to(memory_format=torch.channels_last)
    opt = (torch.optim.SGD(m.parameters(), 0.01, momentum=0.9, nesterov=True) if sgd
           else torch.optim.AdamW(m.parameters(), 1e-3))

    def step():
        x = augment(x0, AugmentConfig(), g)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = m(x)
        loss = per_sample_loss(out.float(), y, "ce").mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return median_time(step, repeats=repeats, warmup=2)


def model_table() -> None:
    import torch

    from ferkit.models import create_model
    rows = []
    for name, kw in MODELS:
        for cl in (True, False):
            for bf16 in (False, True):
                torch.manual_seed(0)
                m = create_model(name, 7, 1, **kw)
                t = step_time(m, cl, bf16)
                row = {"model": name, **kw, "channels_last": cl, "bf16": bf16,
                       "images_per_s": 128 / t,
                       "params_m": sum(p.numel() for p in m.parameters()) / 1e6}
                rows.append(row)
                print(row, flush=True)
    write_result("train_speed", {"rows": rows, "threads": 2, "batch": 128,
                                 "time": time.strftime("%H:%M")})


def recipe_precision(path: str, rounds: int = 3) -> None:
    """The recipe's network in float32 and bf16, alternated over ``rounds`` rounds (a shared
    CPU's speed drifts within minutes, so each precision is timed in every round); the
    verdict is on the medians over rounds."""
    import statistics

    import torch

    from ferkit.models import create_model
    from ferkit.train.config import TrainConfig, load_recipe
    from ferkit.train.trainer import model_kwargs
    cfg = TrainConfig.from_dict(load_recipe(path))
    kw = model_kwargs(cfg)
    per_round = {"float32": [], "bf16": []}
    for r in range(rounds):
        for name, bf16 in (("float32", False), ("bf16", True)):
            torch.manual_seed(0)
            t = step_time(create_model(cfg.model, 7, cfg.channels, **kw), True, bf16,
                          cfg.batch_size, cfg.crop or cfg.input_size, repeats=6,
                          sgd=cfg.optimizer == "sgd")
            per_round[name].append(round(t, 4))
            print(f"round {r + 1}: {name} {t:.3f} s/step", flush=True)
    med = {k: statistics.median(v) for k, v in per_round.items()}
    rows = {k: {"s_per_step": round(med[k], 4), "rounds": v,
                "images_per_s": round(cfg.batch_size / med[k], 1)} for k, v in per_round.items()}
    faster = min(rows, key=lambda k: rows[k]["s_per_step"])
    ratio = rows["bf16"]["s_per_step"] / rows["float32"]["s_per_step"]
    print(f"medians: float32 {rows['float32']['s_per_step']} s, bf16 {rows['bf16']['s_per_step']}"
          f" s; faster here: {faster} (bf16 / float32 step time {ratio:.2f}); resume with "
          f"{'--bf16' if faster == 'bf16' else '--no-bf16'}")
    write_by_cpu(f"train_speed_{Path(path).stem}", {
        "recipe": path, "model": cfg.model, **kw, "batch": cfg.batch_size, "threads": 2,
        "channels_last": True,
        "note": "the student's step only: augmentation, forward, backward, SGD; no teachers"},
        {"rows": rows, "bf16_over_float32_step_time": round(ratio, 3), "faster": faster})


def write_by_cpu(name: str, common: dict, entry: dict) -> None:
    """One result per CPU (keyed by family and model) in one file, so the verdict for a
    Xeon without AMX and for a Zen 4 stand side by side; this CPU's entry is replaced."""
    import json

    from _common import RESULTS, machine
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    def key(m: dict) -> str:
        return m.get("cpu_family_model") or m["cpu"]
    if "by_cpu" not in old and "rows" in old:            # a file from before one-per-CPU
        old = {"by_cpu": {key(old["machine"]): {
            k: old[k] for k in ("machine", "rows", "bf16_over_float32_step_time", "faster")}}}
    m = machine()
    by_cpu = {**old.get("by_cpu", {}), key(m): {"machine": m, **entry}}
    write_result(name, {**common, "by_cpu": by_cpu})


def main():
    import torch
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", help="time this recipe's network in float32 and bf16")
    a = p.parse_args()
    torch.set_num_threads(2)
    if a.recipe:
        recipe_precision(a.recipe)
    else:
        model_table()


if __name__ == "__main__":
    main()
