"""Training throughput (images/s) per model on this CPU: one optimiser step on a batch of
128 augmented 48-px faces, median over steps; fp32 vs bf16 autocast, channels-last on/off.

    python benchmarks/train_speed.py
"""
from __future__ import annotations

import sys
import time

from _common import ROOT, median_time, write_result

sys.path.insert(0, str(ROOT / "src"))

MODELS = [("seed_cnn", {}), ("resnet18", {"width": 40}), ("resnet18", {"width": 64}),
          ("resnet34", {"width": 48}), ("resnet50", {}), ("resnet_fast", {"width": 16}),
          ("resnet_fast", {"width": 24})]


def main():
    import torch

    from ferkit.models import create_model
    from ferkit.train.augment import AugmentConfig, augment
    from ferkit.train.losses import per_sample_loss
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(128, 1, 48, 48, generator=g)
    y = torch.nn.functional.one_hot(torch.randint(0, 7, (128,), generator=g), 7).float()
    rows = []
    for name, kw in MODELS:
        for cl in (True, False):
            for bf16 in (False, True):
                torch.manual_seed(0)
                m = create_model(name, 7, 1, **kw).train()
                if cl:
                    m = m.to(memory_format=torch.channels_last)
                opt = torch.optim.AdamW(m.parameters(), 1e-3)

                def step():
                    x = augment(x0, AugmentConfig(), g)
                    if cl:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        out = m(x)
                    loss = per_sample_loss(out, y, "ce").mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                t = median_time(step, repeats=6, warmup=2)
                row = {"model": name, **kw, "channels_last": cl, "bf16": bf16,
                       "images_per_s": 128 / t,
                       "params_m": sum(p.numel() for p in m.parameters()) / 1e6}
                rows.append(row)
                print(row, flush=True)
    write_result("train_speed", {"rows": rows, "threads": 2, "batch": 128,
                                 "time": time.strftime("%H:%M")})


if __name__ == "__main__":
    main()
