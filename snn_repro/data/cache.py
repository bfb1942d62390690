"""On-disk cache of per-recording arrays (frames, or decoded events), one .npy per recording.

The directory name carries a hash of every parameter that shapes the cached array and of the dataset's file list
(see `cache_key`), so a changed config or an added / removed recording lands in a new directory; `key.json` beside
the arrays records what was hashed. Each entry is named by its recording's identity (path, size and modification
time, see `recording_identity`), never by its position in the list, so a replaced file is read again and no entry
can be served for another recording. An entry of the wrong shape or dtype, or holding NaN or infinity, is rebuilt
(with a warning naming it), not handed to collate.
Writes go to a temporary file and are moved into place with os.replace, so concurrent DataLoader workers and
interrupted runs never leave a half-written entry behind. A cache that cannot be written (disk full, read-only)
says so once and the run goes on uncached.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

from snn_repro.results import atomic_file

# Bump when the meaning of a cached array changes (reader fixes, framing changes) to orphan old entries.
# 2: entries named by recording identity, dataset key holds the file list.
FORMAT_VERSION = 2


def cache_key(**params: Any) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, **params}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def files_digest(ids: Sequence[str]) -> str:
    """One hash of a dataset's recording list (order included: it decides indices and splits)."""
    return hashlib.sha1("\n".join(str(i) for i in ids).encode()).hexdigest()[:16]


def recording_identity(recording_id: str) -> str:
    """``path|size|mtime_ns`` of the file behind a recording id. Ids of recordings inside one file (SHD's
    ``file.h5[i]``) keep their index and take the size and time of that file."""
    path = recording_id
    if not os.path.exists(path) and path.endswith("]") and "[" in path:
        path = path[:path.rindex("[")]
    try:
        st = os.stat(path)
        return f"{recording_id}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return f"{recording_id}|missing"


class DiskCache:
    def __init__(self, cache_dir: str, label: str, params: dict):
        self.dir = os.path.join(os.path.abspath(cache_dir), f"{label}-{cache_key(**params)}")
        self.disabled = False
        try:
            os.makedirs(self.dir, exist_ok=True)
            meta = os.path.join(self.dir, "key.json")
            if not os.path.exists(meta):
                with atomic_file(meta, durable=False) as f:
                    json.dump({"format": FORMAT_VERSION, **params}, f, sort_keys=True, default=str, indent=1)
        except OSError as e:
            self._give_up(e)

    def path(self, recording_id: str) -> str:
        name = hashlib.sha1(recording_identity(recording_id).encode()).hexdigest()[:24]
        return os.path.join(self.dir, f"{name}.npy")

    def _give_up(self, e: OSError) -> None:
        if not self.disabled:  # said once per process: every later entry would fail the same way
            where = e.filename or self.dir
            print(f"warning: cache {where} cannot be written ({e.strerror or e}); running uncached",
                  file=sys.stderr)
        self.disabled = True

    def get(self, recording_id: str, make: Callable[[], np.ndarray],
            valid: Callable[[np.ndarray], bool] = lambda arr: True) -> np.ndarray:
        if self.disabled:
            return make()
        path = self.path(recording_id)
        if os.path.exists(path):
            try:
                arr = np.load(path, allow_pickle=False)
                if valid(arr):
                    return arr
                why = f"{arr.dtype} {list(arr.shape)}, or values out of range"
            except (ValueError, OSError, EOFError) as e:  # disk full, killed copy
                why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}"
            # a damaged entry of ours: rebuilt from the source, and said (it may hide a failing disk)
            print(f"warning: cache entry {path} of {recording_id} is damaged ({why}): rebuilt from the recording",
                  file=sys.stderr)
        arr = make()
        try:
            with atomic_file(path, "wb", durable=False) as f:
                np.save(f, arr, allow_pickle=False)
        except OSError as e:  # disk full ("8192 requested and 3968 written"), quota, read-only
            self._give_up(e)
        return arr
