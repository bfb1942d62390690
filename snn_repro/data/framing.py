"""Events -> frames: T time bins of per-polarity event counts, with an optional spatial reduction.

Temporal modes (`framing.mode`, `framing.value`):
- ``time_bins``: T bins of equal duration spanning first to last event (value = T); every event is counted.
  Bin of an event: floor((t - t_first) * T / (t_last - t_first + 1)) - integer arithmetic, so no event is lost to
  rounding (ASF-BP / APBS CIFAR10-DVS: 100 bins of about 12-13 ms).
- ``event_count``: T frames holding equal numbers of events (counts differ by at most one; BPSA).
- ``window_ms``: bins of `value` ms from the first event (origin "first_event", as tonic's ToFrame) or from t = 0
  (origin "zero", for recordings whose clock starts with the stimulus, e.g. SHD); the first T bins are kept, missing
  ones are zero (MAP-SNN: N-MNIST 6 ms x 50, SHD 16 ms).
Spatial modes (`spatial.mode`, `spatial.size`), applied per event after the temporal binning:
- ``none``; ``sum_pool``: k = floor(sensor / size) per axis, pixel -> pixel // k, remainder rows/cols dropped
  (128 -> 42: 3x3, last two dropped; ASF-BP); ``resize``: nearest neighbour exactly as
  ``torch.nn.functional.interpolate(mode="nearest")`` (it samples source pixels: events on the skipped ones are
  dropped; BPSA 64, AIA 48); ``area``: every source pixel summed into the destination pixel it falls in,
  pixel -> floor(pixel * size / sensor), so every event is kept (a sum-pool over windows of floor or ceil of
  sensor / size pixels; at an integer factor it is ``sum_pool``); ``crop``: a window at ``crop_origin``
  ``centre`` or ``top_left`` (x, y < size: the MAP-SNN reference code's N-MNIST 34 -> 32).
  Upscaling (size above the sensor) with ``resize`` or ``area`` repeats pixels as torch's nearest interpolation.

Why not tonic's ToFrame: its time bins are floor((t_last - t_first) / T) us wide, so the events after T such bins
(at least the last one) are dropped, and its event bins drop the N mod T last events; it also accumulates into int16
one frame at a time. Here one ``np.bincount`` over a flat (t, p, y, x) index counts every event in one pass (where
tonic drops nothing, e.g. event bins with N divisible by T, the frames are identical; see tests).
Output: float32 [T, P, H, W]; a 1-D sensor (W x 1 x 1, e.g. SHD's 700 channels) gives [T, W].
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TEMPORAL_MODES = ("time_bins", "event_count", "window_ms")
SPATIAL_MODES = ("none", "sum_pool", "resize", "area", "crop")


def spatial_size(sensor: tuple[int, int, int], mode: str, size: int) -> tuple[int, int]:
    """(W, H) after the spatial reduction."""
    w, h, _ = sensor
    if mode == "none":
        return w, h
    if mode not in SPATIAL_MODES:
        raise ValueError(f"spatial.mode must be one of {SPATIAL_MODES}, got {mode!r}")
    if h == 1:
        raise ValueError(f"spatial.mode {mode!r} needs a 2-D sensor, got {sensor}")
    if mode == "sum_pool" and (size > w or size > h):
        raise ValueError(f"sum_pool to {size} needs a sensor at least that large, got {sensor}")
    if mode == "crop" and (size > w or size > h):
        raise ValueError(f"crop to {size} needs a sensor at least that large, got {sensor}")
    return size, size


def frame_shape(sensor: tuple[int, int, int], T: int, spatial_mode: str, size: int) -> tuple[int, ...]:
    w, h = spatial_size(sensor, spatial_mode, size)
    if sensor[1] == 1 and sensor[2] == 1:
        return (T, w)
    return (T, sensor[2], h, w)


ORIGINS = ("first_event", "zero")
CROP_ORIGINS = ("centre", "top_left")


def check_framing(T: int, mode: str, value: float, origin: str = "first_event") -> None:
    if mode not in TEMPORAL_MODES:
        raise ValueError(f"framing.mode must be one of {TEMPORAL_MODES} for event data, got {mode!r}")
    if T <= 0:
        raise ValueError(f"T must be positive, got {T}")
    if mode in ("time_bins", "event_count") and int(value) != T:
        raise ValueError(f"framing {mode}: value ({value}) must equal T ({T})")
    if mode == "window_ms" and float(value) <= 0:
        raise ValueError(f"framing window_ms: value must be > 0, got {value}")
    if origin not in ORIGINS:
        raise ValueError(f"window origin must be one of {ORIGINS}, got {origin!r}")


def time_bin_index(t: np.ndarray, T: int, mode: str, value: float, origin: str = "first_event",
                   span: tuple[int, int] | None = None) -> np.ndarray:
    """Bin of every event (int64); events of window_ms beyond T bins get T (dropped by the caller). ``span``:
    the (first, last) time that time_bins divides, instead of the events' own (STCF keeping the bin duration)."""
    check_framing(T, mode, value, origin)
    t = t.astype(np.int64, copy=False)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    if mode == "time_bins":
        if span is None:
            t0, t1 = int(t.min()), int(t.max())
            return (t - t0) * T // (t1 - t0 + 1)
        b = (t - int(span[0])) * T // (int(span[1]) - int(span[0]) + 1)
        return np.where(b < 0, T, np.minimum(b, T))  # outside the span: dropped
    if mode == "event_count":
        n = len(t)
        order = np.argsort(t, kind="stable")
        b = np.empty(n, dtype=np.int64)
        b[order] = np.arange(n, dtype=np.int64) * T // n
        return b
    t0 = int(t.min()) if origin == "first_event" else 0
    b = np.floor((t - t0) / (float(value) * 1000.0)).astype(np.int64)
    return np.where(b < 0, T, np.minimum(b, T))  # before the origin (negative clock) counts as outside


def _nearest_lut(n_in: int, n_out: int) -> np.ndarray:
    """Source pixel -> destination pixel (or -1) of torch's 'nearest' downscaling: src = floor(dst * (in/out))."""
    scale = np.float32(n_in / n_out)  # torch computes the index in float32; match it bit for bit
    src = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    src = np.minimum(src, n_in - 1)
    lut = np.full(n_in, -1, dtype=np.int64)
    lut[src] = np.arange(n_out)
    return lut


def _map_axis(c: np.ndarray, n_in: int, mode: str, size: int, crop_origin: str = "centre") -> np.ndarray:
    """Coordinate -> reduced coordinate, -1 where the event is dropped."""
    c = c.astype(np.int64, copy=False)
    valid = (c >= 0) & (c < n_in)
    if mode == "none":
        out = c.copy()
    elif mode == "sum_pool":
        k = n_in // size
        out = c // k
        valid &= out < size
    elif mode == "crop":
        if crop_origin not in CROP_ORIGINS:
            raise ValueError(f"spatial.crop_origin must be one of {CROP_ORIGINS}, got {crop_origin!r}")
        lo = (n_in - size) // 2 if crop_origin == "centre" else 0
        out = c - lo
        valid &= (out >= 0) & (out < size)
    elif mode == "resize":
        out = _nearest_lut(n_in, size)[np.clip(c, 0, n_in - 1)]
        valid &= out >= 0
    elif mode == "area":
        out = c * size // n_in
    else:
        raise ValueError(f"spatial.mode must be one of {SPATIAL_MODES}, got {mode!r}")
    return np.where(valid, out, -1)


def frame_events(events: np.ndarray, sensor: tuple[int, int, int], T: int, mode: str, value: float,
                 spatial_mode: str = "none", size: int = 0, origin: str = "first_event",
                 span: tuple[int, int] | None = None, crop_origin: str = "centre") -> np.ndarray:
    """Frames of one recording (see module docstring); float32 counts. ``span``: see ``time_bin_index``."""
    w_in, h_in, P = sensor
    w, h = spatial_size(sensor, spatial_mode, size)
    shape = frame_shape(sensor, T, spatial_mode, size)
    if spatial_mode in ("resize", "area") and (size > w_in or size > h_in):
        # Upscaling repeats pixels: frame at sensor size, then interpolate like the reference code does.
        full = frame_events(events, sensor, T, mode, value, origin=origin, span=span)
        return F.interpolate(torch.from_numpy(full), size=(size, size), mode="nearest").numpy()
    b = time_bin_index(events["t"], T, mode, value, origin, span)
    x = _map_axis(events["x"], w_in, spatial_mode, size, crop_origin)
    y = _map_axis(events["y"], h_in, spatial_mode, size, crop_origin) if h_in > 1 else np.zeros(len(events), np.int64)
    p = events["p"].astype(np.int64) if P > 1 else np.zeros(len(events), np.int64)
    keep = (b < T) & (x >= 0) & (y >= 0) & (p >= 0) & (p < P)
    flat = ((b[keep] * P + p[keep]) * h + y[keep]) * w + x[keep]
    counts = np.bincount(flat, minlength=T * P * h * w)
    return counts.astype(np.float32).reshape(shape)
