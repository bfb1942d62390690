"""Input encoders: a batch from the data loader -> a sequence of per-step inputs [T, B, ...].

``steps(x)`` yields the T per-step inputs one at a time (so a step-by-step simulation never holds all of them);
``__call__(x)`` stacks them. Static images are [B, C, H, W]; event frames arrive as [B, T, P, H, W].
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch


class Encoder:
    def __init__(self, T: int, repeat: int = 1):
        self.T, self.repeat = T, repeat

    @property
    def time_steps(self) -> int:
        """Number of simulated steps (readouts divide by this)."""
        return self.T * self.repeat

    def steps(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(self.steps(x)))


class _Normalised(Encoder):
    def __init__(self, T: int, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 repeat: int = 1):
        super().__init__(T, repeat)
        self.mean, self.std = mean, std
        self._stats: dict = {}  # (dtype, device, dims) -> (mean, std) as tensors

    def normalise(self, x):
        if self.mean is None:
            return x
        key = (x.dtype, x.device, x.dim())
        if key not in self._stats:  # once: a copy from host memory every batch would wait for the GPU
            shape = (1, -1) + (1,) * (x.dim() - 2)
            self._stats[key] = tuple(torch.as_tensor(v, dtype=x.dtype, device=x.device).view(shape)
                                     for v in (self.mean, self.std))
        mean, std = self._stats[key]
        return (x - mean) / std


class Poisson(_Normalised):
    """A spike where scale * |x| > U(0, 1), fresh noise every step (ASF-BP MNIST: scale 0.5)."""

    def __init__(self, T: int, scale: float = 1.0, mean=None, std=None, repeat: int = 1):
        super().__init__(T, mean, std, repeat)
        self.scale = scale

    def steps(self, x):
        p = (self.normalise(x).abs() * self.scale).clamp(max=1)
        for _ in range(self.time_steps):
            yield (torch.rand_like(p) < p).to(x.dtype)


class SignedPoisson(_Normalised):
    """A spike of sign(x) where |x| > U(0, 1) on the normalised input (ASF-BP CIFAR10)."""

    def steps(self, x):
        z = self.normalise(x)
        for _ in range(self.time_steps):
            yield torch.sign(z) * (z.abs() > torch.rand_like(z)).to(x.dtype)


class Direct(_Normalised):
    """The analog input as a constant current every step (BPSA direct coding)."""

    def steps(self, x):
        z = self.normalise(x)
        for _ in range(self.time_steps):
            yield z


class Frames(Encoder):
    """Event frames [B, T, P, H, W] as currents, T steps; ``repeat`` injects the whole sequence again."""

    def _check(self, x):
        if x.shape[1] != self.T:
            raise ValueError(f"frames have {x.shape[1]} time steps but the config says T={self.T}")

    def steps(self, x):
        self._check(x)
        for _ in range(self.repeat):
            yield from x.unbind(1)

    def __call__(self, x):
        self._check(x)
        seq = x.transpose(0, 1)
        return seq.repeat(self.repeat, *([1] * (seq.dim() - 1))) if self.repeat > 1 else seq
