"""Sequence form of the MAP-SNN neurons (snn_repro/neurons/map.py): step recomputation (see fused.py).

The SSP / MSP / SFA step keeps about ten float32 intermediates per element (relu, division, log, floor, powers of
q); the sequence form keeps each step's input and incoming potential only, and the learned decay, threshold and q
get their gradients from the recomputed steps.
"""
from __future__ import annotations

from snn_repro.neurons.fused import step_recompute_sequence as map_sequence  # noqa: F401
