"""Training-time augmentations: event-level (before framing) and frame-level (after), configured in conf/augmentation/.

Each random transform takes ``generator=``: the torch.Generator it draws from (None: torch's global one). The data
module hands every sample its own generator seeded from (seed, epoch, index) (``snn_repro.datamodule``), so a
seeded run repeats its augmentations whatever the number of DataLoader workers. A transform without that parameter
(e.g. one of tonic's) still works: the data module then seeds the global generators around each sample instead.
Frame transforms that move or mirror pixels without computing new values set ``keeps_counts``: they run on the
integer event counts the datasets return (see ``snn_repro.data.event_dataset``).
"""
from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch


def _members(transform) -> list:
    return list(getattr(transform, "transforms", [transform])) if transform is not None else []


def _accepts_generator(t) -> bool:
    try:
        return "generator" in inspect.signature(t).parameters
    except (TypeError, ValueError):
        return False


def takes_generator(transform) -> bool:
    """Whether every member of ``transform`` (a Compose or one callable; None: nothing) takes ``generator=``."""
    return all(_accepts_generator(t) for t in _members(transform))


def keeps_counts(transform) -> bool:
    """Whether every member of ``transform`` maps integer counts to the same integers as it maps their float32."""
    return all(getattr(t, "keeps_counts", False) for t in _members(transform))


def run_transform(transform, x, generator: torch.Generator | None):
    """``transform(x)``, every member drawing from ``generator`` (None: the global one; a generator is handed only
    to transforms for which ``takes_generator`` holds)."""
    for t in _members(transform):
        x = t(x) if generator is None else t(x, generator=generator)
    return x


class Compose:
    """Transforms applied in order (as tonic's Compose), each handed the sample's generator if it takes one."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, generator: torch.Generator | None = None):
        return run_transform(self, x, generator)

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"
