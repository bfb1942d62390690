"""A hash of the part of a run's config that decides its numbers: a finished row is skipped only when it matches.

Left out: where files live (paths, and any value built from them), logging, tags and metadata, the table that
asked for the run, where to resume from and how often to checkpoint, progress-bar / summary switches, and the
number of loader workers (the data order and augmentation do not depend on it: snn_repro/datamodule.py), and
ASF-BP's choice of simulation code (``learning_rule.fast``: the same sums bit for bit, tests/asf/test_asf_fast.py).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

IGNORED_TOP_LEVEL = ("paths", "hydra", "logger", "tags", "meta", "table", "ckpt_path", "ckpt_force", "task_name",
                     "optimized_metric")  # what a search reads back, not how the run trains
IGNORED_KEYS = ("trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.default_root_dir",
                "trainer.log_every_n_steps", "dataset.root", "dataset.cache_dir", "dataset.num_workers",
                "callbacks.resume",  # how often to checkpoint does not change the numbers (tests/resume)
                "callbacks.neurobench", "callbacks.plots",  # they only read the test pass and draw
                "learning_rule.fast")  # ASF-BP's speed path or eq. 7 as written: the same sums
PATH_MARKERS = ("${paths.", "${hydra:", "${oc.env:")


def _plain(node: Any, key: str) -> Any:
    """The resolved value of ``node``; leaves that refer to file locations (or cannot resolve) are dropped."""
    if isinstance(node, DictConfig):
        out = {}
        for k in node.keys():
            full = f"{key}.{k}" if key else str(k)
            if full in IGNORED_KEYS or (not key and k in IGNORED_TOP_LEVEL):
                continue
            value = _plain(node._get_node(k), full)
            if value is not _DROP:
                out[str(k)] = value
        return out
    if isinstance(node, ListConfig):
        return [v for v in (_plain(node._get_node(i), f"{key}[{i}]") for i in range(len(node))) if v is not _DROP]
    raw = node._value()
    if isinstance(raw, str) and any(m in raw for m in PATH_MARKERS):
        return _DROP
    try:
        value = node._dereference_node()._value() if node._is_interpolation() else raw
    except OmegaConfBaseException:
        return _DROP
    if isinstance(value, str) and any(m in value for m in PATH_MARKERS):
        return _DROP
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


_DROP = object()


def science_config(cfg: DictConfig) -> dict:
    return _plain(cfg, "")


def config_hash(cfg: DictConfig) -> str:
    text = json.dumps(science_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
