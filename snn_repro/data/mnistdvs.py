"""MNIST-DVS (Serrano-Gotarredona & Linares-Barranco 2013): 10 x 1000 recordings per scale (4, 8, 16), DVS128.

Layout (the ten published grabbed_data<d>.zip extracted into root):
root/grabbed_data<d>/scale<s>/mnist_<d>_scale<ss>_<nnnn>.aedat; the label is <d>; `options.scale` picks the scale
(APBS uses 16). There is no official split (APBS: 90% random for training, the remaining 1000 for testing).

AEDAT 2.0 (jAER): header lines that start with '#' (the first is '#!AER-DAT2.0'), then big-endian 8-byte events:
uint32 address, uint32 timestamp in us. DVS128 address: polarity = bit 0, x = bits 1-7, y = bits 8-14. The raw
address fields are used as they are (jAER additionally mirrors x and inverts the polarity bit for display; a fixed
mirror does not change what a classifier can learn). A damaged header shifts where the events start and decodes as
garbage, so a body with address bits 16-31 set (DVS128 leaves them zero) or timestamps that go backwards is refused.
"""
from __future__ import annotations

import os

import numpy as np

from snn_repro.data import event_dataset
from snn_repro.data.errors import CorruptFile
from snn_repro.data.events import (EventSource, check_nonempty, fixed_size_records, glob_sorted, make_events,
                                   missing, skip_text_header)

URL = "http://www2.imse-cnm.csic.es/caviar/MNISTDVS.html (grabbed_data0.zip ... grabbed_data9.zip)"
_RAW = np.dtype([("addr", ">u4"), ("t", ">u4")])


def read_aedat2(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        raw = f.read()
    pos, header = skip_text_header(raw, b"#", path)
    first = header[0] if header else None
    if first is None or not first.startswith(b"#!AER-DAT2"):
        raise CorruptFile(f"{path}: not an AEDAT 2.0 file (first header line {first!r})")
    ev = fixed_size_records(raw, pos, _RAW, path)
    high = np.flatnonzero(ev["addr"] & 0xFFFF0000)
    if len(high):
        raise CorruptFile(f"{path}: {len(high)} of {len(ev)} events have address bits 16-31 set (first at event "
                          f"{high[0]}), which DVS128 leaves zero: damaged header or not a DVS128 recording")
    back = np.flatnonzero(np.diff(ev["t"].astype(np.int64)) < 0)
    if len(back):
        raise CorruptFile(f"{path}: timestamps go backwards at {len(back)} of {len(ev)} events (first at event "
                          f"{back[0] + 1}): damaged header or body")
    a = ev["addr"].astype(np.int64)
    events = make_events((a >> 1) & 0x7F, (a >> 8) & 0x7F, ev["t"].astype(np.int64), a & 1)
    return check_nonempty(events, path)


class _Read:
    def __init__(self, paths):
        self.paths = paths

    def __call__(self, i: int) -> np.ndarray:
        return read_aedat2(self.paths[i])


def load_mnistdvs(cfg, split, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    scale = int(event_dataset.options(cfg).get("scale", 16))
    if scale not in (4, 8, 16):
        raise ValueError(f"MNIST-DVS options.scale must be 4, 8 or 16, got {scale}")
    dirs = [os.path.join(root, f"grabbed_data{d}", f"scale{scale}") for d in range(10)]
    found = [glob_sorted(d, ".aedat") for d in dirs]
    if not all(found):
        raise missing("MNIST-DVS", root, f"grabbed_data<0..9>/scale{scale}/*.aedat (AEDAT 2.0)", URL)

    def open_part(part):
        paths = [p for files in found for p in files]
        labels = np.concatenate([np.full(len(files), d, dtype=np.int64) for d, files in enumerate(found)])
        return EventSource(_Read(paths), labels, (128, 128, 2), part, paths)

    return event_dataset.build(cfg, split, open_part, False, event_transform, frame_transform)
