"""MNIST (idx files) and CIFAR10 (python pickle batches), read from their published files with numpy.

Images come back as float32 in [0, 1], [1, 28, 28] / [3, 32, 32]; normalisation and spike coding belong to the
encoder. torchvision is not a dependency (it does not install beside the pinned CPU torch).
"""
from __future__ import annotations

import gzip
import os
import pickle
from typing import Callable

import numpy as np
import torch

from snn_repro.augment import run_transform, takes_generator
from snn_repro.data import splits
from snn_repro.data.errors import CorruptFile
from snn_repro.data.event_dataset import options
from snn_repro.data.events import missing

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_URL = "http://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)"
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class StaticImages(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, frame_transform: Callable | None = None):
        self.images, self.labels, self.frame_transform = images, np.asarray(labels, dtype=np.int64), frame_transform
        self.takes_generator = takes_generator(frame_transform)  # see snn_repro.datamodule.SeededSamples

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.item(i, None)

    def item(self, i: int, generator: torch.Generator | None):
        """Image i; the random transforms draw from ``generator`` (None: torch's global generator)."""
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0)
        if self.frame_transform is not None:
            x = run_transform(self.frame_transform, x, generator)
        return x, int(self.labels[i])


def read_idx(path: str) -> np.ndarray:
    """An idx file (optionally gzipped) -> uint8 array of its declared shape; CorruptFile if cut or malformed."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise CorruptFile(f"{path}: cannot be read ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptFile(f"{path}: not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise CorruptFile(f"{path}: header cut short")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise CorruptFile(f"{path}: {body.size} data bytes, header declares {dims} ({int(np.prod(dims))})")
    return body.reshape(dims)


def _find_mnist(root: str, base: str) -> str | None:
    for directory in (root, os.path.join(root, "MNIST", "raw")):
        for name in (base, base + ".gz"):
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
    return None


def _mnist_part(root: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    img_path, lbl_path = (_find_mnist(root, f) for f in MNIST_FILES[part])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CorruptFile(f"{img_path}: {images.shape} images do not match {labels.shape} labels in {lbl_path}")
    return images[:, None], labels


def _cifar_part(root: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in CIFAR_FILES[part]:
        path = os.path.join(root, CIFAR_DIR, name)
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data, lbl = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptFile(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from e
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(lbl):
            raise CorruptFile(f"{path}: data {data.shape} / labels {lbl.shape} are not N x 3072 / N")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lbl)
    return np.concatenate(images), np.concatenate(labels)


def _static(cfg, split: str, read_part, frame_transform):
    mode = str(cfg.split.mode)
    if mode in splits.NEEDS_OFFICIAL:
        images, labels = read_part(split)
    else:  # re-split the pooled official parts per class
        (a, la), (b, lb) = read_part("train"), read_part("test")
        images, labels = np.concatenate([a, b]), np.concatenate([la, lb])
    idx = splits.select(labels, cfg.split, split, options(cfg))
    return StaticImages(images[idx], labels[idx], frame_transform)


def load_mnist(cfg, split: str, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    needed = [f for part in MNIST_FILES.values() for f in part]
    if any(_find_mnist(root, f) is None for f in needed):
        raise missing("MNIST", root, ", ".join(f + "[.gz]" for f in needed) + " (directly in it or in MNIST/raw/)",
                      MNIST_URL)
    return _static(cfg, split, lambda part: _mnist_part(root, part), frame_transform)


def load_cifar10(cfg, split: str, event_transform=None, frame_transform=None):
    root = str(cfg.root)
    needed = [f for part in CIFAR_FILES.values() for f in part]
    if not all(os.path.isfile(os.path.join(root, CIFAR_DIR, f)) for f in needed):
        raise missing("CIFAR10", root, f"{CIFAR_DIR}/{{{','.join(needed)}}} (the extracted python version)",
                      CIFAR_URL)
    return _static(cfg, split, lambda part: _cifar_part(root, part), frame_transform)
