"""Random data shaped like a real dataset, for smoke runs: no files, no download, same tensors the loaders return.

Static datasets give images [C, H, W] in [0, 1]; event datasets give frames [T, P, H, W] of small event counts.
Each class has its own mean pattern, so a smoke run can learn a little and its metrics are not constant; sample
``i`` of a split is a pure function of (split seed, split, i), so every run and every worker sees the same data.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

TRAIN_SAMPLES = 64  # defaults; override with dataset.options.synthetic_samples: {train: N, test: M}
TEST_SAMPLES = 32


class SyntheticDataset(Dataset):
    def __init__(self, shape: tuple[int, ...], num_classes: int, size: int, seed: int, events: bool,
                 frame_transform=None):
        self.shape, self.num_classes, self.size, self.seed = tuple(shape), num_classes, size, seed
        self.events, self.frame_transform = events, frame_transform
        g = torch.Generator().manual_seed(seed)
        self.patterns = torch.rand((num_classes, *self.shape), generator=g)  # per-class mean intensity

    def __len__(self) -> int:
        return self.size

    @property
    def labels(self) -> list[int]:
        return [i % self.num_classes for i in range(self.size)]

    def __getitem__(self, i: int):
        label = i % self.num_classes  # = self.labels[i]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i + 1)
        p = 0.5 * self.patterns[label] + 0.5 * torch.rand(self.shape, generator=g)
        if self.events:  # frames of event counts: Poisson counts with a rate ~ 1 event per pixel and bin
            x = torch.poisson(p, generator=g)
        else:
            x = p
        x = x.float()
        return (self.frame_transform(x) if self.frame_transform else x), label


def load_synthetic(cfg, split: str, event_transform=None, frame_transform=None) -> SyntheticDataset:
    """A split shaped by ``cfg`` (input_shape, T, kind, num_classes); event transforms are skipped (no events)."""
    sizes = dict((cfg.get("options") or {}).get("synthetic_samples") or {})
    size = int(sizes.get(split, TRAIN_SAMPLES if split == "train" else TEST_SAMPLES))
    events = cfg.kind == "events"
    shape = [int(cfg.T), *map(int, cfg.input_shape)] if events else list(map(int, cfg.input_shape))
    seed = int(cfg.split.seed) * 2 + (split == "test")
    return SyntheticDataset(shape, int(cfg.num_classes), size, seed, events, frame_transform)
