"""Maps `dataset.name` to the function that builds one split of it.

A loader has the signature ``load(cfg, split, event_transform=None, frame_transform=None)``:
- ``cfg``: the `dataset` config node (DictConfig), with ``cfg.root`` the dataset directory;
- ``split``: "train" or "test";
- ``event_transform``: callable on a structured event array (fields x, y, t, p), applied before framing
  (training split only; the caller passes None for test);
- ``frame_transform``: callable on a float tensor (static image [C,H,W] or frames [T,P,H,W]), applied last.
It returns a ``torch.utils.data.Dataset`` of ``(x, label)``: ``x`` an image [C, H, W] (float32) for static datasets
(the encoder makes spikes of it) or frames [T, P, H, W] for event datasets, as integer counts (uint8 / int16 /
int32) that the module casts to float32 on the device. A dataset may offer ``item(i, generator)`` and set
``takes_generator``: its random transforms then draw from the per-sample generator the data module hands it.
A loader raises ``DatasetNotFound`` (see errors.py) before touching anything when files are missing.
"""
from __future__ import annotations

import importlib

# name -> "module:function", imported lazily so that `import snn_repro` stays fast.
LOADERS: dict[str, str] = {
    "digits": "snn_repro.data.embedded:load_digits",
    "ndigits": "snn_repro.data.embedded:load_ndigits",
    "mnist": "snn_repro.data.static:load_mnist",
    "cifar10": "snn_repro.data.static:load_cifar10",
    "nmnist": "snn_repro.data.tonic_sets:load_nmnist",
    "dvsgesture": "snn_repro.data.tonic_sets:load_dvsgesture",
    "cifar10dvs": "snn_repro.data.tonic_sets:load_cifar10dvs",
    "ncaltech101": "snn_repro.data.tonic_sets:load_ncaltech101",
    "shd": "snn_repro.data.tonic_sets:load_shd",
    "ncars": "snn_repro.data.ncars:load_ncars",
    "mnistdvs": "snn_repro.data.mnistdvs:load_mnistdvs",
}


def get_loader(name: str):
    try:
        target = LOADERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(LOADERS)}") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)
