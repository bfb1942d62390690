"""N-MNIST, DVS-Gesture, CIFAR10-DVS, N-Caltech101 and SHD through tonic's dataset classes.

`dataset.root` is tonic's ``save_to`` directory: the files are expected where tonic itself extracts them
(root/NMNIST/Train/..., root/CIFAR10DVS/airplane/..., ...), so a tonic download made elsewhere can be copied in.
The files are checked here before a tonic dataset is constructed; the subclasses below also replace tonic's
``download`` (which would fetch the archive) by an error and its archive check by the check done here, so no code path
reaches the network. tonic lists some folders in directory order; the recordings are re-sorted by path so that
indices, splits and cache entries are the same on every machine.
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager, nullcontext

import h5py
import numpy as np
import tonic.datasets as td

from snn_repro.data import event_dataset
from snn_repro.data.errors import CorruptFile, DatasetNotFound
from snn_repro.data.events import EventSource, as_events, check_nonempty, missing, walk


class _Offline:
    """Mixin: existence is checked by the loader; a download attempt is an error, never a network request."""

    def _check_exists(self) -> bool:
        return True

    def download(self) -> None:
        raise DatasetNotFound(f"{self.location_on_system}: dataset files missing and downloads are disabled")


# Class names must stay equal to tonic's: tonic stores the data under save_to/<class name>.
class NMNIST(_Offline, td.NMNIST):
    pass


class DVSGesture(_Offline, td.DVSGesture):
    pass


class CIFAR10DVS(_Offline, td.CIFAR10DVS):
    pass


class NCALTECH101(_Offline, td.NCALTECH101):
    pass


class SHD(_Offline, td.SHD):
    pass


def _sort_by_path(ds, *extra: str) -> None:
    order = sorted(range(len(ds.data)), key=lambda i: ds.data[i])
    for name in ("data", "targets", *extra):
        values = getattr(ds, name)
        setattr(ds, name, [values[i] for i in order])


def _has_files(directory: str, suffix: str) -> bool:
    for _, _, files in walk(directory):
        if any(f.endswith(suffix) for f in files):
            return True
    return False


@contextmanager
def _held_stderr():
    """Hold what native code writes to stderr (fd 2) and pass it on only if the block succeeds: the aedat library
    panics on a damaged .aedat4 header, and Rust's panic hook prints the panic and (with RUST_BACKTRACE set) a
    backtrace of ~90 lines before Python sees the exception, which becomes one CorruptFile line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    ok = False
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
                ok = True
            finally:
                os.dup2(saved, 2)
                if ok and held.tell():
                    held.seek(0)
                    os.write(2, held.read())
    finally:
        os.close(saved)


class TonicRead:
    """Reads recording i of a tonic dataset; any parse failure becomes CorruptFile naming the file."""

    def __init__(self, ds, record_size: int = 0, native_reader: bool = False):
        self.ds, self.record_size, self.native_reader = ds, record_size, native_reader

    def path(self, i: int) -> str:
        data = getattr(self.ds, "data", None)
        return data[i] if data else os.path.join(self.ds.location_on_system, self.ds.data_filename) + f"[{i}]"

    def __call__(self, i: int) -> np.ndarray:
        path = self.path(i)
        if self.record_size and os.path.getsize(path) % self.record_size:
            raise CorruptFile(f"{path}: size {os.path.getsize(path)} is not a multiple of the "
                              f"{self.record_size}-byte event record (truncated)")
        try:
            with _held_stderr() if self.native_reader else nullcontext():
                events, _ = self.ds[i]
        except (CorruptFile, DatasetNotFound):
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # each reader fails differently on a cut file (ValueError, RuntimeError, OSError;
            # the aedat library's Rust panic on a damaged .aedat4 header is a BaseException)
            detail = str(e).splitlines()[0] if str(e) else "no detail"
            raise CorruptFile(f"{path}: cannot be parsed ({type(e).__name__}: {detail})") from None
        return check_nonempty(as_events(events), path)


def _source(ds, labels, sensor, part, record_size=0, native_reader=False) -> EventSource:
    return EventSource(TonicRead(ds, record_size, native_reader), np.asarray(labels, dtype=np.int64), sensor, part, list(ds.data))


# --- N-MNIST -------------------------------------------------------------------------------------------------
NMNIST_URL = "https://www.garrickorchard.com/datasets/n-mnist (tonic: " + td.NMNIST.base_url + ")"


def load_nmnist(cfg, split, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    base = os.path.join(root, "NMNIST")
    folders = [os.path.join(base, part, str(d)) for part in ("Train", "Test") for d in range(10)]
    if not all(_has_files(f, ".bin") for f in folders):
        raise missing("N-MNIST", base, "Train/<0..9>/*.bin and Test/<0..9>/*.bin (train.zip and test.zip extracted)",
                      NMNIST_URL)
    opts = event_dataset.options(cfg)

    def open_part(part):
        ds = NMNIST(root, train=part == "train", first_saccade_only=bool(opts.get("first_saccade_only", False)),
                    stabilize=bool(opts.get("stabilize", False)))
        return _source(ds, ds.targets, td.NMNIST.sensor_size, part, record_size=5)

    return event_dataset.build(cfg, split, open_part, True, event_transform, frame_transform)


# --- DVS-Gesture ---------------------------------------------------------------------------------------------
GESTURE_URL = "https://research.ibm.com/dvsgesture/ (tonic's preprocessed npy version: " + td.DVSGesture.train_url \
              + " and " + td.DVSGesture.test_url + ")"


RELEASES = ("auto", "raw", "npy")


def load_dvsgesture(cfg, split, event_transform=None, frame_transform=None):
    """``options.release``: ``raw`` (IBM's AEDAT 3.1 + csv release, snn_repro/data/dvsgesture_raw.py), ``npy``
    (tonic's preprocessed release) or ``auto`` (raw where root/DvsGesture holds it, else npy)."""
    from snn_repro.data import dvsgesture_raw

    root = str(cfg.root)
    release = str(event_dataset.options(cfg).get("release", "npy"))
    if release not in RELEASES:
        raise ValueError(f"dataset dvsgesture: options.release must be one of {RELEASES}, got {release!r}")
    if release == "auto":  # resolved, so that cache entries of the two releases never mix
        release = "raw" if dvsgesture_raw.raw_release_present(root) else "npy"
        cfg = cfg.copy()
        cfg.options = {**event_dataset.options(cfg), "release": release}
    if release == "raw":
        return event_dataset.build(cfg, split, lambda part: dvsgesture_raw.open_raw_part(root, part), True,
                                   event_transform, frame_transform)
    base = os.path.join(root, "DVSGesture")
    if not all(_has_files(os.path.join(base, f), ".npy") for f in ("ibmGestureTrain", "ibmGestureTest")):
        raise missing("DVS-Gesture", base, "ibmGestureTrain/userNN_<lighting>/<label>.npy and ibmGestureTest/... "
                      "(tonic's ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz extracted)", GESTURE_URL)

    def open_part(part):
        ds = DVSGesture(root, train=part == "train")
        _sort_by_path(ds, "users", "lighting")
        return _source(ds, ds.targets, td.DVSGesture.sensor_size, part)

    return event_dataset.build(cfg, split, open_part, True, event_transform, frame_transform)


# --- CIFAR10-DVS ---------------------------------------------------------------------------------------------
CIFAR10DVS_URL = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (tonic's aedat4 version: " \
                 + td.CIFAR10DVS.url + ")"


def load_cifar10dvs(cfg, split, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    base = os.path.join(root, "CIFAR10DVS")
    if not all(_has_files(os.path.join(base, c), ".aedat4") for c in td.CIFAR10DVS.classes):
        raise missing("CIFAR10-DVS", base, "<class>/*.aedat4 for the classes " + ", ".join(td.CIFAR10DVS.classes)
                      + " (CIFAR10DVS.zip and the per-class zips extracted)", CIFAR10DVS_URL)

    def open_part(part):
        ds = CIFAR10DVS(root)
        _sort_by_path(ds)
        return _source(ds, ds.targets, td.CIFAR10DVS.sensor_size, part, native_reader=True)  # aedat (Rust)

    return event_dataset.build(cfg, split, open_part, False, event_transform, frame_transform)


# --- N-Caltech101 --------------------------------------------------------------------------------------------
NCALTECH_URL = "https://www.garrickorchard.com/datasets/n-caltech101 (tonic: " + td.NCALTECH101.url + ")"


def load_ncaltech101(cfg, split, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    base = os.path.join(root, "NCALTECH101", "Caltech101")
    classes = sorted(d for d in os.listdir(base) if _has_files(os.path.join(base, d), ".bin")) \
        if os.path.isdir(base) else []
    expected = "Caltech101/<class>/image_NNNN.bin, one folder per class (Caltech101.zip extracted)"
    if not classes:
        raise missing("N-Caltech101", os.path.dirname(base), expected, NCALTECH_URL)
    if len(classes) != int(cfg.num_classes):
        raise missing("N-Caltech101", os.path.dirname(base),
                      f"{expected}; found {len(classes)} class folders, num_classes is {cfg.num_classes}", NCALTECH_URL)
    opts = event_dataset.options(cfg)
    # Recordings vary in size (tonic shifts each to start at 0,0); frames use a fixed canvas.
    w, h = (int(v) for v in opts.get("sensor_size", (240, 180)))
    index = {c: i for i, c in enumerate(classes)}

    def open_part(part):
        ds = NCALTECH101(root)
        _sort_by_path(ds)
        return _source(ds, [index[c] for c in ds.targets], (w, h, 2), part, record_size=5)

    return event_dataset.build(cfg, split, open_part, False, event_transform, frame_transform)


# --- SHD -----------------------------------------------------------------------------------------------------
SHD_URL = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (" + td.SHD.base_url + "shd_{train,test}.h5.zip)"


def load_shd(cfg, split, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    base = os.path.join(root, "SHD")
    files = {part: os.path.join(base, f"shd_{part}.h5") for part in ("train", "test")}
    if not all(os.path.isfile(f) for f in files.values()):
        raise missing("SHD", base, "shd_train.h5 and shd_test.h5 (the .h5.zip archives extracted)", SHD_URL)

    def open_part(part):
        try:
            ds = SHD(root, train=part == "train")
            with h5py.File(files[part], "r") as f:
                labels = np.asarray(f["labels"][()], dtype=np.int64)
                n_times, n_units = len(f["spikes/times"]), len(f["spikes/units"])
        except (OSError, KeyError) as e:
            raise CorruptFile(f"{files[part]}: not a readable SHD file ({type(e).__name__}: {e})") from e
        if not (len(labels) == n_times == n_units):
            raise CorruptFile(f"{files[part]}: {len(labels)} labels, {n_times} spike-time and {n_units} unit rows")
        ds.data = []  # tonic's HSD reads by index from the h5 file; TonicRead names the file instead
        return EventSource(TonicRead(ds), labels, td.SHD.sensor_size, part,
                           [f"{files[part]}[{j}]" for j in range(len(labels))])

    return event_dataset.build(cfg, split, open_part, True, event_transform, frame_transform)
