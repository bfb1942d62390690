"""Every reader reads fixture files written in the published format back to the exact events/images and labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.data import fixtures as fx
from snn_repro.data.framing import frame_events
from snn_repro.data.registry import get_loader

from .conftest import dataset_cfg


def _check_events(ds, expected, sensor):
    """Loader order == fixture order; events exact; labels exact; frames are the framing of those events."""
    assert len(ds) == len(expected)
    for k, (ev, label) in enumerate(expected):
        got = ds.source.read(int(ds.indices[k]))
        assert fx.same_events(got, ev), f"sample {k}: events differ"
        x, y = ds[k]
        assert y == label
        assert x.dtype in (torch.uint8, torch.int16, torch.int32)  # counts; cast to float on the device
        want = frame_events(ev, sensor, ds.T, ds.mode, ds.value, ds.spatial_mode, ds.size, ds.origin)
        assert torch.equal(x.float(), torch.from_numpy(want))


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, rng, gz):
    truth = fx.write_mnist(str(tmp_path), rng, n_train=12, n_test=7, gz=gz)
    cfg = dataset_cfg("mnist", tmp_path, kind="static", input_shape=[1, 28, 28], framing=("none", 0))
    for split in ("train", "test"):
        ds = get_loader("mnist")(cfg, split)
        images, labels = truth[split]
        assert len(ds) == len(labels)
        for i in (0, len(ds) - 1):
            x, y = ds[i]
            assert x.shape == (1, 28, 28) and x.dtype == torch.float32
            assert torch.equal(x[0], torch.from_numpy(images[i].astype(np.float32) / 255))
            assert y == int(labels[i])


def test_cifar10_pickle(tmp_path, rng):
    truth = fx.write_cifar10(str(tmp_path), rng, per_batch=4)
    cfg = dataset_cfg("cifar10", tmp_path, kind="static", input_shape=[3, 32, 32], framing=("none", 0))
    for split, n in (("train", 20), ("test", 4)):
        ds = get_loader("cifar10")(cfg, split)
        images, labels = truth[split]
        assert len(ds) == n
        for i in range(n):
            x, y = ds[i]
            assert torch.equal(x, torch.from_numpy(images[i].astype(np.float32) / 255))
            assert y == int(labels[i])
        assert float(ds[0][0].max()) <= 1.0


def test_nmnist_bin(tmp_path, rng):
    truth = fx.write_nmnist(str(tmp_path), rng, {"train": 2, "test": 1}, n_events=150)
    cfg = dataset_cfg("nmnist", tmp_path, input_shape=[2, 34, 34], T=5, framing=("time_bins", 5))
    for split in ("train", "test"):
        _check_events(get_loader("nmnist")(cfg, split), truth[split], (34, 34, 2))


def test_dvsgesture_npy(tmp_path, rng):
    users = {"train": ["user01_fluorescent", "user02_led"], "test": ["user24_natural"]}
    truth = fx.write_dvsgesture(str(tmp_path), rng, users, n_events=120)
    cfg = dataset_cfg("dvsgesture", tmp_path, num_classes=11, input_shape=[2, 64, 64], T=4,
                      framing=("event_count", 4), spatial=("resize", 64))
    for split, n in (("train", 22), ("test", 11)):
        ds = get_loader("dvsgesture")(cfg, split)
        assert len(ds) == n
        _check_events(ds, truth[split], (128, 128, 2))


def test_cifar10dvs_aedat4(tmp_path, rng):
    truth = fx.write_cifar10dvs(str(tmp_path), rng, per_class=3, n_events=400)
    cfg = dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 42, 42], T=10, framing=("time_bins", 10),
                      spatial=("sum_pool", 42), split=("random_per_class", 1 / 3, 0))
    train, test = (get_loader("cifar10dvs")(cfg, s) for s in ("train", "test"))
    assert (len(train), len(test)) == (20, 10)
    for ds in (train, test):
        _check_events(ds, [truth[i] for i in ds.indices], (128, 128, 2))


def test_ncaltech101_bin(tmp_path, rng):
    classes = ["accordion", "BACKGROUND_Google", "airplanes"]
    truth = fx.write_ncaltech101(str(tmp_path), rng, classes, per_class=3, n_events=200)
    cfg = dataset_cfg("ncaltech101", tmp_path, num_classes=3, input_shape=[2, 48, 48], T=4,
                      framing=("event_count", 4), spatial=("resize", 48), split=("first_per_class", 1 / 3, 0),
                      options={"sensor_size": [240, 180]})
    train, test = (get_loader("ncaltech101")(cfg, s) for s in ("train", "test"))
    assert list(train.indices) == [0, 1, 3, 4, 6, 7] and list(test.indices) == [2, 5, 8]
    assert [y for _, y in truth] == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # BACKGROUND_Google sorts first
    for ds in (train, test):
        _check_events(ds, [truth[i] for i in ds.indices], (240, 180, 2))


def test_shd_h5(tmp_path, rng):
    truth = fx.write_shd(str(tmp_path), rng, {"train": 5, "test": 3}, n_spikes=80)
    cfg = dataset_cfg("shd", tmp_path, num_classes=20, input_shape=[700], T=64, framing=("window_ms", 16),
                      options={"window_origin": "zero"})
    for split in ("train", "test"):
        ds = get_loader("shd")(cfg, split)
        _check_events(ds, truth[split], (700, 1, 1))
        x, _ = ds[0]
        assert x.shape == (64, 700) and float(x.sum()) == 80.0
        ev = truth[split][0][0]
        want = np.zeros((64, 700), np.float32)
        np.add.at(want, (ev["t"] // 16_000, ev["x"]), 1)  # 16 ms bins from the start of the recording
        assert torch.equal(x, torch.from_numpy(want))


def test_ncars_dat(tmp_path, rng):
    truth = fx.write_ncars(str(tmp_path), rng, {"train": 3, "test": 2}, n_events=250)
    cfg = dataset_cfg("ncars", tmp_path, num_classes=2, input_shape=[2, 100, 120], T=4, framing=("event_count", 4),
                      options={"sensor_size": [120, 100]})
    for split in ("train", "test"):
        _check_events(get_loader("ncars")(cfg, split), truth[split], (120, 100, 2))


def test_ncars_accepts_published_folder_names(tmp_path, rng):
    truth = fx.write_ncars(str(tmp_path), rng, {"train": 1, "test": 1}, n_events=50)
    for part in ("train", "test"):
        (tmp_path / part).rename(tmp_path / f"n-cars_{part}")
    cfg = dataset_cfg("ncars", tmp_path, num_classes=2, input_shape=[2, 48, 48], T=2, framing=("event_count", 2),
                      spatial=("resize", 48), options={"sensor_size": [120, 100]})
    _check_events(get_loader("ncars")(cfg, "test"), truth["test"], (120, 100, 2))


def test_mnistdvs_aedat2(tmp_path, rng):
    truth = fx.write_mnistdvs(str(tmp_path), rng, per_class=4, scale=16, n_events=200)
    fx.write_mnistdvs(str(tmp_path), rng, per_class=1, scale=4, n_events=20)  # another scale must not be mixed in
    cfg = dataset_cfg("mnistdvs", tmp_path, input_shape=[2, 42, 42], T=6, framing=("time_bins", 6),
                      spatial=("sum_pool", 42), split=("random_per_class", 0.25, 0), options={"scale": 16})
    train, test = (get_loader("mnistdvs")(cfg, s) for s in ("train", "test"))
    assert (len(train), len(test)) == (30, 10)
    for ds in (train, test):
        _check_events(ds, [truth[i] for i in ds.indices], (128, 128, 2))


def test_shd_reference_loader_frames_only_the_first_T_ms_from_its_first_event(tmp_path, rng):
    """MAP-SNN's data.py calls snntorch's spikedata.SHD(num_steps=50, dt=16000 us): it slices [0, 50 * 1000 us)
    of the recording's clock, shifts the slice to its first event and bins it by 16 ms into 50 frames, so only
    frames 0-3 can hold events (dataset shd_ref: options.slice_ms = T, window_origin first_event)."""
    truth = fx.write_shd(str(tmp_path), rng, {"train": 3, "test": 2}, n_spikes=400)
    cfg = dataset_cfg("shd", tmp_path, num_classes=20, input_shape=[700], T=50, framing=("window_ms", 16),
                      options={"window_origin": "first_event", "slice_ms": 50})
    ds = get_loader("shd")(cfg, "test")
    for k in range(len(ds)):
        ev = truth["test"][int(ds.indices[k])][0]
        kept = ev[ev["t"] < 50_000]
        want = np.zeros((50, 700), np.float32)
        np.add.at(want, ((kept["t"] - kept["t"].min()) // 16_000, kept["x"]), 1)
        x, _ = ds[k]
        assert torch.equal(x.float(), torch.from_numpy(want))
        assert 0 < float(x.sum()) == len(kept) < len(ev) and float(x[4:].sum()) == 0.0
