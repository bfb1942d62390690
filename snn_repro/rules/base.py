"""The learning-rule interface."""
from __future__ import annotations

from typing import Callable

import torch

from snn_repro.encoders import Encoder
from snn_repro.network import SpikingNetwork

Readout = Callable[[torch.Tensor], torch.Tensor]  # output sequence [T, B, K] -> scores [B, K]


def input_sequence(net: SpikingNetwork, encoder: Encoder, x: torch.Tensor) -> torch.Tensor:
    """The encoded input [T, ...]. In an ANN warm-up epoch (``net.ann``) a static image runs one step, as BP-STA's
    ConvNet.forward does (``step = 1`` when its input is an image, [B, C, H, W]); event frames run all T."""
    x_seq = encoder(x)
    return x_seq[:1] if getattr(net, "ann", False) and x.dim() == 4 else x_seq


class LearningRule:
    """``train_scores`` returns scores whose backward gives this rule's gradient; ``eval_scores`` runs inference."""

    def train_scores(self, net: SpikingNetwork, encoder: Encoder, x: torch.Tensor, read: Readout) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def eval_scores(self, net: SpikingNetwork, encoder: Encoder, x: torch.Tensor, read: Readout) -> torch.Tensor:
        return read(net(input_sequence(net, encoder, x)))
