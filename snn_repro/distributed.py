"""The few collective operations the code needs under DDP (one process per device), no-ops in a single process.

Under DDP every rank holds a shard of the global batch (``dataset.batch_size`` is the global batch, see
``per_rank_batch``) and of the test set; values that the papers define over the batch or the test set (ASF-BP's
scale factors, spike and energy counts) are summed over the ranks with ``all_sum`` before they are used.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def active() -> bool:
    """A process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all ranks (in place; ``t`` itself in a single process)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_max(t: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def launch_rank() -> int:
    """This process's global rank before any process group exists, from the launcher's environment: torchrun's
    RANK, SLURM's SLURM_PROCID (one task per device), or Lightning's own launcher (NODE_RANK, LOCAL_RANK: 0 in the
    process that starts the others)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ.get("SLURM_PROCID", "0"))
    return int(os.environ.get("NODE_RANK", "0")) + int(os.environ.get("LOCAL_RANK", "0"))


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """The per-rank share of ``dataset.batch_size`` (the global batch, as the papers give it)."""
    from snn_repro.schema import ConfigError

    if global_batch % world_size:
        raise ConfigError(f"dataset.batch_size: {global_batch} is the global batch and does not divide over "
                          f"{world_size} processes; use a multiple of {world_size}")
    return global_batch // world_size


def sum_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value summed over all ranks (the same keys on every rank: each holds a shard of the same split)."""
    if not active():
        return dict(values)
    keys = sorted(values)
    # NCCL reduces GPU tensors only, gloo CPU ones
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    summed = all_sum(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device))
    return dict(zip(keys, summed.tolist()))
