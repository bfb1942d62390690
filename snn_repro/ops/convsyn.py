"""MAP-SNN convolutional synapse (ConvSyn): a learnable spike-response kernel applied along time, per channel.

    o_c(t) = sum_l C_c[l] * s_c(t - l)        (depthwise 1-D convolution over T of [T, B, C, ...])
    C_c[l] = K_c(tau_l),  K(t) = exp(-a t') - exp(-b t'),  t' = max(t - delay, 0)

Causal (paper, Eq. 7/17): lags l = 0 .. k-1 at times tau_l = l, so an output never depends on a later input.
Non-causal (published code): lags l = -(k-1)/2 .. (k-1)/2 at times tau_l = l + (k+1)/2 (1 .. k), i.e. the output
at t sees (k-1)/2 future steps (3 for k = 7). a, b ~ U(0.5, 1) and delay = 0.8 per channel as in the code; a, b and
delay pass through relu as in the code, which keeps the kernel bounded. ``trainable: false`` keeps the initial kernel
fixed (the untrainable SRM of Fig. 6(d)).

In an arch: ``{op: convsyn}``; its settings come from the arch's ``convsyn:`` block (``enabled``, ``k``, ``causal``,
``trainable``, ``a_range``, ``b_range``, ``delay``), which a spec may override key by key. ``enabled: false`` makes
it the identity, so one arch serves the rows with and without ConvSyn.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from snn_repro.layers import SequenceOp, register_op


class ConvSyn(SequenceOp):
    def __init__(self, channels: int, kernel_size: int = 7, causal: bool = True, trainable: bool = True,
                 a_range: Sequence[float] = (0.5, 1.0), b_range: Sequence[float] = (0.5, 1.0), delay: float = 0.8):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if not causal and kernel_size % 2 == 0:
            raise ValueError(f"the non-causal (centred) kernel needs an odd kernel_size, got {kernel_size}")
        self.channels, self.kernel_size, self.causal, self.trainable = channels, kernel_size, causal, trainable
        params = {
            "a": torch.rand(channels) * (a_range[1] - a_range[0]) + a_range[0],
            "b": torch.rand(channels) * (b_range[1] - b_range[0]) + b_range[0],
            "delay": torch.full((channels,), float(delay)),
        }
        for name, value in params.items():
            if trainable:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        lags = torch.arange(kernel_size) if causal else torch.arange(kernel_size) - (kernel_size - 1) // 2
        times = lags.float() if causal else lags.float() + (kernel_size + 1) / 2
        self.register_buffer("lags", lags, persistent=False)
        self.lag_values = tuple(lags.tolist())  # read on the host: the buffer may live on the GPU
        self.register_buffer("times", times, persistent=False)

    def kernel(self) -> torch.Tensor:
        """C[l, c] for every lag l (rows in the order of ``self.lags``) and channel c: [k, C]."""
        t = F.relu(self.times[:, None] - F.relu(self.delay)[None, :])
        return torch.exp(-F.relu(self.a) * t) - torch.exp(-F.relu(self.b) * t)

    @staticmethod
    def _per_channel(k_row: torch.Tensor, trailing: int) -> torch.Tensor:
        # [C] -> [C, 1, ...] broadcasting against [..., C, *rest] with ``trailing`` = len(rest)
        return k_row.view(-1, *([1] * trailing))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        T = x_seq.shape[0]
        kernel = self.kernel().to(x_seq.dtype)
        front, back = max(self.lag_values), -min(self.lag_values)  # zeros before t=0 / after t=T-1
        pads = [x_seq.new_zeros((front, *x_seq.shape[1:])), x_seq, x_seq.new_zeros((back, *x_seq.shape[1:]))]
        padded = torch.cat(pads)
        out = 0
        for i, lag in enumerate(self.lag_values):
            # out[t] += C[lag] * x[t - lag]; x[t - lag] sits at padded[t - lag + front]
            out = out + self._per_channel(kernel[i], x_seq.dim() - 3) * padded[front - lag: front - lag + T]
        return out

    def init_state(self, x: torch.Tensor) -> torch.Tensor:
        if not self.causal:
            raise NotImplementedError("the non-causal ConvSyn needs future inputs: run it on whole sequences")
        return x.new_zeros((self.kernel_size - 1, *x.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal form only: ``state`` holds the last k-1 inputs, oldest first."""
        if state is None:
            state = self.init_state(x)
        history = torch.cat([state, x.unsqueeze(0)])  # history[-1 - lag] is x(t - lag)
        kernel = self.kernel().to(x.dtype)
        out = sum(self._per_channel(kernel[lag], x.dim() - 2) * history[-1 - lag] for lag in range(self.kernel_size))
        return out, history[1:]

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, kernel_size={self.kernel_size}, "
                f"{'causal' if self.causal else 'non-causal'}, {'trainable' if self.trainable else 'fixed'}")


_KEYS = ("enabled", "k", "causal", "trainable", "a_range", "b_range", "delay")


@register_op("convsyn")
def build_convsyn(spec: dict, in_shape: tuple, arch: dict) -> nn.Module:
    cfg = {**(arch.get("convsyn") or {}), **spec}
    unknown = set(cfg) - set(_KEYS)
    if unknown:
        raise ValueError(f"convsyn: unknown keys {sorted(unknown)}; known: {', '.join(_KEYS)}")
    if not cfg.get("enabled", True):
        return nn.Identity()
    return ConvSyn(in_shape[0], int(cfg.get("k", 7)), bool(cfg.get("causal", True)), bool(cfg.get("trainable", True)),
                   tuple(cfg.get("a_range", (0.5, 1.0))), tuple(cfg.get("b_range", (0.5, 1.0))),
                   float(cfg.get("delay", 0.8)))
