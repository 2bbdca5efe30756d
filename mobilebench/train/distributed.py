"""One process or many: the process group, the device, and the few collectives we need.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process joins a group:
NCCL when CUDA is available (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU.
Otherwise everything here degrades to the single-process case, so the training loop has
no ``if distributed`` branches of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mobilebench.errors import MobilebenchError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, logs and progress."""
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over all processes (float64)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def gather_to_main(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order, on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered

    @torch.no_grad()
    def average_buffers(self, module: torch.nn.Module) -> None:
        """Replace every floating-point buffer (BatchNorm statistics) by its mean over ranks.

        DDP broadcasts rank 0's buffers at the start of each forward, but every rank then
        updates its own copy, so after a step they differ; averaging makes them identical
        (and uses every rank's batches) before evaluation and checkpoints.
        """
        if not self.distributed:
            return
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                buffer.div_(self.world_size)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def single_process() -> DistContext:
    """A context for work that never joins a group (evaluation): the first GPU, else the CPU."""
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    return DistContext(rank=0, world_size=1, local_rank=0, device=device)


def init_distributed() -> DistContext:
    """The context for this process, joining the torchrun group when there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise MobilebenchError(
                f"process {rank} wants cuda:{local_rank} but only {torch.cuda.device_count()} GPU(s) are visible; "
                "use --nproc-per-node <= the GPU count"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if cuda else "gloo"
        try:
            if cuda:
                dist.init_process_group(backend=backend, device_id=device)
            else:
                dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise MobilebenchError(
                f"cannot join the {backend} process group (rank {rank} of {world_size}): {exc}"
            ) from None
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)
