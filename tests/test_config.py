"""Every option of every config group composes, validates and instantiates; bad configs are named."""
from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import open_dict

from snn_repro.schema import ConfigError, validate
from snn_repro.train import build_module
from tests.conftest import CONF

# groups whose options build without a dataset on disk
GROUPS = ["encoder", "neuron", "learning_rule", "augmentation", "arch", "optimizer", "scheduler", "trainer",
          "logger", "callbacks"]


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


# what an option needs of the other groups (the config check refuses it with the defaults otherwise)
NEEDS = {"learning_rule=asf": ["arch.bias=false"],  # ASF-BP: bias-free synapses
         "arch=map_shd": ["dataset=shd", "encoder=frames"], "arch=map_shd_small": ["dataset=shd", "encoder=frames"],
         "arch=nir": ["arch.nir=model.nir"]}  # the graph file is read when the network is built


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS + ["dataset"] for o in options(g)])
def test_every_option_composes_and_validates(cfg_factory, group, option):
    needs = NEEDS.get(f"{group}={option}", [])
    if group == "dataset" and cfg_factory(f"dataset={option}").dataset.kind == "events":
        needs = ["encoder=frames"]  # an event dataset's frames are the input as they are
    validate(cfg_factory(f"{group}={option}", *needs))


@pytest.mark.parametrize("option", options("neuron"))
def test_every_neuron_builds_into_a_network_and_runs(cfg_factory, option):
    import torch

    cfg = cfg_factory(f"neuron={option}")
    module = build_module(cfg)
    x = torch.rand(4, 1, 8, 8)
    scores = module.rule.train_scores(module.net, module.encoder, x, module.read)
    assert scores.shape == (4, 10)


@pytest.mark.parametrize("group", ["encoder", "optimizer", "trainer", "logger", "callbacks", "learning_rule"])
def test_target_groups_instantiate(cfg_factory, group):
    for option in options(group):
        cfg = cfg_factory(f"{group}={option}")
        node = cfg[group]
        if group == "optimizer":
            import torch

            instantiate(node)(params=[torch.nn.Parameter(torch.zeros(1))])
        elif group in ("logger", "callbacks"):
            for v in node.values():
                instantiate(v)
        elif group == "trainer":
            with open_dict(node):
                node.accelerator = "cpu" if node.accelerator != "cpu" else node.accelerator
                node.pop("strategy", None)
                node.pop("sync_batchnorm", None)
                node.devices = 1
            instantiate(node, logger=False)
        else:
            instantiate(node)


def test_misspelt_neuron_parameter_is_named(cfg_factory):
    cfg = cfg_factory()
    with open_dict(cfg):
        cfg.neuron.treshold = 1.0
    with pytest.raises(ConfigError, match=r"neuron\.treshold: not a parameter"):
        validate(cfg)


def test_wrong_type_and_unknown_dataset_key_are_named(cfg_factory):
    for key, value in (("batch_size", "many"), ("colour", 3)):
        cfg = cfg_factory()
        with open_dict(cfg):
            cfg.dataset[key] = value
        with pytest.raises(ConfigError, match=rf"dataset\.{key}"):
            validate(cfg)


def test_unset_mandatory_value_is_named(cfg_factory):
    cfg = cfg_factory("dataset.T=???")
    with pytest.raises(ConfigError, match=r"dataset\.T: mandatory value is not set"):
        validate(cfg)


def test_unknown_readout_choice(cfg_factory):
    with pytest.raises(ConfigError, match="readout"):
        validate(cfg_factory("readout=spikes"))
