"""Torch dataset of framed event recordings, shared by every event reader.

Caching (`dataset.cache: true`): without an event transform the finished frames are cached, keyed by name, root,
on-disk part, file list, split, framing, spatial reduction, T and reader options; each entry is named by its
recording's path, size and modification time (see snn_repro.data.cache). With an event
transform (STCF augmentation, train split only) the frames change every epoch, so the *decoded events* are cached
instead (keyed without the framing parameters, stored by ``compact_events`` in 9-13 bytes an event) and the
transform plus framing run on every access.

Samples are integer event counts (``counts_tensor``: uint8, or int16 / int32 where a count does not fit), a quarter
of float32's bytes for most recordings through collation, pinning and the host-to-device copy; the LightningModule
casts them to float on the device (``SNNModule.as_float``), which gives exactly the float32 frames.
Random transforms draw from the generator ``item`` is handed (``snn_repro.augment``), so a sample's augmentation
is a function of its seed alone.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np
import torch
from omegaconf import OmegaConf

from snn_repro.augment import keeps_counts, run_transform, takes_generator
from snn_repro.data import splits
from snn_repro.data.cache import DiskCache, files_digest
from snn_repro.data.errors import CorruptFile
from snn_repro.data.events import EventSource, as_events, compact_events, concat_sources, is_event_array
from snn_repro.data.framing import CROP_ORIGINS, check_framing, frame_events, frame_shape


def _plain(node):
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _split_key(split_cfg) -> dict:
    """The split settings that decide which recordings a part holds (the validation share does not: it is carved
    from the train part afterwards, so the same cached frames serve every val_fraction)."""
    return {k: v for k, v in (_plain(split_cfg) or {}).items() if k != "val_fraction"}


def options(cfg) -> dict:
    return dict(_plain(cfg.get("options", None)) or {})


def compact(frames: np.ndarray) -> np.ndarray:
    """Frames hold integer event counts: store them in the smallest unsigned type that holds the maximum (a quarter
    of the float32 size for most recordings), so the cache reads fewer bytes; __getitem__ converts back to float32."""
    if frames.size == 0 or not np.array_equal(frames, np.floor(frames)):
        return frames  # not counts (a future framing mode): keep float32 rather than round
    top = float(frames.max())
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return frames.astype(dtype)
    return frames


def counts_tensor(frames: np.ndarray) -> torch.Tensor:
    """Frames of event counts (float32 or a cache entry of ``compact``) as the smallest torch type that holds them:
    uint8, else int16 or int32 (torch has no full uint16 support); frames that are not counts, or with a count
    beyond uint16 (which ``compact`` leaves float32), stay float32. Cast to float32, the result equals
    ``frames.astype(float32)`` exactly."""
    frames = compact(np.asarray(frames))
    if frames.dtype == np.uint16:
        top = int(frames.max()) if frames.size else 0
        frames = frames.astype(np.int16 if top <= np.iinfo(np.int16).max else np.int32)
    return torch.from_numpy(np.ascontiguousarray(frames))


class FramedEvents(torch.utils.data.Dataset):
    def __init__(self, cfg, split: str, source: EventSource, indices: np.ndarray,
                 event_transform: Callable | None = None, frame_transform: Callable | None = None):
        self.source, self.indices = source, np.asarray(indices, dtype=np.int64)
        self.event_transform, self.frame_transform = event_transform, frame_transform
        # every random transform draws from the generator it is handed (SeededSamples then skips the global seeding)
        self.takes_generator = takes_generator(event_transform) and takes_generator(frame_transform)
        self.frame_transform_keeps_counts = keeps_counts(frame_transform)
        self.T = int(cfg.T)
        self.mode, self.value = str(cfg.framing.mode), float(cfg.framing.value)
        self.spatial_mode, self.size = str(cfg.spatial.mode), int(cfg.spatial.size)
        self.crop_origin = str(cfg.spatial.get("crop_origin", "centre"))
        if self.crop_origin not in CROP_ORIGINS:
            raise ValueError(f"dataset {cfg.name}: spatial.crop_origin must be one of {CROP_ORIGINS}, "
                             f"got {self.crop_origin!r}")
        self.origin = str(options(cfg).get("window_origin", "first_event"))
        check_framing(self.T, self.mode, self.value, self.origin)
        # slice_ms: only the events before this time on the recording's own clock (from t = 0) are framed, before
        # the window origin is taken (the MAP-SNN code's SHD loader, snntorch spikedata.SHD: T ms from t = 0)
        slice_ms = options(cfg).get("slice_ms", None)
        self.slice_us = None if slice_ms is None else float(slice_ms) * 1000.0
        if self.slice_us is not None and self.slice_us <= 0:
            raise ValueError(f"dataset {cfg.name}: options.slice_ms must be positive, got {slice_ms}")
        self.shape = frame_shape(source.sensor, self.T, self.spatial_mode, self.size)
        expected = tuple(int(v) for v in cfg.input_shape)
        if self.shape[1:] != expected:
            raise ValueError(f"dataset {cfg.name}: framing gives per-step shape {self.shape[1:]} but "
                             f"input_shape is {list(expected)} (sensor {source.sensor}, spatial {self.spatial_mode} "
                             f"{self.size})")
        self.labels = np.asarray(source.labels)[self.indices]
        # one id per recording names its cache entry; a source without ids falls back to its index
        self.ids = list(source.ids) if len(source.ids) == len(source) else [f"#{i}" for i in range(len(source))]
        self.name = str(cfg.name)
        self._warned_outside = False
        self.cache = None
        if bool(cfg.get("cache", False)):
            if not cfg.get("cache_dir", None):
                raise ValueError(f"dataset {cfg.name}: cache is true but cache_dir is not set")
            params = dict(name=str(cfg.name), root=os.path.abspath(str(cfg.root)), part=source.part, split=split,
                          files=files_digest(self.ids), split_cfg=_split_key(cfg.split),
                          options=options(cfg), sensor=list(source.sensor))
            if event_transform is None:
                params.update(T=self.T, framing=_plain(cfg.framing), spatial=_plain(cfg.spatial))
                self.cache = DiskCache(str(cfg.cache_dir), f"{cfg.name}-frames", params)
            else:
                self.cache = DiskCache(str(cfg.cache_dir), f"{cfg.name}-events", params)

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> np.ndarray:
        """Events of recording i; those outside the sensor (framing drops them) are counted, and said once."""
        events = self.source.read(i)
        w, h, _ = self.source.sensor
        outside = int(((events["x"] < 0) | (events["x"] >= w) | (events["y"] < 0) | (events["y"] >= h)).sum())
        if outside and not self._warned_outside:
            self._warned_outside = True
            print(f"warning: {self.ids[i]}: {outside} of {len(events)} events lie outside the {w}x{h} sensor of "
                  f"dataset {self.name} and are dropped (said once; other recordings may lose events too)",
                  file=sys.stderr)
        return events

    def frames(self, events: np.ndarray, span: tuple[int, int] | None = None) -> np.ndarray:
        if self.slice_us is not None:
            events = events[events["t"] < self.slice_us]
        return frame_events(events, self.source.sensor, self.T, self.mode, self.value, self.spatial_mode, self.size,
                            self.origin, span, self.crop_origin)

    def augmented_frames(self, events: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        """Frames of the event transform's output; where a transform keeps the bin duration (STCF ``time:
        keep_bin_duration``), its output's [0, ...] is binned with the duration of the recording it got."""
        members = getattr(self.event_transform, "transforms", [self.event_transform])
        keep = any(getattr(t, "keeps_bin_duration", False) for t in members) and len(events) > 0
        span = (0, int(events["t"].max()) - int(events["t"].min())) if keep else None
        return self.frames(run_transform(self.event_transform, events.copy(), generator), span)

    def _valid_frames(self, arr: np.ndarray) -> bool:
        return arr.shape == tuple(self.shape) and arr.dtype in (np.uint8, np.uint16, np.float32) and (
            arr.dtype != np.float32 or bool(np.isfinite(arr).all()))  # a NaN entry would train on silence

    def _framed(self, i: int) -> np.ndarray:
        """The frames of recording i, made from its events; non-finite values (a reader fed garbage) stop the run
        naming the recording."""
        frames = compact(self.frames(self.read(i)))
        if frames.dtype.kind == "f" and not np.isfinite(frames).all():
            raise CorruptFile(f"{self.ids[i]}: its frames hold non-finite values (NaN or infinity)")
        return frames

    def __getitem__(self, k: int):
        return self.item(k, None)

    def item(self, k: int, generator: torch.Generator | None):
        """Sample k; the random transforms draw from ``generator`` (None: torch's global generator)."""
        i = int(self.indices[k])
        if self.event_transform is None:
            if self.cache:
                frames = self.cache.get(self.ids[i], lambda: self._framed(i), self._valid_frames)
            else:
                frames = self._framed(i)
        else:
            events = as_events(self.cache.get(self.ids[i], lambda: compact_events(self.read(i)), is_event_array)) \
                if self.cache else self.read(i)
            frames = self.augmented_frames(events, generator)
        x = counts_tensor(frames)
        if self.frame_transform is not None:
            if not self.frame_transform_keeps_counts:  # e.g. erasing to a float fill value: float32 as before
                x = x.float()
            x = run_transform(self.frame_transform, x, generator)
        return x, int(self.source.labels[i])


def build(cfg, split: str, open_part: Callable[[str], EventSource], has_official: bool,
          event_transform: Callable | None = None, frame_transform: Callable | None = None) -> FramedEvents:
    """Pick the source part(s) for `cfg.split.mode`, select the indices of `split` and wrap them in frames.

    `open_part(name)` opens "train"/"test" (datasets with an official split) or "all" (datasets without one).
    """
    mode = str(cfg.split.mode)
    if mode in splits.NEEDS_OFFICIAL:
        if not has_official:
            raise ValueError(f"dataset {cfg.name} has no official train/test split; use split.mode "
                             "random_per_class or first_per_class")
        source = open_part(split)
    elif has_official:
        source = concat_sources(open_part("train"), open_part("test"))
    else:
        source = open_part("all")
    indices = splits.select(source.labels, cfg.split, split, options(cfg))
    return FramedEvents(cfg, split, source, indices, event_transform, frame_transform)
