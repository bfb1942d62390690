"""Train/test index selection (`dataset.split`). All modes are deterministic and give disjoint train and test sets.

- ``official``: the dataset's own train/test parts (the loader picks the part; every index of it is used).
- ``random_per_class``: within each class a permutation drawn with `seed`; the first round(n * test_fraction)
  of it are test (ASF-BP, APBS: CIFAR10-DVS "100 random samples of each class's 1000"; MNIST-DVS 9000/1000).
- ``first_per_class``: within each class in file order, the first n - round(n * test_fraction) are train, the rest
  test (BPSA reference code for CIFAR10-DVS).
- ``balanced_subset``: from each official part, `per_class` recordings of every class drawn with `seed`
  (options.subset_train_per_class / options.subset_test_per_class); ``smallest`` takes the size of the part's
  smallest class for every class (N-MNIST: 5421 x 10 = 54210 train, 892 x 10 = 8920 test, the MAP-SNN reference
  code's class-balanced subset); a number gives quick runs.

A validation split (``split.val_fraction`` > 0) is then carved from the train indices by ``validation_split``:
stratified per class, drawn with `seed`; the test set is never touched.
"""
from __future__ import annotations

import numpy as np

MODES = ("official", "random_per_class", "first_per_class", "balanced_subset")
NEEDS_OFFICIAL = ("official", "balanced_subset")


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def per_class(labels: np.ndarray, split: str, mode: str, test_fraction: float, seed: int) -> np.ndarray:
    """Indices of `split` for the per-class modes, in ascending order."""
    _check_split(split)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"split.test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):  # sorted classes, so the rng draws in a fixed order
        idx = np.flatnonzero(labels == c)
        n_test = int(round(len(idx) * test_fraction))
        if mode == "random_per_class":
            idx = idx[rng.permutation(len(idx))]
            part = idx[:n_test] if split == "test" else idx[n_test:]
        elif mode == "first_per_class":
            n_train = len(idx) - n_test
            part = idx[:n_train] if split == "train" else idx[n_train:]
        else:
            raise ValueError(f"not a per-class split mode: {mode!r}")
        chosen.append(part)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def balanced_subset(labels: np.ndarray, count: int | str, seed: int) -> np.ndarray:
    """`count` indices of every class (all of a class if it has fewer; ``"smallest"``: the smallest class's size),
    drawn with `seed`; ascending order."""
    labels = np.asarray(labels)
    if count == "smallest":
        count = int(np.unique(labels, return_counts=True)[1].min()) if len(labels) else 1
    count = int(count)
    if count <= 0:
        raise ValueError(f"balanced_subset needs a positive count per class, got {count}")
    rng = np.random.default_rng(seed)
    chosen = [np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))[:count]]
              for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def select(labels: np.ndarray, split_cfg, split: str, options=None) -> np.ndarray:
    """Indices into `labels` for `split`. For the official modes `labels` are those of the official part."""
    _check_split(split)
    mode = split_cfg.mode
    if mode == "official":
        return np.arange(len(labels))
    if mode == "balanced_subset":
        options = options or {}
        key = f"subset_{split}_per_class"
        if key not in options:
            raise ValueError(f"split.mode balanced_subset needs dataset.options.{key}")
        count = options[key]
        if count != "smallest" and not str(count).isdigit():
            raise ValueError(f"dataset.options.{key} must be a positive number or 'smallest', got {count!r}")
        return balanced_subset(labels, count if count == "smallest" else int(count),
                               int(split_cfg.seed) + (split == "test"))
    if mode in ("random_per_class", "first_per_class"):
        return per_class(labels, split, mode, float(split_cfg.test_fraction), int(split_cfg.seed))
    raise ValueError(f"split.mode must be one of {MODES}, got {mode!r}")


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions into `labels` (the train split's labels): within each class round(n * fraction)
    samples (at least one of a class with two or more), drawn with `seed`, are held out for validation. Both
    ascending; disjoint; together all positions."""
    if not 0.0 < fraction < 1.0:  # 0 is no split at all: the caller does not ask for one
        raise ValueError(f"split.val_fraction must be in [0, 1) (0: no validation split), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0x7A1])  # a stream of its own: not the draws of the train/test split
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_val = max(int(round(len(idx) * fraction)), int(len(idx) >= 2))
        val.append(idx[rng.permutation(len(idx))[:n_val]])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    if len(val) == 0:
        raise ValueError(f"split.val_fraction {fraction} holds out no sample of a {len(labels)}-sample train split")
    return np.setdiff1d(np.arange(len(labels)), val), val
