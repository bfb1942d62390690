"""A spiking residual block, the op ``{op: resblock, out, stride, neuron: ${neuron}, bn}`` (ResNet-9 of APBS Table 3).

    s1 = N1(conv1(x))                       3x3, stride ``stride``
    y  = N2(conv2(s1) + shortcut(x))        3x3; shortcut = identity, or a 1x1 conv when shape changes
(``bn: true`` puts a BatchNorm after each conv, including the shortcut conv). The two neurons are built from the
spec's ``neuron`` node (``${neuron}``: the run's neuron config) with ``neuron_overrides`` applied. The residual is
added as input current to the second neuron, so the block's output is spikes like every other neuron layer.
It sees the time axis (a ``SequenceOp``): ``forward`` on [T, B, C, H, W] (convs with time folded into the batch,
neurons over the whole sequence) and ``step`` on one time step with the two neurons' states. ASF-BP takes a
block as two stages (``snn_repro.rules.asf``: the shortcut's flow is added to the second neuron's input flow).
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate
from torch import nn

from snn_repro.layers import SequenceOp, register_op


def _folded(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    return module(x_seq.flatten(0, 1)).unflatten(0, x_seq.shape[:2])


class SpikingResBlock(SequenceOp):
    def __init__(self, in_channels: int, out_channels: int, neuron_factory, stride: int = 1, bn: bool = False,
                 bias: bool = False):
        super().__init__()

        def conv_unit(cin, cout, k, s, p):
            conv = nn.Conv2d(cin, cout, k, s, p, bias=bias)
            return nn.Sequential(conv, nn.BatchNorm2d(cout)) if bn else nn.Sequential(conv)

        self.conv1 = conv_unit(in_channels, out_channels, 3, stride, 1)
        self.conv2 = conv_unit(out_channels, out_channels, 3, 1, 1)
        self.shortcut = (conv_unit(in_channels, out_channels, 1, stride, 0)
                         if stride != 1 or in_channels != out_channels else nn.Identity())
        self.neuron1, self.neuron2 = neuron_factory(), neuron_factory()

    def forward(self, x_seq):
        s1 = self.neuron1(_folded(self.conv1, x_seq))
        return self.neuron2(_folded(self.conv2, s1) + _folded(self.shortcut, x_seq))

    def init_state(self, x):
        return None

    def step(self, x, state):
        st1, st2 = state if state is not None else (None, None)
        h1 = self.conv1(x)
        s1, st1 = self.neuron1.step(h1, self.neuron1.init_state(h1) if st1 is None else st1)
        h2 = self.conv2(s1) + self.shortcut(x)
        y, st2 = self.neuron2.step(h2, self.neuron2.init_state(h2) if st2 is None else st2)
        return y, (st1, st2)


@register_op("resblock")
def _resblock(spec, in_shape, arch):
    if "neuron" not in spec:
        raise ValueError("resblock: give the neurons' config, e.g. `neuron: ${neuron}`")
    neuron_cfg, overrides = spec["neuron"], dict(spec.get("neuron_overrides") or {})
    out_channels = spec.get("out", in_shape[0])
    stride = spec.get("stride", 1)
    # shapes the neurons see (for neurons with per-channel parameters)
    h = (in_shape[1] + 2 - 3) // stride + 1
    w = (in_shape[2] + 2 - 3) // stride + 1

    def factory():
        n = instantiate(neuron_cfg, **overrides)
        if hasattr(n, "build"):
            n.build((out_channels, h, w))
        return n

    return SpikingResBlock(in_shape[0], out_channels, factory, stride, bool(spec.get("bn", False)),
                           bool(spec.get("bias", arch.get("bias", False))))
