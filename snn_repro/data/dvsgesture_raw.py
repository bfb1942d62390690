"""IBM's raw DVS-Gesture release: AEDAT 3.1 recordings with csv labels (1176 train / 288 test gestures).

Layout (DvsGesture.tar.gz extracted into root): root/DvsGesture/trials_to_train.txt and trials_to_test.txt (one
recording file name a line), userNN_<lighting>.aedat and userNN_<lighting>_labels.csv beside them. Each csv row
``class,startTime_usec,endTime_usec`` is one sample: the recording's events with start <= t < end, label class - 1.
tonic's preprocessed npy release holds fewer gestures (1077 / 264); the BPSA reference code reads this one.

AEDAT 3.1: text header lines starting with '#' ('#!AER-DAT3.1' first, '#!END-HEADER' last), then packets, each a
28-byte little-endian header (int16 eventType, int16 eventSource, int32 eventSize, eventTSOffset, eventTSOverflow,
eventCapacity, eventNumber, eventValid) followed by eventNumber * eventSize bytes. Polarity events (type 1, 8 bytes):
uint32 data (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and int32 timestamp in us; the full time is
eventTSOverflow << 31 | timestamp. Other packet types (special events, frames, IMU) are skipped; invalid events too.
The raw x, y are used as they are (no mirroring).
"""
from __future__ import annotations

import csv
import os
import struct

import numpy as np

from snn_repro.data.errors import CorruptFile
from snn_repro.data.events import EventSource, check_nonempty, make_events, missing

URL = "https://research.ibm.com/dvsgesture/ (DvsGesture.tar.gz)"
HEADER_END = b"#!END-HEADER\r\n"
_PACKET = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
_POLARITY = np.dtype([("data", "<u4"), ("t", "<i4")])


def read_aedat31(path: str) -> np.ndarray:
    """All valid polarity events of an AEDAT 3.1 file, in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(b"#!AER-DAT3"):
        raise CorruptFile(f"{path}: not an AEDAT 3.1 file (starts with {raw[:12]!r})")
    end = raw.find(HEADER_END)
    if end < 0:
        raise CorruptFile(f"{path}: no '#!END-HEADER' line (truncated header)")
    pos = end + len(HEADER_END)
    parts = []
    while pos < len(raw):
        if pos + _PACKET.size > len(raw):
            raise CorruptFile(f"{path}: packet header cut at byte {pos} (truncated)")
        kind, _, size, _, overflow, _, number, _ = _PACKET.unpack_from(raw, pos)
        pos += _PACKET.size
        body = size * number
        if size <= 0 or number < 0 or pos + body > len(raw):
            raise CorruptFile(f"{path}: packet at byte {pos - _PACKET.size} claims {number} x {size} bytes, "
                              f"{len(raw) - pos} left (truncated)")
        if kind == POLARITY_EVENT:
            if size != _POLARITY.itemsize:
                raise CorruptFile(f"{path}: polarity events of {size} bytes, expected {_POLARITY.itemsize}")
            ev = np.frombuffer(raw, dtype=_POLARITY, count=number, offset=pos)
            valid = (ev["data"] & 1).astype(bool)
            data = ev["data"][valid].astype(np.int64)
            t = (np.int64(overflow) << 31) | ev["t"][valid].astype(np.int64)
            parts.append(make_events((data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, t, (data >> 1) & 1))
        pos += body
    return np.concatenate(parts) if parts else make_events([], [], [], [])


def read_labels(path: str) -> list[tuple[int, int, int]]:
    """(label 0..10, start us, end us) of every csv row."""
    rows = []
    try:
        with open(path, newline="") as f:
            for row in csv.reader(f):
                if not row or not row[0].strip().isdigit():
                    continue  # the header line
                label, start, end = (int(v) for v in row[:3])
                rows.append((label - 1, start, end))
    except (OSError, ValueError) as e:
        raise CorruptFile(f"{path}: not a DVS-Gesture label file ({type(e).__name__}: {e})") from e
    if not rows or any(not 0 <= r[0] <= 10 or r[2] <= r[1] for r in rows):
        raise CorruptFile(f"{path}: expected rows 'class (1-11),startTime_usec,endTime_usec'")
    return rows


class _ReadGesture:
    """Sample i: the events of its recording within [start, end). The last recording read is kept (samples of one
    recording are consecutive indices)."""

    def __init__(self, samples: list[tuple[str, int, int]]):
        self.samples, self._last = samples, (None, None)

    def __getstate__(self):  # DataLoader workers: no cached recording travels
        return {"samples": self.samples, "_last": (None, None)}

    def __call__(self, i: int) -> np.ndarray:
        path, start, end = self.samples[i]
        if self._last[0] != path:
            self._last = (path, read_aedat31(path))
        events = self._last[1]
        return check_nonempty(events[(events["t"] >= start) & (events["t"] < end)], f"{path} [{start}, {end})")


def raw_release_present(root: str) -> bool:
    base = os.path.join(root, "DvsGesture")
    return all(os.path.isfile(os.path.join(base, f"trials_to_{p}.txt")) for p in ("train", "test"))


def open_raw_part(root: str, part: str) -> EventSource:
    base = os.path.join(root, "DvsGesture")
    listing = os.path.join(base, f"trials_to_{part}.txt")
    if not raw_release_present(root):
        raise missing("DVS-Gesture (raw)", base, "trials_to_train.txt, trials_to_test.txt, userNN_<light>.aedat and "
                      "userNN_<light>_labels.csv (DvsGesture.tar.gz extracted)", URL)
    with open(listing) as f:
        names = [line.strip() for line in f if line.strip()]
    samples, labels = [], []
    for name in names:
        path = os.path.join(base, name)
        csv_path = path[:-len(".aedat")] + "_labels.csv" if name.endswith(".aedat") else path + "_labels.csv"
        if not os.path.isfile(path) or not os.path.isfile(csv_path):
            raise missing("DVS-Gesture (raw)", base, f"{name} and its _labels.csv (listed in {listing})", URL)
        for label, start, end in read_labels(csv_path):
            samples.append((path, start, end))
            labels.append(label)
    ids = [f"{p}[{s}:{e}]" for p, s, e in samples]
    return EventSource(_ReadGesture(samples), np.asarray(labels, dtype=np.int64), (128, 128, 2), part, ids)
