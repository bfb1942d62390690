"""Spike outputs that the next layer saves for its backward, stored in fewer bytes where that is exact.

A neuron's output is a float tensor (the next conv / linear / pool needs floats), and autograd keeps it for the
next layer's weight gradient. Within ``compact_saved_spikes()`` a saved tensor that is (a view of) an output marked
by ``mark_binary_spikes`` is stored as bool and restored as float in the backward: exact for 0/1 values, a quarter
of the bytes. Only binary outputs are marked: a family whose step emits spike counts (MAP-SNN's multi-spike
patterns, ``Neuron.binary_spikes`` False) is saved as it is, since bool would turn every count above 1 into 1.
Outputs are remembered by object (a view points at its base); the entry goes when the tensor does.
"""
from __future__ import annotations

import weakref

import torch

_binary_outputs: "weakref.WeakValueDictionary[int, torch.Tensor]" = weakref.WeakValueDictionary()


def mark_binary_spikes(out: torch.Tensor) -> None:
    """Declare ``out`` a tensor of 0/1 values that may be saved as bool."""
    if not torch.compiler.is_compiling():  # a compiled graph saves its own tensors (the hooks do not apply)
        _binary_outputs[id(out)] = out


def is_binary_spikes(t: torch.Tensor) -> bool:
    root = t if t._base is None else t._base
    return t.is_floating_point() and _binary_outputs.get(id(root)) is root


def _pack(t: torch.Tensor):
    return (t.to(torch.bool), t.dtype) if is_binary_spikes(t) else t


def _unpack(packed):
    return packed[0].to(packed[1]) if isinstance(packed, tuple) else packed


def compact_saved_spikes():
    """Context manager: saved tensors that are marked binary spike outputs are kept as bool."""
    return torch.autograd.graph.saved_tensors_hooks(_pack, _unpack)
