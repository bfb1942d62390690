"""Stateless ops of an arch, and how each runs over time.

An arch is a list of layer specs, e.g. ``{op: conv, out: 64, k: 3, pad: 1}`` or ``{op: neuron, threshold: 0.75}``.
``OPS`` maps the ``op`` name to a builder ``(spec, in_shape, arch) -> nn.Module``. Stateless modules are wrapped in
``TimeFolded`` so they run on [T, B, ...] with time folded into the batch (or step by step, see ``fold_time``).
A module that works along time itself (a temporal synapse, a dropout mask shared over time) subclasses
``SequenceOp`` and implements ``forward`` on [T, B, ...] and ``step``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn


class SequenceOp(nn.Module):
    """An op that sees the time axis: ``forward`` on [T, B, ...], ``step`` on [B, ...] with a state."""

    def init_state(self, x: torch.Tensor) -> Any:
        return None

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} cannot run step by step")


class TimeFolded(SequenceOp):
    """Runs a per-step module on a sequence, folding T into the batch (one big call) or looping over steps."""

    def __init__(self, module: nn.Module, fold_time: bool = True):
        super().__init__()
        self.module, self.fold_time = module, fold_time

    def forward(self, x_seq):
        if self.fold_time:
            y = self.module(x_seq.flatten(0, 1))
            return y.unflatten(0, x_seq.shape[:2])
        return torch.stack([self.module(x) for x in x_seq.unbind(0)])

    def step(self, x, state):
        return self.module(x), state


class SharedDropout(SequenceOp):
    """Dropout with one mask per sample shared over all time steps (BPSA's neuron dropout)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def _mask(self, x):
        return torch.bernoulli(torch.full_like(x, 1 - self.p)) / (1 - self.p)

    def forward(self, x_seq):
        if not self.training or self.p == 0:
            return x_seq
        return x_seq * self._mask(x_seq[0].detach())

    def init_state(self, x):
        return self._mask(x) if self.training and self.p > 0 else None

    def step(self, x, state):
        return (x if state is None else x * state), state


def _bias(spec, arch) -> bool:
    return bool(spec.get("bias", arch.get("bias", False)))


def _conv(spec, in_shape, arch):
    return nn.Conv2d(in_shape[0], spec["out"], spec.get("k", 3), spec.get("stride", 1), spec.get("pad", 0),
                     bias=_bias(spec, arch))


def _bn(spec, in_shape, arch):
    """``{op: bn}``; ``per_step: true`` (or the arch's ``bn_per_step``) calls it once per time step even where the
    other ops fold time into the batch: statistics per step and one running-stat update per step (BPSA's reference
    code), instead of one over the T*B folded samples."""
    norm = nn.BatchNorm2d(in_shape[0]) if len(in_shape) == 3 else nn.BatchNorm1d(in_shape[0])
    return TimeFolded(norm, fold_time=False) if spec.get("per_step", arch.get("bn_per_step", False)) else norm


def _linear(spec, in_shape, arch):
    return nn.Linear(in_shape[-1], spec["out"], bias=_bias(spec, arch))


OPS: dict[str, Callable[[dict, tuple, dict], nn.Module]] = {
    "conv": _conv,
    "linear": _linear,
    "flatten": lambda spec, s, a: nn.Flatten(),
    "avgpool": lambda spec, s, a: nn.AvgPool2d(spec.get("k", 2), spec.get("stride")),
    "maxpool": lambda spec, s, a: nn.MaxPool2d(spec.get("k", 2), spec.get("stride")),
    "bn": _bn,
    "relu": lambda spec, s, a: nn.ReLU(),
    "dropout": lambda spec, s, a: SharedDropout(spec.get("p", 0.5)),
}


# Modules that register more ops (imported when a network is built, so `import snn_repro` stays light).
OP_MODULES: list[str] = [
    "snn_repro.ops.apbs", "snn_repro.ops.resblock",  # APBS parametrisation, residual block
    "snn_repro.ops.vote",  # BPSA voting output layer
    "snn_repro.ops.associate",  # AIA associative gradient on a raw (pre-BatchNorm) input
    "snn_repro.ops.convsyn", "snn_repro.ops.grouped_linear",  # MAP-SNN synapse, polarity branches
]


def load_op_modules() -> None:
    import importlib

    for name in OP_MODULES:
        importlib.import_module(name)


def register_op(name: str):
    """Decorator adding an op builder to ``OPS``."""

    def deco(fn):
        OPS[name] = fn
        return fn

    return deco
