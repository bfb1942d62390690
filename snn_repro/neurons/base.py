"""The neuron interface every family implements.

A neuron owns its recurrence over time. ``step`` advances one time step and is the reference form;
``forward`` runs a whole sequence [T, B, ...] (sequence-first) and may use a fused implementation
that saves less for the backward, as long as values and gradients equal the step form.

Under mixed precision (autocast) the synaptic ops run in float16 / bfloat16, but a neuron's state, and so its
spikes, must not depend on that: ``forward_state`` casts its input to float32 and runs with autocast off, so the
membrane and every sum inside a neuron (any fused form included) are float32 and the spikes equal float32's on the
same input. ``full_precision`` is that cast, for code that calls ``step`` itself.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snn_repro.neurons import backend
from snn_repro.neurons.saved_spikes import mark_binary_spikes

LOW_PRECISION = (torch.float16, torch.bfloat16)


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 if it is in a half-precision dtype (what autocast makes synaptic ops return), else ``x``."""
    return x.float() if x.dtype in LOW_PRECISION else x


class Neuron(nn.Module):
    #: the threshold used by readouts that divide by Vth
    threshold: float
    #: run sequences through the family's fused form when it has one; False (per instance or per class) runs the
    #: reference loop over ``step``
    fused: bool = True
    #: the family's fused form, a method ``(x_seq, state) -> (spikes [T, B, ...], final state)`` equal to
    #: ``steps_state`` in values and gradients (snn_repro.neurons.fused); None: the loop over ``step``
    fused_sequence = None
    #: every output value is 0 or 1, so the next layer may save it as bool (snn_repro/neurons/saved_spikes.py);
    #: False for a family that emits spike counts
    binary_spikes: bool = True

    def __init__(self):
        super().__init__()
        # build or load the compiled kernels now, not inside a torch.compile trace of the first forward
        backend.prepare_kernels()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a subclass that changes ``step`` does not inherit a fused form written for its parent's step
        if "step" in cls.__dict__ and "fused_sequence" not in cls.__dict__:
            cls.fused_sequence = None

    def init_state(self, x: torch.Tensor) -> Any:
        """State before the first step, for an input step shaped like ``x``."""
        return torch.zeros_like(x)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One time step: input current ``x`` [B, ...] -> (spikes, new state)."""
        raise NotImplementedError

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.forward_state(x_seq, None)[0]

    def forward_state(self, x_seq: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """The sequence from ``state`` (None: ``init_state``) -> (spikes [T, B, ...], state after the last step).

        Carrying the state lets a network run in time chunks (activation checkpointing over time). The state is
        float32 whatever the input's dtype (see the module docstring).
        """
        x_seq = full_precision(x_seq)
        with torch.autocast(x_seq.device.type, enabled=False):
            if backend.fused_enabled and self.fused and self.fused_sequence is not None:
                out, state = self.fused_sequence(x_seq, state)
                if self.binary_spikes:
                    mark_binary_spikes(out)
                return out, state
            return self.steps_state(x_seq, state)

    def forward_steps(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The whole sequence through ``step``: the reference any fused form must match."""
        return self.steps_state(x_seq, None)[0]

    def steps_state(self, x_seq: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``forward_steps`` from a given state, also returning the final state."""
        # unbind, not x_seq[t]: indexing a tensor that needs grad makes the backward quadratic in T
        out = []
        for x in x_seq.unbind(0):
            if state is None:
                state = self.init_state(x)
            o, state = self.step(x, state)
            out.append(o)
        return torch.stack(out), state
