"""Start-up validation of the composed config: every problem is reported, with its key, before any work.

Fixed-shape nodes (dataset, loss, paths, top-level keys) are checked against structured configs: an unknown key or
a wrong type fails. Nodes with a ``_target_`` (neuron, encoder, rule, optimizer, trainer, callbacks, loggers,
transforms) are checked against the target's signature, so a misspelt parameter is named. ``???`` left unset fails.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    pass


@dataclass
class Framing:
    mode: str = "none"  # none | time_bins | event_count | window_ms
    value: float = 0


@dataclass
class Spatial:
    mode: str = "none"  # none | sum_pool | resize | area | crop
    size: int = 0
    crop_origin: str = "centre"  # crop: centre | top_left


@dataclass
class Split:
    mode: str = "official"  # official | random_per_class | first_per_class | balanced_subset
    test_fraction: float = 0.1
    seed: int = 0
    val_fraction: float = 0.0  # > 0: that share of each class of the train split is held out for validation


@dataclass
class DatasetSchema:
    name: str = "???"
    root: str = "???"
    kind: str = "static"  # static | events
    num_classes: int = "???"  # type: ignore[assignment]
    input_shape: list[int] = field(default_factory=list)
    T: int = "???"  # type: ignore[assignment]
    framing: Framing = field(default_factory=Framing)
    spatial: Spatial = field(default_factory=Spatial)
    split: Split = field(default_factory=Split)
    cache: bool = False
    cache_dir: Optional[str] = None
    options: dict[str, Any] = field(default_factory=dict)
    synthetic: bool = False  # smoke mode: random data shaped like the real dataset
    batch_size: int = 32
    num_workers: int = 0


@dataclass
class LossSchema:
    name: str = "ce"  # ce | mse
    reduction: str = "mean"  # mean | sum
    factor: float = 1.0


@dataclass
class PathsSchema:
    root_dir: str = "???"
    data_dir: str = "???"
    cache_dir: str = "???"
    log_dir: str = "???"
    output_dir: str = "???"


FIXED = {"dataset": DatasetSchema, "loss": LossSchema, "paths": PathsSchema}
TOP_LEVEL = {"dataset", "encoder", "neuron", "learning_rule", "augmentation", "arch", "optimizer", "scheduler",
             "trainer", "logger", "callbacks", "paths", "task_name", "seed", "readout", "loss", "fold_time", "test",
             "ckpt_path", "tags", "meta", "table", "experiment"}
CHOICES = {"readout": {"membrane", "rate", "count"}, "dataset.kind": {"static", "events"}}
# precisions whose spike counts equal float32's: mixed precision keeps neuron states, sums and counts in float32
# (snn_repro.neurons.base); "-true" half or double precision would put the states themselves in that dtype
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed")


def _check_target(node: DictConfig, key: str, errors: list[str]) -> None:
    target = node.get("_target_")
    module, _, name = str(target).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        errors.append(f"{key}._target_: cannot import {target!r}")
        return
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for k in node.keys():
        if not str(k).startswith("_") and k not in params:
            errors.append(f"{key}.{k}: not a parameter of {target} (parameters: {', '.join(params)})")


def _walk_targets(node: Any, key: str, errors: list[str]) -> None:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            _check_target(node, key, errors)
        for k in node.keys():
            if k != "_target_":
                _walk_targets(node._get_node(k), f"{key}.{k}" if key else str(k), errors)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            _walk_targets(node._get_node(i), f"{key}[{i}]", errors)


def _missing(node: Any, key: str) -> list[str]:
    """Keys left at ``???`` (without resolving interpolations, which would fail on them first)."""
    out = []
    if isinstance(node, (DictConfig, ListConfig)):
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
        for k in keys:
            full = f"{key}.{k}" if key else str(k)
            if OmegaConf.is_missing(node, k):
                out.append(full)
            else:
                out += _missing(node._get_node(k), full)
    return out


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every problem found, each with its full key."""
    errors: list[str] = []
    for k in cfg.keys():
        if k not in TOP_LEVEL:
            errors.append(f"{k}: unknown top-level key (known: {', '.join(sorted(TOP_LEVEL))})")
    for key, schema in FIXED.items():
        if key not in cfg:
            errors.append(f"{key}: missing")
            continue
        try:
            OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(cfg[key], resolve=False))
        except OmegaConfBaseException as e:
            errors.append(f"{key}.{e.full_key}: {str(e).splitlines()[0]}")
    errors += [f"{k}: mandatory value is not set (???)" for k in _missing(cfg, "")]
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value not in allowed:
            errors.append(f"{key}: {value!r} is not one of {sorted(allowed)}")
    precision = OmegaConf.select(cfg, "trainer.precision")
    if precision is not None and str(precision) not in PRECISIONS:
        errors.append(f"trainer.precision: {precision!r} is not supported (neuron states and spike counts stay "
                      f"float32; supported: {', '.join(PRECISIONS)})")
    for group in ("encoder", "neuron", "learning_rule", "optimizer", "trainer", "logger", "callbacks",
                  "augmentation"):
        if group in cfg:
            _walk_targets(cfg[group], group, errors)
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
