"""The held-out validation split: carved from train per class with a fixed seed, never touching test, unaugmented."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tests.data import fixtures as fx
from snn_repro.data.splits import validation_split
from snn_repro.datamodule import SNNDataModule

from .conftest import dataset_cfg


class PlusOne:
    """A frame "augmentation" that is easy to see: every value + 1."""

    def __call__(self, x):
        return x + 1


AUG = OmegaConf.create({"event": [], "frame": [{"_target_": "tests.data.test_val_split.PlusOne"}]})
NO_AUG = OmegaConf.create({"event": [], "frame": []})


def test_validation_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(5), [10, 20, 30, 41, 3])
    train, val = validation_split(labels, 0.1, seed=3)
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).tolist() == list(range(len(labels)))
    assert np.bincount(labels[val]).tolist() == [1, 2, 3, 4, 1]  # round(n * 0.1) of each class, at least one
    again, other = validation_split(labels, 0.1, seed=3)[1], validation_split(labels, 0.1, seed=4)[1]
    assert again.tolist() == val.tolist() and other.tolist() != val.tolist()
    with pytest.raises(ValueError, match="val_fraction"):
        validation_split(labels, 1.0, seed=0)
    with pytest.raises(ValueError, match="holds out no sample"):
        validation_split(np.arange(3), 0.1, seed=0)  # one sample per class: none can be spared


def _static_cfg(tmp_path, rng):
    fx.write_mnist(str(tmp_path), rng, n_train=40, n_test=10)
    return dataset_cfg("mnist", tmp_path, kind="static", input_shape=[1, 28, 28], framing=("none", 0))


def _event_cfg(tmp_path, rng):
    fx.write_nmnist(str(tmp_path), rng, {"train": 4, "test": 1}, n_events=60)
    return dataset_cfg("nmnist", tmp_path, input_shape=[2, 34, 34], T=2, framing=("time_bins", 2))


def _resplit_event_cfg(tmp_path, rng):  # no official split: train/test drawn per class, then val from train
    fx.write_cifar10dvs(str(tmp_path), rng, per_class=5, n_events=80)
    return dataset_cfg("cifar10dvs", tmp_path, input_shape=[2, 128, 128], T=2, framing=("time_bins", 2),
                       split=("random_per_class", 0.2, 0))


def _embedded_cfg(tmp_path, rng):
    return dataset_cfg("digits", tmp_path, kind="static", input_shape=[1, 8, 8], framing=("none", 0),
                       split=("random_per_class", 0.25, 0))


@pytest.mark.parametrize("make_cfg", [_static_cfg, _event_cfg, _resplit_event_cfg, _embedded_cfg],
                         ids=["static", "events", "events_resplit", "embedded"])
def test_every_kind_of_dataset_holds_out_a_stratified_validation_split(tmp_path, rng, make_cfg):
    cfg = make_cfg(tmp_path, rng)
    cfg.split.val_fraction = 0.0
    plain = SNNDataModule(cfg, AUG, seed=0)
    plain.setup()
    assert plain.val_set is None and plain.eval_names == ("test_during_fit",)
    assert plain.selection_metric == "test_during_fit/acc"

    cfg.split.val_fraction = 0.25
    dm = SNNDataModule(cfg, AUG, seed=0)
    dm.setup()
    assert dm.eval_names == ("val", "test_during_fit") and dm.selection_metric == "val/acc"
    train_idx, val_idx = dm.train_set.indices, dm.val_set.indices
    assert not set(train_idx) & set(val_idx)
    assert sorted(train_idx + val_idx) == list(range(len(plain.train_set)))  # all of train, nothing else
    labels = np.asarray(plain.train_set.labels)
    per_class = np.bincount(labels)
    assert np.bincount(labels[val_idx], minlength=len(per_class)).tolist() == \
        [max(int(round(n * 0.25)), int(n >= 2)) for n in per_class]
    # the test set is the same with and without a validation split
    assert len(dm.test_set) == len(plain.test_set)
    for k in (0, len(dm.test_set) - 1):
        assert torch.equal(dm.test_set[k][0], plain.test_set[k][0]) and dm.test_set[k][1] == plain.test_set[k][1]
    # validation samples are the train samples without augmentation; training samples keep it
    unaugmented = SNNDataModule(cfg, NO_AUG, seed=0)
    unaugmented.setup()
    j = val_idx[0]
    x_val, y_val = dm.val_set[0]
    assert torch.equal(x_val, unaugmented.val_set[0][0]) and y_val == labels[j]
    assert torch.equal(dm.train_set[0][0], unaugmented.train_set[0][0] + 1)
    summary = dm.split_summary()
    assert (summary["train"], summary["val"], summary["test"]) == (len(train_idx), len(val_idx), len(dm.test_set))
    assert summary["val_fraction"] == 0.25 and summary["held_out"] is True


def test_bad_val_fraction_names_the_key(tmp_path, rng):
    cfg = _static_cfg(tmp_path, rng)
    cfg.split.val_fraction = 1.5
    with pytest.raises(ValueError, match=r"split.val_fraction must be in \[0, 1\)"):
        SNNDataModule(cfg, NO_AUG).setup()
