"""Fixtures of the data-layer tests: no network, and dataset config nodes shaped like conf/dataset/*.yaml."""
from __future__ import annotations

import socket

import numpy as np
import pytest
from omegaconf import OmegaConf


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt (tonic download, urllib, requests) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def dataset_cfg(name, root, cache_dir=None, *, input_shape, T=4, framing=("time_bins", 4), spatial=("none", 0),
                split=("official", 0.1, 0), num_classes=10, kind="events", cache=False, options=None):
    return OmegaConf.create({
        "name": name, "root": str(root), "kind": kind, "num_classes": num_classes,
        "input_shape": list(input_shape), "T": T,
        "framing": {"mode": framing[0], "value": framing[1]},
        "spatial": {"mode": spatial[0], "size": spatial[1]},
        "split": {"mode": split[0], "test_fraction": split[1], "seed": split[2]},
        "cache": cache, "cache_dir": str(cache_dir) if cache_dir else None,
        "options": options or {}, "batch_size": 4, "num_workers": 0,
    })


def cifar10dvs_cfg(tmp, **kw):
    """A cached CIFAR10-DVS config on the fixture files under ``tmp/data`` (42x42 sum pooling, 8 time bins)."""
    args = dict(input_shape=[2, 42, 42], T=8, framing=("time_bins", 8), spatial=("sum_pool", 42),
                split=("random_per_class", 0.5, 0), cache=True)
    args.update(kw)
    return dataset_cfg("cifar10dvs", tmp / "data", tmp / "cache", **args)
