"""The settings a family's fused form hands to its kernels: one frozen record per family with compiled kernels.

A neuron builds its record once (``Neuron.kernel_params()``); the record travels as one value through the
family's autograd Function to whichever backend runs the loop over T, and each backend reads it in one place: the
Python loop (``fused*.py``), the CPU ops' wrappers (``kernels_cpu.py``, which pass the ops' scalar arguments) and
the Triton wrappers (``kernels_triton.py``, which pass the kernels' arguments). Learned per-neuron values (PLIF's
time constant, MAP-SNN's Vth, q and decay) are tensors with gradients and travel beside the record.

``KERNEL_FAMILIES`` is the one list of these families: their ops are named ``<family>_forward`` and
``<family>_backward`` in both kernel modules. Below ``backend``, ``fused`` and the kernels: it imports only the
surrogate numbering.
"""
from __future__ import annotations

from dataclasses import dataclass

from snn_repro.neurons.surrogate import SURROGATE_CODES

#: MAP-SNN's spike patterns in the kernels' numbering (kernels_cpu.cpp, kernels_triton.py: ``PATTERN == 0`` ...)
PATTERN_CODES = {"ssp": 0, "linear": 1, "sfa": 2}


@dataclass(frozen=True)
class LIFKernelParams:
    """IF / LIF (and AIA, cached AIA, BPSA's baseline): the recurrence of fused.py."""
    threshold: float
    leak: float
    strict: bool  # spike at u > Vth (else u >= Vth)
    surrogate: str  # a name of surrogate.SURROGATE_GRADS
    alpha: float  # the surrogate's width / slope
    detach_reset: bool
    associative: bool = False  # AIA with f(x) = x: dL/dx_t = x_t * dL/du_t

    @property
    def surrogate_code(self) -> int:
        return SURROGATE_CODES[self.surrogate]

    @property
    def saves_codes(self) -> bool:
        """With a detached reset and the rectangular surrogate the backward needs two bits per element (the spike
        and the surrogate's window), saved as uint8 instead of the float32 potential."""
        return self.detach_reset and self.surrogate == "rectangular"


@dataclass(frozen=True)
class PLIFKernelParams:
    """PLIF (fused_plif.py); its learned time constant travels beside the record as a tensor."""
    threshold: float
    decay_input: bool
    strict: bool
    surrogate: str
    alpha: float
    detach_reset: bool

    @property
    def surrogate_code(self) -> int:
        return SURROGATE_CODES[self.surrogate]


@dataclass(frozen=True)
class BPSAKernelParams:
    """BPSA / BPSA+BPTA (fused_bpsa.py)."""
    threshold: float
    decay: float
    residual: float  # BPTA's c; 0 for BPSA alone


@dataclass(frozen=True)
class MAPKernelParams:
    """MAP-SNN (fused_map.py); Vth, q and the decay are per-neuron tensors beside the record."""
    pattern: str  # a name of PATTERN_CODES
    swish: bool  # the swish input filter (else none)
    filter_beta: float

    @property
    def pattern_code(self) -> int:
        return PATTERN_CODES[self.pattern]


#: the families with compiled kernels, by the prefix of their ops, and the record each one's ops take
KERNEL_FAMILIES = {"lif": LIFKernelParams, "bpsa": BPSAKernelParams, "plif": PLIFKernelParams,
                   "map": MAPKernelParams}
