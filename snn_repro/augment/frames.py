"""Frame augmentations on tensors [..., H, W] (an image [C,H,W] or frames [T,P,H,W]).

Each call draws once and applies the same crop / flip / rotation to every frame of the sample, as the reference code
does for DVS frames (BPSA: random crop 128 pad 16, horizontal flip, rotation 15 deg on CIFAR10-DVS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def crop_with_padding(x: torch.Tensor, pad: int, top: int, left: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad))
    return padded[..., top:top + h, left:left + w]


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate about the centre, nearest neighbour (keeps event counts integral), zeros outside: ``grid_sample``
    (mode nearest, zero padding) of every [H, W] plane. The source pixel of each output pixel does not depend on
    the values, so it is sampled once, from an image of pixel numbers, and every plane gathers from it (the same
    values as sampling each plane, in any dtype, at one plane's cost)."""
    h, w = x.shape[-2:]
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=torch.float32)
    numbers = torch.arange(1, h * w + 1, dtype=torch.float32).reshape(1, 1, h, w)  # 0 is "outside": exact in float32
    grid = F.affine_grid(theta[None], [1, 1, h, w], align_corners=False)
    source = F.grid_sample(numbers, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    planes = x.reshape(-1, h * w)
    padded = torch.cat([planes.new_zeros(planes.shape[0], 1), planes], dim=1)
    return padded[:, source.reshape(-1).long()].reshape(x.shape)


@dataclass
class RandomCrop:
    """Zero-pad by `pad` on every side and crop back to the input size at a random offset."""

    pad: int = 4
    keeps_counts = True

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.pad <= 0:
            return x
        top, left = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,), generator=generator))
        return crop_with_padding(x, self.pad, top, left)


@dataclass
class RandomHorizontalFlip:
    p: float = 0.5
    keeps_counts = True

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x.flip(-1) if torch.rand((), generator=generator).item() < self.p else x


@dataclass
class RandomRotation:
    """Rotation by an angle drawn uniformly from [-degrees, degrees]."""

    degrees: float = 15.0
    keeps_counts = True  # nearest neighbour: every output is one of the input values, or 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.degrees <= 0:
            return x
        return rotate(x, (2.0 * torch.rand((), generator=generator).item() - 1.0) * self.degrees)


@dataclass
class RandomErasing:
    """Random erasing (Zhong et al. 2020; torchvision's ``RandomErasing`` defaults): with probability ``p`` one
    rectangle of area fraction ~ U(scale) and aspect ratio log-uniform in ``ratio`` is set to ``value`` (one number,
    or one per channel of an image [C, H, W]). It runs before the encoder's normalisation, so ``value`` = the
    normalisation mean erases to 0 after it, as torchvision's value 0 after Normalize. Up to 10 draws find a
    rectangle that fits, else nothing is erased (as torchvision)."""

    p: float = 0.5
    scale: tuple = (0.02, 0.33)
    ratio: tuple = (0.3, 3.3)
    value: float | tuple = 0.0

    def __post_init__(self):  # config lists -> plain tuples
        self.scale, self.ratio = tuple(float(v) for v in self.scale), tuple(float(v) for v in self.ratio)
        if not isinstance(self.value, (int, float)):
            self.value = tuple(float(v) for v in self.value)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if torch.rand((), generator=generator).item() >= self.p:
            return x
        h, w = x.shape[-2:]
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            u_area, u_aspect = (torch.rand((), generator=generator).item() for _ in range(2))  # in this order
            area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * u_area)
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u_aspect)
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                top = int(torch.randint(0, h - eh + 1, (), generator=generator).item())
                left = int(torch.randint(0, w - ew + 1, (), generator=generator).item())
                out = x.clone()
                fill = torch.as_tensor(self.value, dtype=x.dtype)
                if fill.dim() == 1:  # one value per channel of [C, H, W]
                    fill = fill.view(-1, 1, 1)
                out[..., top:top + eh, left:left + ew] = fill
                return out
        return x
