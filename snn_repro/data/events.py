"""The event array every reader returns, and the sources that hand out recordings one at a time.

All readers convert to one structured dtype (fields x, y, t, p; t in microseconds) so that framing, caching and
event augmentation do not depend on the file format. 1-D sensors (SHD) have y = 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from snn_repro.data.errors import CorruptFile, DatasetNotFound, DatasetUnreadable

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def make_events(x, y, t, p) -> np.ndarray:
    x = np.asarray(x)
    ev = np.empty(len(x), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def _smallest(values: np.ndarray, candidates: tuple) -> np.dtype:
    """The first of ``candidates`` that holds every value exactly (int64 when none does)."""
    if len(values) == 0:
        return np.dtype(candidates[0])
    lo, hi = int(values.min()), int(values.max())
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def compact_events(events: np.ndarray) -> np.ndarray:
    """The same events in the smallest field types that hold them exactly, for the event cache: x, y in uint16,
    p in uint8 and t in uint32 (int64 where a recording's clock does not fit, e.g. AEDAT 4's absolute times), so
    9 to 13 bytes an event instead of EVENT_DTYPE's 32. A field whose values do not fit keeps int64 (out-of-sensor
    or negative coordinates are kept as they are; framing drops them): nothing is clipped."""
    dtype = np.dtype([(name, _smallest(events[name], small)) for name, small in
                      (("t", (np.uint32,)), ("x", (np.uint16,)), ("y", (np.uint16,)), ("p", (np.uint8, np.int8)))])
    out = np.empty(len(events), dtype=dtype)
    for name in dtype.names:
        out[name] = events[name]
    return out


def is_event_array(arr: np.ndarray) -> bool:
    """A 1-D structured array with integer fields x, y, t, p (EVENT_DTYPE or ``compact_events``' output)."""
    names = arr.dtype.names or ()
    return arr.ndim == 1 and set(names) == {"x", "y", "t", "p"} and all(
        np.issubdtype(arr.dtype[n], np.integer) for n in names)


def as_events(arr: np.ndarray) -> np.ndarray:
    """Any structured array with fields x, t, p (y optional) -> EVENT_DTYPE."""
    names = arr.dtype.names or ()
    y = arr["y"] if "y" in names else np.zeros(len(arr), dtype=np.int64)
    return make_events(arr["x"], y, arr["t"], np.asarray(arr["p"]).astype(np.int64))


def check_nonempty(events: np.ndarray, path: str) -> np.ndarray:
    # No published recording is empty; an empty one means a cut file, and framing it would give a blank sample.
    if len(events) == 0:
        raise CorruptFile(f"{path}: no events could be read (truncated or empty file)")
    return events


def skip_text_header(raw: bytes, marker: bytes, path: str) -> tuple[int, list[bytes]]:
    """Offset of the binary body after the leading header lines that start with ``marker``, and those lines."""
    pos, lines = 0, []
    while pos < len(raw) and raw[pos:pos + 1] == marker:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise CorruptFile(f"{path}: header line without end (truncated)")
        lines.append(raw[pos:end].strip())
        pos = end + 1
    return pos, lines


def fixed_size_records(raw: bytes, pos: int, dtype: np.dtype, path: str) -> np.ndarray:
    """The body from ``pos`` as records of ``dtype``; a partial last record means a cut file."""
    body = len(raw) - pos
    if body % dtype.itemsize:
        raise CorruptFile(f"{path}: {body} data bytes is not a whole number of {dtype.itemsize}-byte events "
                          "(truncated)")
    return np.frombuffer(raw, dtype=dtype, offset=pos)


def missing(name: str, directory: str, expected: str, published: str) -> DatasetNotFound:
    return DatasetNotFound(
        f"{name} not found in {os.path.abspath(directory)}: expected {expected}. "
        f"Published at {published}. No download is attempted; place the files there or set dataset.root."
    )


def _raise(error: OSError) -> None:
    if isinstance(error, PermissionError):
        raise DatasetUnreadable(f"cannot read {error.filename}: permission denied (a dataset folder must be "
                                f"readable and listable by this user)") from None
    raise error


def walk(directory: str):
    """os.walk that raises on a folder it cannot list (os.walk skips it silently: an unreadable class folder would
    then read as a missing dataset). A missing `directory` itself yields nothing."""
    if not os.path.isdir(directory):
        return iter(())
    return os.walk(directory, onerror=_raise)


def glob_sorted(directory: str, suffix: str) -> list[str]:
    """Files under `directory` (recursively) ending in `suffix`, sorted so that indices and splits are stable."""
    found = []
    for path, dirs, files in walk(directory):
        found.extend(os.path.join(path, f) for f in files if f.endswith(suffix))
    return sorted(found)


@dataclass
class EventSource:
    """Recordings of one part of a dataset: `read(i)` -> EVENT_DTYPE array, `labels[i]` -> int.

    `sensor` is (W, H, P): the frame size before spatial reduction (H = 1 for 1-D sensors).
    `part` names the on-disk part ("train", "test" or "all") and enters the cache key.
    """

    read: Callable[[int], np.ndarray]
    labels: np.ndarray
    sensor: tuple[int, int, int]
    part: str
    ids: Sequence[str] = field(default_factory=list)  # one identifier per recording (a file path), for messages

    def __len__(self) -> int:
        return len(self.labels)


def concat_sources(a: EventSource, b: EventSource) -> EventSource:
    """Both official parts as one pool, for datasets re-split per class (train first, then test)."""
    return EventSource(_ConcatRead(a.read, b.read, len(a)), np.concatenate([a.labels, b.labels]), a.sensor, "all",
                       list(a.ids) + list(b.ids))


class _ConcatRead:
    # A class rather than a closure so that sources pickle into DataLoader worker processes.
    def __init__(self, first, second, n_first: int):
        self.first, self.second, self.n_first = first, second, n_first

    def __call__(self, i: int) -> np.ndarray:
        return self.first(i) if i < self.n_first else self.second(i - self.n_first)
