"""The network-level guard: one training step of whole networks built from the project's configs, on every kernel
backend under every learning rule, gives the loss and the gradient of every parameter of the reference path
(tests/networks/guard.py: Python step loops, nothing compacted).

Two sets of networks, both found from the configs (a new neuron, rule, arch or table row is covered by adding its
config file):
- every ``conf/neuron`` x every ``conf/learning_rule`` on ``conf/arch/mlp`` and ``conf/arch/convnet`` (ASF-BP where it accepts the
  neuron; where it refuses, the refusal is checked);
- every distinct network the tables train (arch, neuron, rule, readout, loss, encoder of each row), with T and the
  input's height and width made small.
Float32 within ``RTOL_FLOAT32`` of each gradient's largest value (the kernels sum in another order); the Python
backend also in float64, within ``RTOL_FLOAT64``. Each case also checks that its batch makes every neuron layer
spike and, for families that emit spike counts, that some count exceeds 1: the properties a compaction error or a
wrong backward would show in.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from snn_repro.neurons.base import Neuron
from snn_repro.schema import ConfigError
from snn_repro.train import build_module
from tests.conftest import CONF, compose_config
from tests.networks.guard import compare, copies, neuron_outputs, sample_batch, training_step
from tests.neurons.conftest import BACKENDS

RTOL_FLOAT32 = 2e-4  # measured: at most ~1e-5 between backends on these nets
RTOL_FLOAT64 = 1e-9
T_SMALL = 5
STRUCTURE = ("arch", "neuron", "learning_rule", "readout", "loss", "encoder", "fold_time")

NEURONS = sorted(p.stem for p in (CONF / "neuron").glob("*.yaml"))
RULES = sorted(p.stem for p in (CONF / "learning_rule").glob("*.yaml"))


def _shrink(cfg, size: int | None):
    """T and the input's height and width made small (``size`` None: the input as configured)."""
    with open_dict(cfg):
        cfg.dataset.T = T_SMALL
        if "checkpoint_every" in cfg.learning_rule and cfg.learning_rule.checkpoint_every is not None:
            cfg.learning_rule.checkpoint_every = 2  # blocks of 2, 2, 1 steps: a boundary inside the sequence
        shape = list(cfg.dataset.input_shape)
        if size is not None and len(shape) == 3:
            cfg.dataset.input_shape = [shape[0], size, size]
    return cfg


def _build(overrides: list[str]):
    """The module of the smallest input size the arch accepts (its own size where a layer fixes it)."""
    cfg = compose_config(overrides)
    shape = list(cfg.dataset.input_shape)
    sizes = [s for s in (8, 16, 32, 64) if len(shape) == 3 and s < shape[1]] + [None]
    for size in sizes:
        small = _shrink(cfg.copy(), size)
        torch.manual_seed(0)
        try:
            return small, build_module(small)
        except (RuntimeError, ValueError) as err:  # a pooling stack or a fixed in-features that needs more
            if size is None or isinstance(err, ConfigError):
                raise
    raise AssertionError("unreachable")


def _silent(module, x) -> list[str]:
    """What keeps the batch from exercising the network: neuron layers that never fire, and for families that emit
    spike counts, no count above 1 anywhere."""
    outputs = neuron_outputs(copies(module), x)
    problems = [name for name, out in outputs.items() if not out.any()]
    counting = any(isinstance(m, Neuron) and not m.binary_spikes for m in module.net.modules())
    if counting and max(out.max().item() for out in outputs.values()) <= 1:
        problems.append("no spike count above 1")
    return problems if outputs else ["no neuron layer"]


def _exercising_batch(cfg, module):
    """A batch on which every neuron layer fires (input rates raised, then synaptic weights doubled, as needed)."""
    for doublings in range(7):
        for rate in (1.0, 2.0, 4.0):
            x, y = sample_batch(cfg, rate=rate)
            if not _silent(module, x):
                return x, y
        with torch.no_grad():
            for m in module.net.modules():
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                    m.weight.mul_(2.0)
    raise AssertionError(f"no test batch exercises the network: {_silent(module, x)}")


@functools.lru_cache(maxsize=1)  # the backends of one case run one after another (the innermost parameter)
def _prepared(overrides: tuple[str, ...]):
    """The case's module, an exercising batch and the reference path's step on it."""
    cfg, module = _build(list(overrides))
    x, y = _exercising_batch(cfg, module)
    return module, x, y, training_step(copies(module), x, y, backend=None)


def _check(overrides: list[str], backend: str) -> None:
    module, x, y, reference = _prepared(tuple(overrides))
    candidate = training_step(copies(module), x, y, backend=backend)
    problems = compare(candidate, reference, RTOL_FLOAT32)
    assert not problems, f"{backend} vs the reference path, float32:\n" + "\n".join(problems)
    if backend == "python":  # float64: no kernel takes it, so the Python fused forms and the compaction alone
        x64 = x.double()
        reference = training_step(copies(module, torch.float64), x64, y, backend=None)
        candidate = training_step(copies(module, torch.float64), x64, y, backend="python")
        problems = compare(candidate, reference, RTOL_FLOAT64)
        assert not problems, "python vs the reference path, float64:\n" + "\n".join(problems)


# --- every neuron x every rule on a small convolutional net ------------------------------------------------------
# the MLP: a neuron's spikes feed a Linear, which saves them for its weight gradient; the convnet: conv, neuron,
# pool, as the papers' conv nets (biases off, as ASF-BP needs)
ARCHS = {"mlp": ["arch=mlp", "arch.bias=false"], "convnet": ["arch=convnet"]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_and_rule(arch, neuron, rule, backend):
    overrides = ["dataset=ndigits", "encoder=frames", *ARCHS[arch], f"neuron={neuron}", f"learning_rule={rule}"]
    if rule == "asf":
        try:
            _build(overrides)
        except ConfigError as err:  # ASF-BP gives a neuron's own parameters no gradient: refused, by name
            assert "learning_rule=asf" in str(err) and "learnable parameters" in str(err)
            return
    _check(overrides, backend)


# --- every network the tables train -------------------------------------------------------------------------------
@functools.cache
def table_networks() -> dict[str, list[str]]:
    """One composition per distinct network of the tables' rows: id -> overrides."""
    from snn_repro.tables.catalog import discover_tables

    seen: dict[tuple, tuple[str, list[str]]] = {}
    for name, table in sorted(discover_tables().items()):
        for rid, row in table.rows.items():
            structural = [o for o in row.override_args() if o.lstrip("+~").split("=")[0].split(".")[0] in STRUCTURE]
            seen.setdefault((row.experiment, *structural), (f"{name}/{rid}", [f"+experiment={row.experiment}",
                                                                             *structural]))
    networks: dict[str, list[str]] = {}
    for case_id, overrides in seen.values():
        cfg = compose_config(overrides)
        key = repr([OmegaConf.to_container(cfg[k], resolve=False) if OmegaConf.is_config(cfg[k]) else cfg[k]
                    for k in STRUCTURE])
        networks.setdefault(key, (case_id, overrides))
    return dict(networks.values())


def _table_ids():
    return sorted(table_networks())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", _table_ids())
def test_table_network(case, backend):
    _check(table_networks()[case], backend)


def test_the_table_networks_cover_the_paper_mechanisms():
    """The set above is not empty of what matters: MAP's nets and ConvSyn, residual blocks, APBS, BN per step,
    voting, ASF-BP and every neuron config used by a table."""
    text = " ".join(" ".join(o) for o in table_networks().values())
    composed = [compose_config(o) for o in table_networks().values()]
    archs = " ".join(OmegaConf.to_yaml(c.arch) for c in composed)
    for needed in ("op: convsyn", "op: resblock", "apbs:", "op: vote", "op: bn", "bn_per_step: true"):
        assert needed in archs, needed
    assert any(c.learning_rule._target_.endswith("ASF") for c in composed)
    families = {c.neuron._target_ for c in composed}
    assert {"snn_repro.neurons.map.MAPNeuron", "snn_repro.neurons.BPSA"} <= families or len(families) >= 5, families
    assert text
