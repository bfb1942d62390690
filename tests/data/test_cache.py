"""The frame cache serves repeat reads, is keyed by every framing parameter, and caches events under augmentation."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.data import fixtures as fx
from snn_repro.data.registry import get_loader

from .conftest import cifar10dvs_cfg as _cfg, dataset_cfg


@pytest.fixture
def c10dvs(tmp_path, rng):
    fx.write_cifar10dvs(str(tmp_path / "data"), rng, per_class=2, n_events=300)
    return tmp_path


def _refuse(i):
    raise AssertionError(f"recording {i} was read again instead of coming from the cache")


def test_second_pass_comes_from_the_cache(c10dvs):
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    first = [ds[k][0] for k in range(len(ds))]
    entries = [f for f in os.listdir(ds.cache.dir) if f.endswith(".npy")]
    assert sorted(entries) == sorted(os.path.basename(ds.cache.path(ds.ids[i])) for i in ds.indices)
    ds.source.read = _refuse
    again = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    again.source.read = _refuse
    for k in range(len(ds)):
        assert torch.equal(again[k][0], first[k])
        assert torch.equal(ds[k][0], first[k])


@pytest.mark.parametrize("change", [dict(T=4, framing=("time_bins", 4)),
                                    dict(framing=("event_count", 8)),
                                    dict(spatial=("resize", 42)),
                                    dict(split=("random_per_class", 0.5, 1)),
                                    dict(options={"note": 1})])
def test_any_changed_parameter_gets_its_own_cache(c10dvs, change):
    base = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    base[0]
    other = get_loader("cifar10dvs")(_cfg(c10dvs, **change), "train")
    assert other.cache.dir != base.cache.dir
    other.source.read = base.source.read  # reads allowed: nothing stale to serve
    want = other.frames(other.source.read(int(other.indices[0])))
    assert np.array_equal(other[0][0].numpy(), want)


def test_train_and_test_and_roots_do_not_share_entries(c10dvs, rng):
    train = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    test = get_loader("cifar10dvs")(_cfg(c10dvs), "test")
    assert train.cache.dir != test.cache.dir
    fx.write_cifar10dvs(str(c10dvs / "data2"), rng, per_class=2, n_events=300)
    cfg2 = _cfg(c10dvs)
    cfg2.root = str(c10dvs / "data2")
    assert get_loader("cifar10dvs")(cfg2, "train").cache.dir != train.cache.dir


def test_event_transform_caches_events_not_frames(c10dvs):
    calls = []

    def drop_half(ev):
        calls.append(len(ev))
        return ev[::2]

    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train", event_transform=drop_half)
    assert os.path.basename(ds.cache.dir).startswith("cifar10dvs-events-")
    x0 = ds[0][0]
    ds.source.read = _refuse
    x1 = ds[0][0]  # events from the cache, transform applied again
    assert calls == [300, 300] and torch.equal(x0, x1) and float(x1.sum()) <= 150
    cached = np.load(ds.cache.path(ds.ids[int(ds.indices[0])]))
    assert len(cached) == 300  # pre-augmentation events


def test_frame_transform_runs_after_the_cache(c10dvs):
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train", frame_transform=lambda x: x * 0 - 1)
    assert float(ds[0][0].max()) == -1.0
    plain = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    assert float(plain[0][0].min()) >= 0.0  # the transformed tensor was not written to the cache


def test_nmnist_balanced_subset_through_the_loader(tmp_path, rng):
    fx.write_nmnist(str(tmp_path), rng, {"train": 4, "test": 3}, n_events=20)
    opts = {"subset_train_per_class": 2, "subset_test_per_class": 1}
    cfg = dataset_cfg("nmnist", tmp_path, input_shape=[2, 32, 32], T=50, framing=("window_ms", 6),
                      spatial=("crop", 32), split=("balanced_subset", 0.1, 0), options=opts)
    train, test = (get_loader("nmnist")(cfg, s) for s in ("train", "test"))
    assert np.array_equal(np.bincount(train.labels), np.full(10, 2))
    assert np.array_equal(np.bincount(test.labels), np.full(10, 1))
    assert train.source.part == "train" and test.source.part == "test"
    assert np.array_equal(get_loader("nmnist")(cfg, "train").indices, train.indices)


def _truth(ds, k):
    """Frames and label of sample k read straight from its file, no cache involved."""
    i = int(ds.indices[k])
    return ds.frames(ds.source.read(i)), int(ds.source.labels[i])


def _check_all(ds):
    for k in range(len(ds)):
        x, y = ds[k]
        frames, label = _truth(ds, k)
        assert y == label and np.array_equal(x.numpy(), frames), f"sample {k} ({ds.ids[int(ds.indices[k])]})"


@pytest.mark.parametrize("change", ["add", "remove"])
def test_adding_or_removing_a_recording_serves_no_other_recordings_frames(c10dvs, rng, change):
    cfg = _cfg(c10dvs, split=("first_per_class", 0.5, 0))
    first = get_loader("cifar10dvs")(cfg, "train")
    _check_all(first)  # fills the cache
    airplane = c10dvs / "data" / "CIFAR10DVS" / "airplane"
    if change == "add":  # sorts before every other file: every later index moves by one
        fx.write_aedat4(str(airplane / "cifar10_airplane_00.aedat4"), fx.random_events(rng, 300, 128, 128, 1_300_000))
    else:
        os.remove(airplane / "cifar10_airplane_0.aedat4")
    again = get_loader("cifar10dvs")(cfg, "train")
    assert again.cache.dir != first.cache.dir  # another file list is another dataset
    _check_all(again)


def test_a_rewritten_recording_is_read_again(c10dvs, rng):
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    _check_all(ds)
    old = ds[0][0]
    path = ds.ids[int(ds.indices[0])]
    fx.write_aedat4(path, fx.random_events(rng, 77, 128, 128, 1_300_000))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    again = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    assert again.cache.dir == ds.cache.dir  # same file list: same directory, the entry's name changed
    assert not torch.equal(again[0][0], old)
    _check_all(again)


@pytest.mark.parametrize("bad", [np.zeros(3, np.float32), np.zeros((8, 2, 42, 42), np.int64),
                                 np.zeros((4, 2, 42, 42), np.uint8)])
def test_an_entry_of_the_wrong_shape_or_dtype_is_rebuilt(c10dvs, bad):
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    path = ds.cache.path(ds.ids[int(ds.indices[0])])
    np.save(path, bad)
    frames, _ = _truth(ds, 0)
    assert np.array_equal(ds[0][0].numpy(), frames)
    assert np.load(path).shape == frames.shape  # rewritten
    batch = torch.utils.data.default_collate([ds[k] for k in range(len(ds))])
    assert batch[0].shape == (len(ds), *frames.shape)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_entry_holding_nan_or_infinity_is_rebuilt_and_named(c10dvs, bad, capsys):
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    frames, _ = _truth(ds, 0)
    path = ds.cache.path(ds.ids[int(ds.indices[0])])
    damaged = frames.astype(np.float32)
    damaged.flat[::7] = bad  # the right shape and dtype: only the values are damaged
    np.save(path, damaged)
    assert np.array_equal(ds[0][0].numpy(), frames)
    assert np.isfinite(np.load(path)).all()  # rewritten from the recording
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and path in warnings[0] and ds.ids[int(ds.indices[0])] in warnings[0]


def test_frames_of_a_recording_that_are_not_finite_stop_naming_it(c10dvs, monkeypatch):
    from snn_repro.data.errors import CorruptFile

    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    frame_events = ds.frames

    def nan_frames(events, span=None):  # a reader that decodes garbage into the frames
        out = frame_events(events, span).astype(np.float32)
        out[0, 0, 0, 0] = np.nan
        return out

    monkeypatch.setattr(ds, "frames", nan_frames)
    with pytest.raises(CorruptFile) as err:
        ds[0]
    assert ds.ids[int(ds.indices[0])] in str(err.value) and "non-finite" in str(err.value)
    assert not [f for f in os.listdir(ds.cache.dir) if f.endswith(".npy")]  # nothing cached from it


def test_a_full_disk_runs_uncached_and_says_so_once(c10dvs, monkeypatch, capsys):
    from snn_repro.data import cache as cache_module

    def full(f, arr, allow_pickle=False):
        raise OSError("8192 requested and 3968 written")  # numpy's tofile on a full disk, no errno

    monkeypatch.setattr(cache_module.np, "save", full)
    ds = get_loader("cifar10dvs")(_cfg(c10dvs), "train")
    _check_all(ds)
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and ds.cache.dir in err and "running uncached" in err
    assert not [f for f in os.listdir(ds.cache.dir) if f.endswith(".npy") or f.endswith(".tmp")]
