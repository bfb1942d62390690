"""The loading path that feeds a GPU: integer counts whose float32 is the float frames exactly, a compact event
cache, per-sample generators that draw what the seeded global generator drew, worker counts from the CPUs."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from snn_repro import datamodule as dm
from tests.data import fixtures as fx
from snn_repro.data.event_dataset import counts_tensor
from snn_repro.data.events import EVENT_DTYPE, as_events, compact_events, make_events
from snn_repro.data.registry import get_loader
from snn_repro.module import SNNModule
from snn_repro.results import ROOT

from .conftest import cifar10dvs_cfg as _cfg


@pytest.mark.parametrize("top, dtype", [(255, torch.uint8), (256, torch.int16), (32767, torch.int16),
                                        (32768, torch.int32), (65535, torch.int32),
                                        (65536, torch.float32), (2**24 + 1, torch.float32)])
def test_counts_take_the_smallest_integer_type_and_cast_back_exactly(top, dtype):
    frames = np.zeros((3, 2, 4, 4), np.float32)
    frames[1, 0, 2, 3], frames[2, 1, 0, 0] = top, 7
    x = counts_tensor(frames)
    assert x.dtype == dtype
    assert torch.equal(x.float(), torch.from_numpy(frames))  # nothing clipped, every value as float32 had it


def test_frames_that_are_not_counts_stay_float():
    frames = np.full((2, 3), 0.5, np.float32)
    assert counts_tensor(frames).dtype == torch.float32


def test_compact_events_round_trip_and_size(rng):
    ev = fx.random_events(rng, 1000, 128, 128, 1_300_000)
    small = compact_events(ev)
    assert small.itemsize == 9 and ev.itemsize == 32  # t uint32, x y uint16, p uint8
    back = as_events(small)
    assert back.dtype == EVENT_DTYPE and fx.same_events(back, ev)
    absolute = make_events(ev["x"], ev["y"], ev["t"] + 1_600_000_000_000_000, ev["p"])  # AEDAT 4's clock
    assert compact_events(absolute).itemsize == 13 and fx.same_events(as_events(compact_events(absolute)), absolute)
    odd = make_events([-3, 70_000], [0, 5], [0, 1], [-1, 1])  # outside any sensor: kept, not clipped
    assert fx.same_events(as_events(compact_events(odd)), odd)


@pytest.fixture
def c10dvs(tmp_path, rng):
    fx.write_cifar10dvs(str(tmp_path / "data"), rng, per_class=2, n_events=400)
    return tmp_path


def _augmentation(name):
    return OmegaConf.load(ROOT / "conf" / "augmentation" / f"{name}.yaml")


def test_event_cache_holds_compact_events_and_frames_are_unchanged(c10dvs):
    cached = dm.SNNDataModule(_cfg(c10dvs), _augmentation("stcf"), seed=3)
    cached.setup()
    plain = dm.SNNDataModule(_cfg(c10dvs, cache=False), _augmentation("stcf"), seed=3)
    plain.setup()
    first, uncached = (dm.SeededSamples(d.train_set, 3)[(0, 1)][0] for d in (cached, plain))
    again = dm.SeededSamples(cached.train_set, 3)[(0, 1)][0]  # events read back from the cache
    assert torch.equal(first, uncached) and torch.equal(again, first)
    ds = cached.train_set
    path = ds.cache.path(ds.ids[int(ds.indices[0])])
    entry = np.load(path)
    assert entry.itemsize == 9 and len(entry) == 400  # the fixture's clock starts at 0: t fits uint32
    assert os.path.getsize(path) < 9 * 400 + 256  # the .npy header is the rest (32 bytes an event before)


@pytest.mark.parametrize("aug", ["stcf_ref_frames", "ref_frames", "stcf"])
def test_per_sample_generator_draws_what_the_seeded_global_generator_drew(c10dvs, aug):
    data = dm.SNNDataModule(_cfg(c10dvs), _augmentation(aug), seed=5)
    data.setup()
    samples = dm.SeededSamples(data.train_set, seed=5)
    assert samples.generator_source is not None  # the project's transforms all take a generator
    for key in [(0, 0), (1, 0), (0, 1), (3, 7)]:
        x, y = samples[key]
        want, want_y = samples.global_seeded(key[0], dm._mix(5, key[1], key[0]))  # the path taken before
        assert x.dtype == want.dtype and torch.equal(x, want) and y == want_y
    assert not torch.equal(samples[(0, 0)][0], samples[(0, 1)][0])  # epochs differ


def test_a_batch_of_mixed_count_types_is_promoted_not_clipped():
    small, large = torch.full((2, 2), 3, dtype=torch.uint8), torch.full((2, 2), 300, dtype=torch.int16)
    x, y = dm.collate_samples([(small, 0), (large, 1)])
    assert x.dtype == torch.int16 and x[0, 0, 0] == 3 and x[1, 0, 0] == 300 and y.tolist() == [0, 1]


def test_the_module_casts_counts_to_float_on_the_device_and_leaves_floats_alone():
    counts = torch.tensor([[0, 2, 255]], dtype=torch.uint8)
    x = SNNModule.as_float(counts)
    assert x.dtype == torch.float32 and torch.equal(x, torch.tensor([[0.0, 2.0, 255.0]]))
    image = torch.rand(1, 3)
    assert SNNModule.as_float(image) is image


def test_worker_count_follows_the_cpus_of_each_rank(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert dm.default_workers(1) == 8  # capped
    assert dm.default_workers(4) == 3  # 16 CPUs shared by 4 ranks: 4 each, one of them trains
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")  # SLURM's allocation is per task = per rank
    assert dm.default_workers(4) == 5
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert dm.default_workers(1) == 0  # one CPU: load in the training process
    cfg = OmegaConf.create({"num_workers": -1, "synthetic": True})
    assert dm.SNNDataModule(cfg, None).num_workers == 0  # synthetic data is made in memory
    cfg.num_workers = 3
    assert dm.SNNDataModule(cfg, None).num_workers == 3 and not dm.SNNDataModule(cfg, None).pin_memory


def test_a_training_step_on_counts_equals_the_step_on_their_float32():
    from snn_repro.train import build_module
    from tests.conftest import compose_config

    module = build_module(compose_config(["encoder=direct"]))
    module.log = lambda *args, **kwargs: None
    counts = torch.randint(0, 4, (6, 64), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    y = torch.arange(6) % 10
    assert torch.equal(module._shared((counts, y), "train"), module._shared((counts.float(), y), "train"))
