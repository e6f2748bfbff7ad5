"""One process or many (``torchrun``): rank, metric reduction and DDP wrapping in one place.

    torchrun --nproc-per-node 2 training/train.py --data DIR --output OUT    # gloo on CPU, NCCL on CUDA

Without torchrun's environment everything here is a no-op for a single process.
Only rank 0 writes checkpoints, metrics and plots; metrics are summed over ranks
before anyone looks at them, so every rank takes the same early-stopping decision.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclasses.dataclass(frozen=True)
class Distributed:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over all ranks (counts, loss sums); unchanged in one process."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor.tolist()

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
        if self.enabled:
            torch_dist.barrier()


def init_distributed(device: torch.device) -> Distributed:
    """Join torchrun's process group if its environment is set (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch_dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=datetime.timedelta(minutes=10))
    return Distributed(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown(dist: Distributed) -> None:
    """Leave the process group."""
    if dist.enabled and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def wrap_model(model: nn.Module, dist: Distributed, device: torch.device) -> nn.Module:
    """DDP around ``model`` when distributed.

    DDP registers the parameters that require gradients when it is built, so call
    this again after changing which parameters train (gradual unfreezing).
    """
    if not dist.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
