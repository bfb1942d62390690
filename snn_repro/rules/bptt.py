"""Backpropagation through time with the neurons' own (surrogate) gradients."""
from __future__ import annotations

import contextlib

from snn_repro.neurons.saved_spikes import compact_saved_spikes
from snn_repro.rules.base import LearningRule, input_sequence


class BPTT(LearningRule):
    """``checkpoint_every``: run the network in blocks of that many time steps under activation checkpointing
    (keeps the block boundaries, recomputes each block's activations in the backward); None keeps everything.
    ``compact_spikes``: the binary spikes of fused neurons that the next layer keeps for its backward are stored as
    bool instead of float32 (exact; a quarter of their memory); spike counts are kept as they are
    (snn_repro/neurons/saved_spikes.py)."""

    def __init__(self, checkpoint_every: int | None = None, compact_spikes: bool = True):
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive number of time steps, got {checkpoint_every}")
        self.checkpoint_every, self.compact_spikes = checkpoint_every, compact_spikes

    def train_scores(self, net, encoder, x, read):
        x_seq = input_sequence(net, encoder, x)
        with compact_saved_spikes() if self.compact_spikes else contextlib.nullcontext():
            if self.checkpoint_every is None:
                return read(net(x_seq))
            return read(net.forward_checkpointed(x_seq, self.checkpoint_every))
