"""Writers of small datasets in the published on-disk formats, for the tests and the data benchmarks (no run uses
them: they live with the tests).

Each writer produces the files exactly where the matching loader looks for them and returns what it wrote
(events as EVENT_DTYPE arrays, labels), so a test can compare a read-back sample with the truth.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

from snn_repro.data.events import EVENT_DTYPE, make_events


def random_events(rng: np.random.Generator, n: int, width: int, height: int, duration_us: int,
                  t0: int = 0) -> np.ndarray:
    """n events uniform over the sensor and time, sorted by time (as cameras emit them)."""
    t = np.sort(rng.integers(t0, t0 + duration_us, n))
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n))


# --- static ----------------------------------------------------------------------------------------------------
def write_idx(path: str, array: np.ndarray, gz: bool = False) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(blob)


def write_mnist(root: str, rng: np.random.Generator, n_train: int = 20, n_test: int = 10, gz: bool = True):
    os.makedirs(root, exist_ok=True)
    out = {}
    for part, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{suffix}"), images, gz)
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{suffix}"), labels, gz)
        out[part] = (images, labels)
    return out


def write_cifar10(root: str, rng: np.random.Generator, per_batch: int = 6):
    base = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(base, exist_ok=True)
    out = {"train": [], "test": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, per_batch).tolist())
        with open(os.path.join(base, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * per_batch}, f)
        out["test" if name == "test_batch" else "train"].append((data, labels))
    return {k: (np.concatenate([d for d, _ in v]).reshape(-1, 3, 32, 32), np.concatenate([l for _, l in v]))
            for k, v in out.items()}


# --- N-MNIST / N-Caltech101 (.bin, 5 bytes per event) ---------------------------------------------------------
def write_ndataset_bin(path: str, events: np.ndarray) -> None:
    """x (8 bit), y (8 bit), polarity (1 bit) + timestamp (23 bits, us), big-endian as in Orchard et al."""
    if len(events) and int(events["t"].max()) >= 2 ** 23:
        raise ValueError("timestamps beyond 23 bits need overflow records, not written here")
    rec = np.zeros((len(events), 5), dtype=np.uint8)
    rec[:, 0], rec[:, 1] = events["x"], events["y"]
    t = events["t"].astype(np.int64)
    rec[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    rec[:, 3], rec[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rec.tofile(path)


def write_nmnist(root: str, rng: np.random.Generator, per_class: dict[str, int], n_events: int = 200):
    out = {}
    for part, folder in (("train", "Train"), ("test", "Test")):
        items = []
        for d in range(10):
            for k in range(per_class[part]):
                ev = random_events(rng, n_events, 34, 34, 300_000)
                write_ndataset_bin(os.path.join(root, "NMNIST", folder, str(d), f"{k:05d}.bin"), ev)
                items.append((ev, d))
        out[part] = items
    return out


def write_ncaltech101(root: str, rng: np.random.Generator, classes: list[str], per_class: int = 3,
                      n_events: int = 300):
    items = []
    for label, c in enumerate(sorted(classes)):
        for k in range(per_class):
            ev = random_events(rng, n_events, 200, 150, 300_000)
            write_ndataset_bin(os.path.join(root, "NCALTECH101", "Caltech101", c, f"image_{k + 1:04d}.bin"), ev)
            shifted = ev.copy()  # tonic moves every recording to start at x = y = 0
            shifted["x"] -= ev["x"].min()
            shifted["y"] -= ev["y"].min()
            items.append((shifted, label))
    return items


# --- DVS-Gesture (tonic's preprocessed npy: columns x, y, p, t in ms) -----------------------------------------
def write_dvsgesture(root: str, rng: np.random.Generator, users: dict[str, list[str]], n_events: int = 300,
                     labels: range = range(11)):
    out = {}
    for part, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        items = []
        for user in users[part]:
            for label in labels:
                ev = random_events(rng, n_events, 128, 128, 6_000)  # ms resolution, as in tonic's version
                arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int64)
                path = os.path.join(root, "DVSGesture", folder, user, f"{label}.npy")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                np.save(path, arr)
                ev = ev.copy()
                ev["t"] *= 1000  # tonic converts ms to us
                items.append((path, ev, label))
        out[part] = [(ev, label) for _, ev, label in sorted(items, key=lambda it: it[0])]
    return out


# --- DVS-Gesture, IBM's raw release (AEDAT 3.1 + csv labels) ----------------------------------------------------
def write_aedat31(path: str, events: np.ndarray, packet_sizes: list[int], overflow_from: int | None = None,
                  invalid_every: int = 0) -> np.ndarray:
    """``events`` (sorted by t) as AEDAT 3.1 polarity packets of the given sizes (cycled), a special-event packet
    first; timestamps from ``overflow_from`` on are written as (eventTSOverflow 1, t - 2^31). Every
    ``invalid_every``-th event gets an extra invalid event beside it (valid bit 0). Returns the events a reader must
    return (the valid ones)."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01\r\n#!END-HEADER\r\n"
    blob = [header]
    special = np.zeros(2, dtype=[("data", "<u4"), ("t", "<i4")])
    blob.append(struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 2, 2, 2) + special.tobytes())
    data = (events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2) \
        | (events["p"].astype(np.uint32) << 1) | 1
    pos, k = 0, 0
    while pos < len(events):
        n = packet_sizes[k % len(packet_sizes)]
        k += 1
        stop = min(pos + n, len(events))
        if overflow_from is not None and events["t"][pos] < overflow_from:  # a packet has one overflow count
            stop = min(stop, int(np.searchsorted(events["t"], overflow_from)))
        chunk = slice(pos, stop)
        t = events["t"][chunk].astype(np.int64)
        overflow = int(overflow_from is not None and t[0] >= overflow_from)
        rec = np.zeros(len(t), dtype=[("data", "<u4"), ("t", "<i4")])
        rec["data"], rec["t"] = data[chunk], t - (overflow << 31)
        if invalid_every:
            bad = rec[::invalid_every].copy()
            bad["data"] &= ~np.uint32(1)
            rec = np.concatenate([rec, bad])
            rec = rec[np.argsort(rec["t"], kind="stable")]
        blob.append(struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, len(rec), len(rec), len(rec)) + rec.tobytes())
        pos = chunk.stop
    with open(path, "wb") as f:
        f.write(b"".join(blob))
    return events


def write_dvsgesture_raw(root: str, rng: np.random.Generator, trials: dict[str, list[str]], gestures: int = 3,
                         n_events: int = 200):
    """Per trial a recording with ``gestures`` labelled segments (classes drawn at random) and unlabelled events
    between them, its csv and the trials lists; returns per part the (events, label) of every segment in order."""
    base = os.path.join(root, "DvsGesture")
    os.makedirs(base, exist_ok=True)
    out = {}
    for part, names in trials.items():
        with open(os.path.join(base, f"trials_to_{part}.txt"), "w") as f:
            f.write("".join(f"{n}.aedat\n" for n in names) + "\n")
        out[part] = []
        for name in names:
            segments, rows, t0 = [], [], 1_000_000
            for _ in range(gestures):
                start, end = t0 + 50_000, t0 + 350_000
                ev = random_events(rng, n_events, 128, 128, end - start, t0=start)
                label = int(rng.integers(1, 12))
                segments.append(random_events(rng, 20, 128, 128, 50_000, t0=t0))  # before the gesture
                segments.append(ev)
                rows.append((label, start, end))
                out[part].append((ev, label - 1))
                t0 = end
            events = np.concatenate(segments)
            write_aedat31(os.path.join(base, f"{name}.aedat"), events, [37, 150, 5], invalid_every=7)
            with open(os.path.join(base, f"{name}_labels.csv"), "w") as f:
                f.write("class,startTime_usec,endTime_usec\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return out


# --- CIFAR10-DVS (AEDAT 4, the version tonic reads) ------------------------------------------------------------
def _event_packet(events: np.ndarray) -> bytes:
    """Size-prefixed flatbuffer 'EVTS' EventPacket {elements: [Event{t:int64, x:int16, y:int16, on:bool}]}."""
    n = len(events)
    rec = np.zeros(n, dtype=np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                                      "offsets": [0, 8, 10, 12], "itemsize": 16}))
    rec["t"], rec["x"], rec["y"], rec["on"] = events["t"], events["x"], events["y"], events["p"]
    body = bytearray()
    body += struct.pack("<I", 20 - 4)          # @4: root table offset (relative to itself)
    body += b"EVTS"                            # @8: file identifier
    body += struct.pack("<HHH", 6, 8, 4)       # @12: vtable: size, table size, field 0 at +4
    body += b"\x00\x00"                        # pad to 20
    body += struct.pack("<i", 20 - 12)         # @20: table: soffset to its vtable
    body += struct.pack("<I", 28 - 24)         # @24: offset to the vector
    body += struct.pack("<I", n)               # @28: vector length; elements start 8-aligned at 32
    body += rec.tobytes()
    return struct.pack("<I", len(body)) + bytes(body)


def _ioheader(description: str) -> bytes:
    """Flatbuffer 'IOHE' Ioheader {compression: int32 = 0, file_data_position: int64 = -1, description: string}."""
    text = description.encode() + b"\x00"
    buf = bytearray()
    buf += struct.pack("<I", 24)               # @0: root table offset
    buf += b"IOHE"                             # @4
    buf += struct.pack("<HHHHH", 10, 20, 16, 8, 4)  # @8: vtable: compression +16, file_data_position +8, description +4
    buf += b"\x00" * 6                         # pad to 24
    buf += struct.pack("<i", 24 - 8)           # @24: table soffset
    buf += struct.pack("<I", 44 - 28)          # @28: offset to the string
    buf += struct.pack("<q", -1)               # @32: file_data_position: read packets to the end of the file
    buf += struct.pack("<i", 0)                # @40: compression none
    buf += struct.pack("<I", len(text) - 1) + text  # @44: string
    buf += b"\x00" * (-len(buf) % 4)
    return bytes(buf)


_DESCRIPTION = (
    '<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
    '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
    '<attr key="compression" type="string">NONE</attr>'
    '<attr key="originalModuleName" type="string">capture</attr>'
    '<attr key="originalOutputName" type="string">events</attr>'
    '<attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>'
    '<attr key="typeIdentifier" type="string">EVTS</attr>'
    '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
    '<attr key="sizeX" type="int">{w}</attr><attr key="sizeY" type="int">{h}</attr>'
    '<attr key="source" type="string">DVS128</attr></node></node></node></dv>'
)


def write_aedat4(path: str, events: np.ndarray, width: int = 128, height: int = 128,
                 packet_size: int = 20_000) -> None:
    header = _ioheader(_DESCRIPTION.format(w=width, h=height))
    parts = [b"#!AER-DAT4.0\r\n", struct.pack("<I", len(header)), header]
    for start in range(0, max(len(events), 1), packet_size):
        packet = _event_packet(events[start:start + packet_size])
        parts += [struct.pack("<II", 0, len(packet)), packet]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"".join(parts))


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10dvs(root: str, rng: np.random.Generator, per_class: int = 4, n_events: int = 500,
                     duration_us: int = 1_300_000):
    items = []
    for label, c in enumerate(CIFAR10_CLASSES):
        for k in range(per_class):
            ev = random_events(rng, n_events, 128, 128, duration_us)
            write_aedat4(os.path.join(root, "CIFAR10DVS", c, f"cifar10_{c}_{k}.aedat4"), ev)
            items.append((ev, label))
    return items


# --- SHD (HDF5) -----------------------------------------------------------------------------------------------
def write_shd(root: str, rng: np.random.Generator, n: dict[str, int], n_spikes: int = 100):
    import h5py

    out = {}
    base = os.path.join(root, "SHD")
    os.makedirs(base, exist_ok=True)
    for part in ("train", "test"):
        items = []
        with h5py.File(os.path.join(base, f"shd_{part}.h5"), "w") as f:
            times = f.create_dataset("spikes/times", (n[part],), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n[part],), dtype=h5py.vlen_dtype(np.uint16))
            labels = (np.arange(n[part]) % 20).astype(np.uint16)
            for i in range(n[part]):
                # multiples of 1/1024 s are exact in float32, so the us values are known exactly
                t = np.sort(rng.integers(0, 1024, n_spikes)).astype(np.float32) / 1024
                u = rng.integers(0, 700, n_spikes).astype(np.uint16)
                times[i], units[i] = t, u
                # tonic gives every spike polarity 1
                items.append((make_events(u, 0, (t.astype(np.float64) * 1e6).astype(np.int64), 1), int(labels[i])))
            f.create_dataset("labels", data=labels)
            f.create_dataset("extra/keys", data=np.array([f"word{k}".encode() for k in range(20)]))
            f.create_dataset("extra/speaker", data=np.zeros(n[part], dtype=np.uint16))
        out[part] = items
    return out


# --- N-CARS (Prophesee .dat) ---------------------------------------------------------------------------------
def write_dat(path: str, events: np.ndarray, width: int = 120, height: int = 100) -> None:
    header = (f"% Data file containing Event2D events.\n% Version 2\n% Height {height}\n% Width {width}\n").encode()
    data = (events["x"].astype(np.uint32) & 0x3FFF) | ((events["y"].astype(np.uint32) & 0x3FFF) << 14) \
        | (events["p"].astype(np.uint32) << 28)
    rec = np.empty(len(events), dtype=[("t", "<u4"), ("data", "<u4")])
    rec["t"], rec["data"] = events["t"], data
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(header + bytes([0, 8]) + rec.tobytes())


def write_ncars(root: str, rng: np.random.Generator, per_class: dict[str, int], n_events: int = 300):
    out = {}
    for part in ("train", "test"):
        items = []
        for label, c in enumerate(("background", "cars")):
            for k in range(per_class[part]):
                ev = random_events(rng, n_events, 120, 100, 100_000)
                write_dat(os.path.join(root, part, c, f"obj_{k:06d}_td.dat"), ev)
                items.append((ev, label))
        out[part] = items
    return out


# --- MNIST-DVS (AEDAT 2.0) ------------------------------------------------------------------------------------
def write_aedat2(path: str, events: np.ndarray) -> None:
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, " \
             b"int32 timestamp (8 bytes total), repeated for each event\r\n# Timestamps tick is 1 us\r\n"
    addr = (events["y"].astype(np.uint32) << 8) | (events["x"].astype(np.uint32) << 1) \
        | events["p"].astype(np.uint32)
    rec = np.empty(len(events), dtype=[("addr", ">u4"), ("t", ">u4")])
    rec["addr"], rec["t"] = addr, events["t"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(header + rec.tobytes())


def write_mnistdvs(root: str, rng: np.random.Generator, per_class: int = 5, scale: int = 16, n_events: int = 300):
    items = []
    for d in range(10):
        for k in range(per_class):
            ev = random_events(rng, n_events, 128, 128, 2_000_000, t0=5_000_000)
            write_aedat2(os.path.join(root, f"grabbed_data{d}", f"scale{scale}",
                                      f"mnist_{d}_scale{scale:02d}_{k + 1:04d}.aedat"), ev)
            items.append((ev, d))
    return items


def same_events(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == EVENT_DTYPE and len(a) == len(b) and all(np.array_equal(a[f], b[f]) for f in "xytp")
