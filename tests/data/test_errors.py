"""Missing datasets raise DatasetNotFound naming the directory (no network); cut files raise CorruptFile naming them."""
from __future__ import annotations

import os

import pytest

from tests.data import fixtures as fx
from snn_repro.data.errors import CorruptFile, DatasetNotFound
from snn_repro.data.registry import get_loader

from .conftest import dataset_cfg

NAMES = ["mnist", "cifar10", "nmnist", "dvsgesture", "cifar10dvs", "ncaltech101", "shd", "ncars", "mnistdvs"]


@pytest.mark.parametrize("name", NAMES)
def test_missing_dataset_names_directory_and_source(tmp_path, name):
    root = tmp_path / "nowhere" / name
    cfg = dataset_cfg(name, root, input_shape=[2, 34, 34])
    with pytest.raises(DatasetNotFound) as err:
        get_loader(name)(cfg, "train")
    msg = str(err.value)
    assert str(root) in msg and "expected" in msg and "Published at http" in msg
    assert not root.exists()  # nothing was created (tonic would have made its folder before downloading)


def test_partial_dataset_is_missing_too(tmp_path, rng):
    fx.write_nmnist(str(tmp_path), rng, {"train": 1, "test": 1}, n_events=10)
    for f in (tmp_path / "NMNIST" / "Test" / "7").iterdir():
        f.unlink()
    with pytest.raises(DatasetNotFound, match="Test/<0..9>"):
        get_loader("nmnist")(dataset_cfg("nmnist", tmp_path, input_shape=[2, 34, 34]), "train")


def _cut(path, n=3):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - n)


def _first(root, suffix):
    return next(os.path.join(d, f) for d, _, fs in sorted(os.walk(root)) for f in sorted(fs) if f.endswith(suffix))


EVENT_CASES = {
    "nmnist": (lambda r, g: fx.write_nmnist(r, g, {"train": 1, "test": 1}, 50), ".bin", [2, 34, 34], {}, "official"),
    "ncaltech101": (lambda r, g: fx.write_ncaltech101(r, g, ["a", "b"], 2, 50), ".bin", [2, 180, 240],
                    {"sensor_size": [240, 180]}, "random_per_class"),
    "dvsgesture": (lambda r, g: fx.write_dvsgesture(r, g, {"train": ["user01_led"], "test": ["user24_led"]}, 50),
                   ".npy", [2, 128, 128], {}, "official"),
    "cifar10dvs": (lambda r, g: fx.write_cifar10dvs(r, g, 2, 300), ".aedat4", [2, 128, 128], {}, "random_per_class"),
    "ncars": (lambda r, g: fx.write_ncars(r, g, {"train": 1, "test": 1}, 50), ".dat", [2, 100, 120],
              {"sensor_size": [120, 100]}, "official"),
    "mnistdvs": (lambda r, g: fx.write_mnistdvs(r, g, 2, 16, 50), ".aedat", [2, 128, 128], {"scale": 16},
                 "random_per_class"),
}


@pytest.mark.parametrize("name", sorted(EVENT_CASES))
def test_truncated_event_file_raises_corrupt_file(tmp_path, rng, name):
    write, suffix, shape, options, split = EVENT_CASES[name]
    write(str(tmp_path), rng)
    victim = _first(str(tmp_path), suffix)
    _cut(victim, 100 if suffix in (".aedat4", ".npy") else 3)
    n_classes = {"ncaltech101": 2, "dvsgesture": 11, "ncars": 2}.get(name, 10)
    cfg = dataset_cfg(name, tmp_path, input_shape=shape, num_classes=n_classes, options=options,
                      split=(split, 0.5, 0))
    loaded = [get_loader(name)(cfg, s) for s in ("train", "test")]
    with pytest.raises(CorruptFile) as err:
        for ds in loaded:
            for k in range(len(ds)):
                ds[k]
    assert victim in str(err.value)


def test_truncated_shd_raises_corrupt_file(tmp_path, rng):
    fx.write_shd(str(tmp_path), rng, {"train": 3, "test": 2}, 20)
    victim = str(tmp_path / "SHD" / "shd_train.h5")
    _cut(victim, 500)
    cfg = dataset_cfg("shd", tmp_path, num_classes=20, input_shape=[700], T=10, framing=("window_ms", 16))
    with pytest.raises(CorruptFile) as err:
        get_loader("shd")(cfg, "train")[0]
    assert victim in str(err.value)


STATIC_CASES = {  # dataset, writer, file to cut, bytes cut, input shape, split read
    "mnist-gz": ("mnist", lambda r, g: fx.write_mnist(r, g, 10, 5, gz=True), "t10k-images-idx3-ubyte.gz", 7,
                 [1, 28, 28], "test"),
    "mnist": ("mnist", lambda r, g: fx.write_mnist(r, g, 10, 5, gz=False), "t10k-images-idx3-ubyte", 7,
              [1, 28, 28], "test"),
    "cifar10": ("cifar10", lambda r, g: fx.write_cifar10(r, g, 3), "cifar-10-batches-py/data_batch_3", 40,
                [3, 32, 32], "train"),
}


@pytest.mark.parametrize("case", sorted(STATIC_CASES))
def test_truncated_static_file_raises_corrupt_file(tmp_path, rng, case):
    name, write, file, n, shape, split = STATIC_CASES[case]
    write(str(tmp_path), rng)
    victim = str(tmp_path / file)
    _cut(victim, n)
    cfg = dataset_cfg(name, tmp_path, kind="static", input_shape=shape, framing=("none", 0))
    with pytest.raises(CorruptFile) as err:
        get_loader(name)(cfg, split)
    assert victim in str(err.value)


def test_input_shape_must_match_the_framing(tmp_path, rng):
    fx.write_cifar10dvs(str(tmp_path), rng, 1, 50)
    cfg = dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 48, 48], spatial=("sum_pool", 42),
                      split=("random_per_class", 0.5, 0))
    with pytest.raises(ValueError, match="input_shape"):
        get_loader("cifar10dvs")(cfg, "train")


@pytest.mark.parametrize("cls", ["NMNIST", "DVSGesture", "CIFAR10DVS", "NCALTECH101"])
def test_tonic_download_path_is_an_error_not_a_request(tmp_path, cls):
    from snn_repro.data import tonic_sets

    ds = getattr(tonic_sets, cls)(str(tmp_path))  # existence is the loader's job: constructing reads nothing
    assert len(ds.data) == 0 and ds.location_on_system == str(tmp_path / cls)
    with pytest.raises(DatasetNotFound, match=str(tmp_path / cls)):
        ds.download()


def _c10dvs(tmp_path, rng):
    fx.write_cifar10dvs(str(tmp_path), rng, 1, 50)
    cfg = dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 42, 42], spatial=("sum_pool", 42),
                      split=("first_per_class", 0.5, 0))
    return cfg, _first(str(tmp_path), ".aedat4")


def test_a_damaged_aedat4_header_is_one_corrupt_file_line(tmp_path, rng, capfd, monkeypatch):
    from snn_repro.app import _error_line

    monkeypatch.setenv("RUST_BACKTRACE", "1")
    cfg, victim = _c10dvs(tmp_path, rng)
    raw = bytearray(open(victim, "rb").read())
    raw[47] ^= 0xFF  # a flatbuffer offset in the IOHeader: the aedat library panics (a BaseException)
    open(victim, "wb").write(bytes(raw))
    ds = get_loader("cifar10dvs")(cfg, "train")
    with pytest.raises(CorruptFile) as err:
        for k in range(len(ds)):
            ds[k]
    line = _error_line(err.value)
    assert victim in line and "\n" not in line and "PanicException" in line
    out = capfd.readouterr()
    assert "panicked" not in out.err and "backtrace" not in out.err  # Rust's panic hook output was held back


def test_a_reader_error_in_a_loader_worker_is_one_line_naming_the_file(tmp_path, rng):
    import torch

    from snn_repro.app import _error_line

    cfg, victim = _c10dvs(tmp_path, rng)
    _cut(victim, 100)
    ds = get_loader("cifar10dvs")(cfg, "train")
    with pytest.raises(CorruptFile) as err:
        list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1))
    assert "Original Traceback" in str(err.value)  # what torch re-raises: the worker's whole traceback
    line = _error_line(err.value)
    assert line.startswith("error: CorruptFile: " + victim) and "\n" not in line and "worker" in line


def test_an_unreadable_class_folder_is_permission_denied_not_missing(tmp_path, rng, monkeypatch):
    from snn_repro.app import _error_line

    fx.write_cifar10dvs(str(tmp_path), rng, 1, 50)
    locked = str(tmp_path / "CIFAR10DVS" / "cat")
    scandir = os.scandir

    def refuse(path="."):  # what a folder without read permission gives (chmod does not stop root, who runs CI)
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    cfg = dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 42, 42], spatial=("sum_pool", 42),
                      split=("first_per_class", 0.5, 0))
    with pytest.raises(PermissionError) as err:
        get_loader("cifar10dvs")(cfg, "train")
    line = _error_line(err.value)
    assert line.startswith(f"error: DatasetUnreadable: cannot read {locked}: permission denied") and "not found" \
        not in line


def test_aedat2_header_damage_is_refused_or_harmless(tmp_path, rng):
    from snn_repro.data.mnistdvs import read_aedat2

    path = str(tmp_path / "rec.aedat")
    truth = fx.random_events(rng, 200, 128, 128, 2_000_000, t0=5_000_000)
    fx.write_aedat2(path, truth)
    raw = open(path, "rb").read()
    header = len(raw) - 200 * 8
    # a last header line of 16 bytes (jAER writes lines of any length): losing its '#' shifts the body by 2 records
    raw = raw[:header] + b"# created 2013\r\n" + raw[header:]
    open(path, "wb").write(raw)
    assert fx.same_events(read_aedat2(path), truth)
    header += 16
    garbage = []
    for k in range(header):  # every single-byte flip of the header: an error naming the file, or the same events
        for flip in (0xFF, 0x01, 0x80):
            damaged = bytearray(raw)
            damaged[k] ^= flip
            open(path, "wb").write(bytes(damaged))
            try:
                events = read_aedat2(path)
            except CorruptFile as e:
                assert path in str(e)
                continue
            if not fx.same_events(events, truth):
                garbage.append((k, flip))
    assert garbage == []


def test_events_outside_the_sensor_are_counted_and_warned_once(tmp_path, rng, capsys):
    # a 320x240 recording in the CIFAR10-DVS (128x128) layout
    for c in fx.CIFAR10_CLASSES:
        for k in range(2):
            fx.write_aedat4(str(tmp_path / "CIFAR10DVS" / c / f"{c}_{k}.aedat4"),
                            fx.random_events(rng, 400, 320, 240, 10**6), width=320, height=240)
    cfg = dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 42, 42], spatial=("sum_pool", 42),
                      split=("first_per_class", 0.5, 0))
    ds = get_loader("cifar10dvs")(cfg, "train")
    for k in range(len(ds)):
        ds[k]
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "outside the 128x128 sensor" in warnings[0] and "_0.aedat4" in warnings[0]
    first = ds.source.read(int(ds.indices[0]))
    inside = int(((first["x"] < 128) & (first["y"] < 128)).sum())
    assert f"{400 - inside} of 400 events" in warnings[0] and ds.ids[int(ds.indices[0])] in warnings[0]


DAMAGED = {  # dataset and its overrides, writer, file damaged, how
    "shd-empty": (["dataset=shd", "encoder=frames"], lambda r, g: fx.write_shd(r, g, {"train": 3, "test": 2}, 20),
                  "SHD/shd_train.h5", "empty"),
    "mnist-gz-cut": (["dataset=mnist"], lambda r, g: fx.write_mnist(r, g, 10, 5, gz=True),
                     "t10k-images-idx3-ubyte.gz", "cut"),
    "cifar10-cut": (["dataset=cifar10", "arch=convnet"], lambda r, g: fx.write_cifar10(r, g, 3),
                    "cifar-10-batches-py/data_batch_3", "cut"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_data_file_through_the_entry_point_is_one_line_naming_it(tmp_path, rng, case):
    from tests.conftest import run_cli

    overrides, write, file, how = DAMAGED[case]
    name = overrides[0].split("=")[1]
    write(str(tmp_path / "data" / name), rng)
    victim = tmp_path / "data" / name / file
    if how == "empty":
        victim.write_bytes(b"")
    else:
        _cut(victim, 40)
    r = run_cli(*overrides, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none")
    lines = r.stderr.strip().splitlines()
    # our error is the line, naming the file; the reader's own error (h5py, gzip, pickle) follows it in brackets
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: CorruptFile: {victim}: ") and "(" in lines[0], lines[0]
