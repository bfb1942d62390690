"""Splits are deterministic, disjoint, cover the pool, and follow the per-class conventions exactly."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from snn_repro.data import splits

LABELS = np.repeat(np.arange(10), 1000)  # CIFAR10-DVS: 1000 recordings per class


def cfg(mode, fraction=0.1, seed=0):
    return OmegaConf.create({"mode": mode, "test_fraction": fraction, "seed": seed})


@pytest.mark.parametrize("mode", ["random_per_class", "first_per_class"])
def test_per_class_split_is_disjoint_complete_and_100_per_class(mode):
    train = splits.select(LABELS, cfg(mode), "train")
    test = splits.select(LABELS, cfg(mode), "test")
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(LABELS)))
    assert np.array_equal(np.bincount(LABELS[test]), np.full(10, 100))
    assert np.array_equal(splits.select(LABELS, cfg(mode), "test"), test)  # deterministic


def test_first_per_class_takes_the_last_tenth_as_test():
    test = splits.select(LABELS, cfg("first_per_class"), "test")
    assert np.array_equal(test[:100], np.arange(900, 1000))
    assert np.array_equal(test[100:200], np.arange(1900, 2000))


def test_random_per_class_depends_on_seed_only():
    a = splits.select(LABELS, cfg("random_per_class", seed=0), "test")
    b = splits.select(LABELS, cfg("random_per_class", seed=1), "test")
    assert not np.array_equal(a, b)
    assert np.array_equal(a, splits.select(LABELS.copy(), cfg("random_per_class", seed=0), "test"))
    assert not np.array_equal(a[:100], np.arange(900, 1000))


def test_balanced_subset_counts_and_determinism():
    opts = {"subset_train_per_class": 30, "subset_test_per_class": 5}
    tr = splits.select(LABELS, cfg("balanced_subset"), "train", opts)
    assert np.array_equal(np.bincount(LABELS[tr]), np.full(10, 30))
    assert np.array_equal(tr, splits.select(LABELS, cfg("balanced_subset"), "train", opts))
    te = splits.select(LABELS, cfg("balanced_subset"), "test", opts)
    assert np.array_equal(np.bincount(LABELS[te]), np.full(10, 5))
    with pytest.raises(ValueError, match="subset_train_per_class"):
        splits.select(LABELS, cfg("balanced_subset"), "train", {})


def test_balanced_subset_smallest_cuts_every_class_to_the_smallest():
    """MNIST's train part has 5421 fives (its smallest class): the reference's 54210-recording subset."""
    labels = np.repeat(np.arange(10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    tr = splits.select(labels, cfg("balanced_subset"), "train", {"subset_train_per_class": "smallest"})
    assert len(tr) == 54210 and np.array_equal(np.bincount(labels[tr]), np.full(10, 5421))
    with pytest.raises(ValueError, match="subset_train_per_class must be"):
        splits.select(labels, cfg("balanced_subset"), "train", {"subset_train_per_class": "most"})


def test_official_uses_the_whole_part_and_bad_modes_fail():
    assert np.array_equal(splits.select(LABELS[:7], cfg("official"), "test"), np.arange(7))
    with pytest.raises(ValueError):
        splits.select(LABELS, cfg("random"), "train")
    with pytest.raises(ValueError):
        splits.select(LABELS, cfg("random_per_class"), "validation")
