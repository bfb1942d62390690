"""Spatiotemporal cropping and flipping (STCF), APBS paper eq. 7, on structured event arrays (fields x, y, t, p).

For each axis d in `axes` independently: a crop range [D_A, D_B] inside the sample's data range [min d, max d] and a
flip bit c are drawn; events outside [D_A, D_B] are dropped and the rest mapped to
    d' = c * (D_B - D_A) + (-1)^c * (d - D_A),
i.e. the crop is moved to the origin and mirrored when c = 1. The result lies in [0, D_B - D_A], inside the sensor
and inside [0, duration]. The paper does not say how the range is drawn; here the crop length is a fraction
s ~ U(min_scale, 1) of the data range and its start is uniform over the positions that keep it inside the range;
c = 1 with probability flip_p. Timestamps are re-sorted after a time flip so downstream framing sees time order.

Two readings the paper leaves open, as options (eq. 7 literally is ``rescale: false, time: stretch``):
- ``rescale``: eq. 7 leaves the crop at the origin, so a crop of a 128 px range framed at 42 px sits in a corner;
  ``rescale: true`` maps the spatial crop back onto the sample's data range [min d, max d] (the sensor, for
  recordings that cover it): d'' = min d + round(d' * (max d - min d) / (D_B - D_A)). Every kept event stays.
- ``time``: ``stretch`` frames the cropped span as a whole recording (time_bins spread it over all T bins, so
  each bin holds about s_t times the events a bin of the kept pixels held); ``keep_bin_duration`` keeps the bins of
  the uncropped recording: the framing (``FramedEvents``) bins the crop's [0, D_B - D_A] with the original
  duration, so the crop fills the first ~s_t*T bins and the time axis changes no bin's count.
Either way the spatial crop drops the events outside [D_A, D_B] in x and y, and ``rescale`` spreads the rest over
the whole range again: a bin holds s_x * s_y of a test bin's events for events spread evenly over the sensor, with
min_scale 0.75 on average 0.77 (0.56 to 1; measured on uniform events in tests/data/test_augment.py), and with
``stretch`` s_t times that (0.67 on average). Per-bin counts match the test frames only with no spatial crop
(``axes: [t]``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


def crop_flip(values: np.ndarray, lo: int, hi: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 7 on one axis: (mask of kept events, their mapped values)."""
    keep = (values >= lo) & (values <= hi)
    v = values[keep] - lo
    if flip:
        v = (hi - lo) - v
    return keep, v


def draw_range(lo: int, hi: int, min_scale: float, generator: torch.Generator | None = None) -> tuple[int, int]:
    """[D_A, D_B] with D_B - D_A = round(s * (hi - lo)), s ~ U(min_scale, 1), uniformly placed inside [lo, hi]."""
    span = int(hi) - int(lo)
    s = min_scale + (1.0 - min_scale) * torch.rand((), generator=generator).item()
    length = int(round(s * span))
    start = int(lo) + int(torch.randint(0, span - length + 1, (), generator=generator).item())
    return start, start + length


TIME_MODES = ("stretch", "keep_bin_duration")


def rescale_to(values: np.ndarray, length: int, lo: int, hi: int) -> np.ndarray:
    """Values in [0, length] mapped linearly onto [lo, hi] (rounded to integer coordinates)."""
    if length <= 0:
        return np.full_like(values, lo)
    return (lo + np.round(values.astype(np.float64) * (hi - lo) / length)).astype(values.dtype)


@dataclass
class SpatioTemporalCropFlip:
    min_scale: float = 0.75
    flip_p: float = 0.5
    axes: Sequence[str] = ("x", "y", "t")
    rescale: bool = False
    time: str = "stretch"

    @property
    def keeps_bin_duration(self) -> bool:
        """The framing bins this transform's output with the duration of its input (``time: keep_bin_duration``)."""
        return self.time == "keep_bin_duration" and "t" in self.axes

    def __post_init__(self):
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1], got {self.min_scale}")
        if not 0.0 <= self.flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p}")
        bad = set(self.axes) - {"x", "y", "t"}
        if bad:
            raise ValueError(f"axes must be among x, y, t; got {sorted(bad)}")
        if self.time not in TIME_MODES:
            raise ValueError(f"time must be one of {TIME_MODES}, got {self.time!r}")

    def __call__(self, events: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        events = events.copy()
        time_flipped = False
        for axis in self.axes:
            if len(events) == 0:
                break
            lo, hi = int(events[axis].min()), int(events[axis].max())
            a, b = draw_range(lo, hi, self.min_scale, generator)
            flip = bool(torch.rand((), generator=generator).item() < self.flip_p)
            keep, mapped = crop_flip(events[axis], a, b, flip)
            events = events[keep]
            events[axis] = rescale_to(mapped, b - a, lo, hi) if self.rescale and axis != "t" else mapped
            time_flipped |= axis == "t" and flip
        if time_flipped:
            events = events[np.argsort(events["t"], kind="stable")]
        return events
