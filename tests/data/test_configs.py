"""conf/dataset and conf/augmentation files of the data layer: exact keys, consistent shapes, instantiable transforms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.data import fixtures as fx
from snn_repro.data.framing import frame_shape
from snn_repro.data.registry import LOADERS, get_loader

CONF = Path(__file__).resolve().parents[2] / "conf"
KEYS = {"name", "root", "kind", "num_classes", "input_shape", "T", "framing", "spatial", "split", "cache",
        "cache_dir", "options", "batch_size", "num_workers"}
SENSORS = {"nmnist": (34, 34, 2), "dvsgesture": (128, 128, 2), "cifar10dvs": (128, 128, 2),
           "mnistdvs": (128, 128, 2), "shd": (700, 1, 1)}
STATIC = {"mnist": [1, 28, 28], "cifar10": [3, 32, 32]}
DATASETS = sorted(STATIC) + sorted(SENSORS) + ["ncaltech101", "ncars"]
AUGMENTATIONS = ["stcf", "ref_frames", "cifar10_crop_flip", "stcf_ref_frames"]


def _load(group, name):
    return OmegaConf.load(CONF / group / f"{name}.yaml")


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_config_is_complete_and_consistent(name):
    cfg = _load("dataset", name)
    assert set(cfg.keys()) == KEYS and cfg.name == name and name in LOADERS
    assert cfg.split.mode in ("official", "random_per_class", "first_per_class", "balanced_subset")
    if name in STATIC:
        assert cfg.kind == "static" and list(cfg.input_shape) == STATIC[name] and cfg.framing.mode == "none"
        assert cfg.cache is False and cfg.split.mode == "official"
        return
    assert cfg.kind == "events"
    sensor = SENSORS.get(name) or (*cfg.options.sensor_size, 2)
    assert list(frame_shape(sensor, cfg.T, cfg.spatial.mode, cfg.spatial.size)[1:]) == list(cfg.input_shape)
    if cfg.framing.mode in ("time_bins", "event_count"):
        assert int(cfg.framing.value) == cfg.T


def test_paper_conventions_of_the_defaults():
    c = _load("dataset", "cifar10dvs")
    assert (c.T, c.framing.mode, c.spatial.mode, c.spatial.size, c.split.mode, c.batch_size) == \
        (100, "time_bins", "sum_pool", 42, "random_per_class", 40)
    n = _load("dataset", "nmnist")
    assert (n.T, n.framing.mode, n.framing.value, n.spatial.mode, n.spatial.size) == (50, "window_ms", 6, "crop", 32)
    assert _load("dataset", "mnistdvs").options.scale == 16
    assert _load("dataset", "shd").framing.value == 16


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_config_instantiates(name, rng):
    cfg = _load("augmentation", name)
    assert set(cfg.keys()) == {"event", "frame"}
    events = fx.random_events(rng, 500, 128, 128, 100_000)
    for node in cfg.event:
        out = instantiate(node)(events)
        assert out.dtype == events.dtype and len(out) <= len(events)
    x = torch.rand(4, 2, 64, 64) if name != "cifar10_crop_flip" else torch.rand(3, 32, 32)
    for node in cfg.frame:
        y = instantiate(node)(x)
        assert y.shape == x.shape


def test_stcf_through_a_loader_with_the_config(tmp_path, rng):
    fx.write_cifar10dvs(str(tmp_path), rng, per_class=1, n_events=400)
    cfg = _load("dataset", "cifar10dvs")
    cfg.root, cfg.cache_dir, cfg.T, cfg.framing.value = str(tmp_path), str(tmp_path / "cache"), 10, 10
    cfg.split.test_fraction = 0.5
    stcf = instantiate(_load("augmentation", "stcf").event[0])
    ds = get_loader("cifar10dvs")(cfg, "train", event_transform=stcf)
    x, _ = ds[0]
    assert x.shape == (10, 2, 42, 42) and 0 < float(x.sum()) <= 400
    assert np.isfinite(x.numpy()).all()
