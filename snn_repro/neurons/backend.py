"""The switches that choose how neurons run, in one place: the fused forms or each family's loop over ``step``
(``reference_steps``), and where a fused form's loop over T runs (``kernel_backend``, ``kernel_for``; the default
from the environment variable SNN_REPRO_NEURON_KERNELS). The CPU kernels' build can be switched off with
SNN_REPRO_CPU_KERNELS=0 (read by ``kernels_cpu.available``). Below ``base`` and ``fused``: it imports neither."""
from __future__ import annotations

import contextlib
import os

import torch

from snn_repro.schema import ENVIRONMENT

#: False within ``reference_steps()``: every neuron runs its loop over ``step`` (``Neuron.forward_state``)
fused_enabled = True


@contextlib.contextmanager
def reference_steps():
    """Within this block every neuron runs its reference loop over ``step`` (for comparisons and benchmarks)."""
    global fused_enabled
    previous, fused_enabled = fused_enabled, False
    try:
        yield
    finally:
        fused_enabled = previous


# --- where the loop over T runs -------------------------------------------------------------------------------------
# "auto": the CPU kernels for CPU tensors, Triton for CUDA tensors (when each is there), else Python;
# "python" / "cpu" / "triton" force one (tests and benchmarks; "triton" on CPU tensors needs TRITON_INTERPRET=1).
BACKENDS = ENVIRONMENT["SNN_REPRO_NEURON_KERNELS"]
_backend = os.environ.get("SNN_REPRO_NEURON_KERNELS", "auto")


@contextlib.contextmanager
def kernel_backend(name: str):
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"unknown neuron kernel backend {name!r}; known: {', '.join(BACKENDS)}")
    previous, _backend = _backend, name
    try:
        yield
    finally:
        _backend = previous


def kernel_for(x: torch.Tensor):
    """The kernel module for a sequence ``x`` (``kernels_cpu`` or ``kernels_triton``, each with the wrappers
    ``<family>_forward`` / ``<family>_backward`` that take a family's record of kernel_params.py), or None for the
    Python loop. The kernels take and give float32 (the state is float32 whatever the input dtype): half inputs
    are cast."""
    if _backend == "python" or x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return None
    if _backend == "triton" or (_backend == "auto" and x.is_cuda):
        from snn_repro.neurons import kernels_triton

        return kernels_triton if kernels_triton.available() else None
    if x.device.type == "cpu":
        from snn_repro.neurons import kernels_cpu

        return kernels_cpu if kernels_cpu.available() else None
    return None


def prepare_kernels() -> None:
    """Build or load the CPU kernels (once per process) unless the backend is forced to Python."""
    if _backend not in BACKENDS:  # the program's config check names it first; this is for library use
        raise ValueError(f"SNN_REPRO_NEURON_KERNELS={_backend!r}: unknown neuron kernel backend; known: "
                         f"{', '.join(BACKENDS)}")
    if _backend in ("auto", "cpu"):
        from snn_repro.neurons import kernels_cpu

        kernels_cpu.available()
