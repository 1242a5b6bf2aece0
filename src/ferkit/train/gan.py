"""`ferkit gan train` / `ferkit gan sample`: train the conditional DCGAN on labelled faces,
with a sample grid PNG per epoch and a Frechet distance on our own classifier's
embeddings (an FID computed with a FER network instead of Inception) to track quality;
then write class-labelled synthetic faces as an image folder that `ferkit train
--extra-data` can add to training."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.data import load_dataset
from ferkit.data.dataset import split_if_present
from ferkit.errors import ConfigError
from ferkit.io import write_json
from ferkit.models.gan import Discriminator, Generator
from ferkit.train import checkpoint
from ferkit.train.loop import images_to_tensor

log = logging.getLogger(__name__)


@dataclass
class GanConfig:
    data: str = ""
    epochs: int = 20
    batch_size: int = 128
    z_dim: int = 64
    width: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    threads: int = 2
    fid_model: str | None = None      # classifier checkpoint for the Frechet distance
    fid_samples: int = 2000
    max_steps_per_epoch: int | None = None


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2), numpy only."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    sa = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(sa @ cb @ sa)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb)
                 - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


class _Embedder:
    """Our classifier's pooled features of uint8 faces, for the Frechet distance."""

    def __init__(self, path: str | Path | None):
        from ferkit.train.checkpoint import load_model
        self.net, _, self.mc = load_model(path)

    @torch.no_grad()
    def __call__(self, u8: torch.Tensor) -> np.ndarray:
        from ferkit.train.loop import to_input
        out = [self.net.embed(to_input(u8[i:i + 512], self.mc["mean"], self.mc["std"]))
               for i in range(0, len(u8), 512)]
        return torch.cat(out).numpy().astype(np.float64)


def to_u8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def generate(gen: Generator, labels: np.ndarray, seed: int, batch: int = 512) -> torch.Tensor:
    """Faces for ``labels``. BatchNorm uses the statistics of each generated batch (as in
    training; DCGAN's running averages lag the generator and give washed-out, saturated
    samples) without updating its running averages."""
    bns = [m for m in gen.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    was_training, momenta = gen.training, [m.momentum for m in bns]
    gen.train()
    for m in bns:
        m.momentum = 0.0                      # batch statistics, running ones left alone
    g = torch.Generator().manual_seed(seed)
    out = []
    try:
        for i in range(0, len(labels), batch):
            y = torch.from_numpy(labels[i:i + batch]).long()
            out.append(to_u8(gen(torch.randn(len(y), gen.z_dim, generator=g), y)))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        gen.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 1, 48, 48, dtype=torch.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    from ferkit.io import atomic_path
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: OpenCV cannot encode the image")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def sample_grid(gen: Generator, classes: list[str], path: Path, per_class: int = 8) -> None:
    import cv2

    labels = np.repeat(np.arange(len(classes)), per_class)
    imgs = generate(gen, labels, seed=123).numpy()[:, 0]
    rows = []
    for c, name in enumerate(classes):
        row = np.hstack(list(imgs[c * per_class:(c + 1) * per_class]))
        row = cv2.resize(row, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        label = np.zeros((row.shape[0], 110), np.uint8)
        cv2.putText(label, name, (4, row.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1)
        rows.append(np.hstack([label, row]))
    write_png(path, np.vstack(rows))


def _gan_step(gen, disc, opt_g, opt_d, xr, yr, z_dim: int, g) -> tuple[float, float]:
    """One non-saturating conditional GAN step (discriminator, then generator) on a batch
    of real faces (randomly mirrored); the fake classes follow the batch's classes."""
    flip = torch.rand(len(xr), generator=g) < 0.5
    xr = torch.where(flip.view(-1, 1, 1, 1), xr.flip(3), xr)
    z = torch.randn(len(xr), z_dim, generator=g)
    yf = yr[torch.randperm(len(xr), generator=g)]
    xf = gen(z, yf)
    d_loss = F.softplus(-disc(xr, yr)).mean() + F.softplus(disc(xf.detach(), yf)).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_loss = F.softplus(-disc(xf, yf)).mean()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return float(d_loss.detach()), float(g_loss.detach())


def train_gan(cfg: GanConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    from tqdm import tqdm
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise ConfigError("gan: epochs must be >= 1 and batch size >= 2")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train = load_dataset(cfg.data, split_if_present(cfg.data, "train"), size=48, channels=1)
    classes, k = train.classes, len(train.classes)
    x = images_to_tensor(train.images).float().div_(127.5).sub_(1)
    y = torch.from_numpy(train.labels)
    gen, disc = Generator(k, cfg.z_dim, cfg.width), Discriminator(k, cfg.width)
    opt_g = torch.optim.Adam(gen.parameters(), cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), cfg.lr, betas=(cfg.beta1, 0.999))
    embedder = _Embedder(cfg.fid_model) if cfg.fid_model is not None else None
    rng = np.random.default_rng(cfg.seed)
    ref_idx = rng.choice(len(train), min(cfg.fid_samples, len(train)), replace=False)
    real_feats = embedder(images_to_tensor(train.images[ref_idx])) if embedder else None
    steps = len(train) // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    g = torch.Generator().manual_seed(cfg.seed)
    history, best = [], float("inf")
    for epoch in range(cfg.epochs):
        t0 = time.time()
        gen.train()
        disc.train()
        order = torch.randperm(len(train), generator=g)
        ld = lg = 0.0
        for s in tqdm(range(steps), desc=f"gan epoch {epoch + 1}/{cfg.epochs}", leave=False,
                      disable=not progress):
            idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            d_loss, g_loss = _gan_step(gen, disc, opt_g, opt_d, x[idx], y[idx], cfg.z_dim, g)
            ld += d_loss
            lg += g_loss
        row = {"epoch": epoch + 1, "d_loss": ld / max(steps, 1), "g_loss": lg / max(steps, 1),
               "seconds": time.time() - t0}
        if embedder is not None:
            fake = generate(gen, train.labels[ref_idx], seed=cfg.seed + epoch)
            row["frechet_distance"] = frechet_distance(real_feats, embedder(fake))
        sample_grid(gen, classes, out / "samples" / f"epoch{epoch + 1:03d}.png")
        history.append(row)
        log.info("gan epoch %d/%d D %.3f G %.3f FD %s (%.0fs)", epoch + 1, cfg.epochs,
                 row["d_loss"], row["g_loss"], f"{row.get('frechet_distance', float('nan')):.2f}",
                 row["seconds"])
        payload = {"generator": gen.state_dict(), "classes": classes, "config": asdict(cfg),
                   "epoch": epoch + 1, "history": history}
        checkpoint.save(out / "last.pt", payload)
        score = row.get("frechet_distance", -epoch)
        if score < best:
            best = score
            checkpoint.save(out / "best.pt", payload)
        write_json(out / "history.json", history)
    return {"epochs": len(history), "best_frechet_distance": best if embedder else None,
            "history": history, "classes": classes}


def load_generator(run: str | Path) -> tuple[Generator, list[str]]:
    p = Path(run)
    path = p if p.suffix == ".pt" else p / "best.pt"
    ck = checkpoint.load_raw(path, required=("generator", "classes", "config"))
    c = ck["config"]
    gen = Generator(len(ck["classes"]), c["z_dim"], c["width"])
    gen.load_state_dict(ck["generator"])
    return gen.eval(), ck["classes"]


def sample_folder(run: str | Path, out_dir: str | Path, per_class: int, *, seed: int = 0,
                  classes: list[str] | None = None) -> dict:
    """Write ``per_class`` synthetic faces per class as OUT/<class>/gan_#####.png."""
    gen, names = load_generator(run)
    want = classes or names
    bad = [c for c in want if c not in names]
    if bad:
        raise ConfigError(f"classes {bad} are not among the GAN's classes {names}")
    out = Path(out_dir)
    counts = {}
    for c in want:
        imgs = generate(gen, np.full(per_class, names.index(c)), seed=seed + names.index(c))
        for i, im in enumerate(imgs.numpy()[:, 0]):
            write_png(out / c / f"gan_{i:05d}.png", im)
        counts[c] = per_class
    return {"out": str(out), "per_class": counts}
