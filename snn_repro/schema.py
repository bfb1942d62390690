"""Start-up validation of the composed config: every problem is reported, with its key, before any work and
before torch or Lightning is imported (nothing here imports them, nor any ``_target_``).

Fixed-shape nodes (dataset, loss, scheduler, paths, top-level keys) are checked against structured configs: an
unknown key or a wrong type fails. Nodes with a ``_target_`` (neuron, encoder, rule, optimizer, trainer, callbacks,
loggers, transforms) are checked against the target's signature read from its source (snn_repro.static_signature):
a misspelt parameter or a value of the wrong type is named. Then the allowed values of every choice, the ranges of
numeric keys, and what the groups need of each other (an event dataset needs the frame encoder; ASF-BP needs
bias-free per-step linear ops and an IF/LIF-type neuron without learnable parameters; the arch's ops need inputs of
the dataset's shape). ``???`` left unset fails.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from snn_repro import static_signature


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
class SchedulerSchema:  # snn_repro.schedules.build_scheduler
    name: str = "none"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    step_size: int = 30
    warmup_epochs: int = 0
    eta_min: float = 0.0
    warmup: str = "linear"  # linear | reciprocal (the BP-STA code's lr / (warmup - epoch))


@dataclass
class TopLevelSchema:  # the plain top-level keys
    task_name: str = "train"
    seed: int = 0
    readout: str = "membrane"
    fold_time: bool = True
    test: bool = True
    ckpt_path: Optional[str] = None
    ckpt_force: bool = False
    tags: list[str] = field(default_factory=list)


@dataclass
class PathsSchema:
    root_dir: str = "???"
    data_dir: str = "???"
    cache_dir: str = "???"
    log_dir: str = "???"
    output_dir: str = "???"


FIXED = {"dataset": DatasetSchema, "loss": LossSchema, "paths": PathsSchema, "scheduler": SchedulerSchema}
TOP_LEVEL = {"dataset", "encoder", "neuron", "learning_rule", "augmentation", "arch", "optimizer", "scheduler",
             "trainer", "logger", "callbacks", "paths", "task_name", "seed", "readout", "loss", "fold_time", "test",
             "ckpt_path", "ckpt_force", "tags", "meta", "table", "experiment", "optimized_metric",
             "hparams_search"}
# precisions whose spike counts equal float32's: mixed precision keeps neuron states, sums and counts in float32
# (snn_repro.neurons.base); "-true" half or double precision would put the states themselves in that dtype
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed")
CHOICES = {
    "readout": ("membrane", "rate", "count"),
    "loss.name": ("ce", "mse"),
    "loss.reduction": ("mean", "sum"),
    "dataset.kind": ("static", "events"),
    "dataset.framing.mode": ("none", "time_bins", "event_count", "window_ms"),
    "dataset.spatial.mode": ("none", "sum_pool", "resize", "area", "crop"),  # snn_repro.data.framing
    "dataset.split.mode": ("official", "random_per_class", "first_per_class", "balanced_subset"),
    "scheduler.name": ("none", "step", "multistep", "cosine"),
    "scheduler.warmup": ("linear", "reciprocal"),  # snn_repro.schedules.WARMUPS
    "arch.init": ("default", "kaiming_normal", "xavier_normal"),
}
# key: (low, high, low included, high included); None is unbounded
RANGES = {
    "seed": (0, 2**32 - 1, True, True),
    "dataset.T": (1, None, True, None),
    "dataset.batch_size": (1, None, True, None),
    "dataset.num_workers": (-1, None, True, None),  # -1: from the CPUs available (snn_repro/datamodule.py)
    "dataset.num_classes": (1, None, True, None),
    "dataset.split.test_fraction": (0, 1, False, False),
    "optimizer.lr": (0, None, True, None),  # 0 is a run that keeps its weights (an evaluation, a DDP check)
    "optimizer.weight_decay": (0, None, True, None),
    "neuron.leak": (0, 1, True, True),
    "neuron.threshold": (0, None, False, None),
    "encoder.repeat": (1, None, True, None),
    "scheduler.gamma": (0, None, False, None),
    "scheduler.warmup_epochs": (0, None, True, None),
    "learning_rule.time_block": (1, None, True, None),  # ASF-BP: simulated steps per launch
}
# environment variables that choose how the program runs, and their values (snn_repro/neurons/backend.py,
# snn_repro/neurons/kernels_cpu.py)
ENVIRONMENT = {"SNN_REPRO_NEURON_KERNELS": ("auto", "python", "cpu", "triton"), "SNN_REPRO_CPU_KERNELS": ("0", "1")}
FRAME_ENCODERS = {"Frames"}
ASF_RULES = {"ASF"}
ASF_NEURONS = {"LIF", "IF"}  # and their subclasses (AIA), if they have no learnable parameters
ASF_OPS = {"conv", "linear", "flatten", "avgpool", "maxpool", "neuron", "resblock"}  # resblock: two stages
SPATIAL_OPS = {"conv", "avgpool", "maxpool"}  # need (C, H, W) steps
FEATURE_OPS = {"linear"}  # needs (features,) steps


def _range_text(low, high, low_in, high_in) -> str:
    if high is None:
        return f"{'>=' if low_in else '>'} {low}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def _resolved(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=False)
    except OmegaConfBaseException:  # an interpolation that resolves only inside Hydra: not checked here
        return None


def optimized_metric_error(cfg: DictConfig) -> str | None:
    """What is wrong with ``optimized_metric`` (a search's objective: a validation metric, never test/... or the
    paper protocol, which selects on test), or None."""
    optimized = _resolved(cfg, "optimized_metric")
    if optimized is not None and not str(optimized).startswith(("val/", "best/val")):
        return (f"optimized_metric: {optimized!r} is not a validation metric (a search must never select on the "
                f"test split: use val/acc, val/loss, best/val_acc)")
    if optimized is not None and not (_resolved(cfg, "dataset.split.val_fraction") or 0) > 0:
        # a search is a held-out job: it validates on a split of train (the paper-protocol jobs have none)
        return (f"optimized_metric: {optimized!r} needs a validation split: set dataset.split.val_fraction > 0 "
                f"(e.g. 0.1, as a table's held-out jobs)")
    return None


def _check_target(node: DictConfig, key: str, errors: list[str]) -> None:
    target = str(node.get("_target_"))
    sig = static_signature.signature(target)
    if sig is None:
        if static_signature._module_file(target.rpartition(".")[0]) is None:
            errors.append(f"{key}._target_: cannot find {target!r}")
        return
    for k in node.keys():
        k = str(k)
        if k.startswith("_"):
            continue
        param = sig.params.get(k)
        if param is None:
            if not sig.var_keyword:
                errors.append(f"{key}.{k}: not a parameter of {target} (parameters: {', '.join(sig.params)})")
            continue
        try:
            value = node[k]
        except OmegaConfBaseException:
            continue
        if isinstance(value, (DictConfig, ListConfig)):
            if isinstance(value, DictConfig) and "_target_" in value:
                continue
            value = OmegaConf.to_container(value, resolve=False)
        want = static_signature.check_value(param, value)
        if want is not None:
            errors.append(f"{key}.{k}: {value!r} is not {want} (a parameter of {target})")


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


def _check_cross_group(cfg: DictConfig, errors: list[str]) -> None:
    encoder = str(_resolved(cfg, "encoder._target_") or "")
    if _resolved(cfg, "dataset.kind") == "events" and encoder and not static_signature.subclass_of(encoder,
                                                                                                 FRAME_ENCODERS):
        errors.append(f"encoder: dataset {_resolved(cfg, 'dataset.name')} is an event dataset (frames of shape "
                      f"{list(_resolved(cfg, 'dataset.input_shape') or [])}) and needs encoder=frames, not {encoder}")
    layers = _resolved(cfg, "arch.layers")
    layers = OmegaConf.to_container(layers, resolve=False) if isinstance(layers, ListConfig) else None
    if not layers:
        return
    default_bias = bool(_resolved(cfg, "arch.bias"))
    rule = str(_resolved(cfg, "learning_rule._target_") or "")
    if rule and static_signature.subclass_of(rule, ASF_RULES):
        for i, spec in enumerate(layers):
            op = spec.get("op") if isinstance(spec, dict) else None
            if isinstance(op, str) and op not in ASF_OPS:
                errors.append(f"arch.layers[{i}]: op {op!r} is not supported by ASF-BP (learning_rule=asf needs "
                              f"per-step linear ops: {', '.join(sorted(ASF_OPS))})")
            elif op in ("conv", "linear") and spec.get("bias", default_bias):
                errors.append(f"arch.layers[{i}]: {op} with a bias; ASF-BP needs bias-free synapses (arch.bias=false)")
        neuron = str(_resolved(cfg, "neuron._target_") or "")
        if neuron and not static_signature.subclass_of(neuron, ASF_NEURONS):
            errors.append(f"neuron: ASF-BP (learning_rule=asf) needs an IF/LIF-type neuron, not {neuron}")
        elif neuron and static_signature.learnable(neuron):
            errors.append(f"neuron: {neuron} has learnable parameters, which ASF-BP (learning_rule=asf) does not "
                          "train; use a neuron without them (if, lif, aia) or learning_rule=bptt")
    shape = _resolved(cfg, "dataset.input_shape")
    ndim = len(shape) if isinstance(shape, (list, ListConfig)) and len(shape) else None
    for i, spec in enumerate(layers):
        op = spec.get("op") if isinstance(spec, dict) else None
        if ndim is None or not isinstance(op, str):
            break
        if op in SPATIAL_OPS and ndim != 3:
            errors.append(f"arch.layers[{i}]: {op} needs (C, H, W) steps; dataset.input_shape gives "
                          f"{ndim}-d steps {list(shape)} (flatten comes after the spatial ops)")
            break
        if op in FEATURE_OPS and ndim != 1:
            errors.append(f"arch.layers[{i}]: linear needs flat steps; dataset.input_shape gives {list(shape)}: "
                          "put {op: flatten} before it")
            break
        if op == "flatten":
            ndim = 1
        elif op not in SPATIAL_OPS | FEATURE_OPS | {"neuron", "bn", "relu", "dropout"}:
            break  # an op registered elsewhere: its output shape is not known here


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every problem found, each with its full key."""
    errors: list[str] = []
    for k in cfg.keys():
        if k not in TOP_LEVEL:
            errors.append(f"{k}: unknown top-level key (known: {', '.join(sorted(TOP_LEVEL))})")
    plain = {k: cfg._get_node(k)._value() for k in TopLevelSchema.__dataclass_fields__ if k in cfg}
    try:
        OmegaConf.merge(OmegaConf.structured(TopLevelSchema), {k: v for k, v in plain.items()
                                                               if not OmegaConf.is_missing(cfg, k)})
    except OmegaConfBaseException as e:
        errors.append(f"{e.full_key}: {str(e).splitlines()[0]}")
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
        value = _resolved(cfg, key)
        if value is not None and value not in allowed:
            errors.append(f"{key}: {value!r} is not one of {list(allowed)}")
    for key, (low, high, low_in, high_in) in RANGES.items():
        value = _resolved(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # a wrong type is reported by the schema or signature checks
        if (value < low or (value == low and not low_in)) or (high is not None and (value > high or (
                value == high and not high_in))):
            errors.append(f"{key}: {value!r} is out of range (must be {_range_text(low, high, low_in, high_in)})")
    optimized = optimized_metric_error(cfg)
    if optimized:
        errors.append(optimized)
    precision = _resolved(cfg, "trainer.precision")
    if precision is not None and str(precision) not in PRECISIONS:
        errors.append(f"trainer.precision: {precision!r} is not supported (neuron states and spike counts stay "
                      f"float32; supported: {', '.join(PRECISIONS)})")
    for group in ("encoder", "neuron", "learning_rule", "optimizer", "trainer", "logger", "callbacks",
                  "augmentation"):
        if group in cfg:
            _walk_targets(cfg[group], group, errors)
    for name, allowed in ENVIRONMENT.items():
        if name in os.environ and os.environ[name] not in allowed:
            errors.append(f"environment variable {name}: {os.environ[name]!r} is not one of {list(allowed)}")
    if not errors:  # what the groups need of each other, once each is well-formed
        _check_cross_group(cfg, errors)
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
