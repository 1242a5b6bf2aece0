"""Data-parallel training under torchrun (PyTorch DistributedDataParallel).

``torchrun --nproc_per_node N -m ferkit train ...`` starts N processes; each reads RANK,
WORLD_SIZE and MASTER_ADDR/PORT from its environment. The semantics are those of one
process with the same options: every rank draws the same global batch order, the same
augmentations and mixing for the whole global batch of ``batch_size`` faces, then keeps
its own 1/N slice; DDP averages the gradients, so the step is the mean over the global
batch, with the same learning rate. BatchNorm statistics are per slice on CPU (gloo has no
SyncBatchNorm); on GPUs (nccl) BatchNorm is synchronised. Rank 0 alone writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ferkit.errors import ConfigError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, n: int) -> slice:
        """This rank's slice of a global batch of ``n`` faces."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (identity in one process)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def setup(device: str, batch_size: int) -> Dist:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA); one process:
    nothing to join."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if batch_size % world:
        raise ConfigError(f"batch_size {batch_size} must divide evenly over {world} processes")
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local)
    return Dist(torch.distributed.get_rank(), world, local, backend)


def device_for(dist: Dist, device: str) -> str:
    """cuda -> cuda:LOCAL_RANK under torchrun; anything else as given."""
    return f"cuda:{dist.local_rank}" if dist.backend == "nccl" and device == "cuda" else device


def wrap(model, dist: Dist):
    """The module that training steps call: DDP around ``model`` when several processes."""
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    if dist.backend == "nccl":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DDP(model, device_ids=[dist.local_rank])
    return DDP(model)


def teardown(dist: Dist) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
