"""What a run prints at start: the composed config as a tree, and the model (layers, parameters, neurons)."""
from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.tree import Tree

from snn_repro.layers import TimeFolded
from snn_repro.neurons.base import Neuron

# the groups a reader looks at first; the rest follow in config order
FIRST = ("dataset", "encoder", "neuron", "arch", "learning_rule", "optimizer", "scheduler", "trainer")


def config_tree(cfg: DictConfig) -> Tree:
    tree = Tree("config", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        node = cfg[key]
        branch = tree.add(f"[bold]{key}[/bold]")
        try:
            text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        except Exception:  # an interpolation only a Hydra run resolves
            text = OmegaConf.to_yaml(node) if isinstance(node, DictConfig) else str(node)
        branch.add(Syntax(text.rstrip() or "{}", "yaml", theme="ansi_dark", background_color="default"))
    return tree


def model_table(module, input_shape) -> Table:
    """One row per arch layer: name, module, output shape per step, parameters, neurons (for neuron layers)."""
    net = module.net
    table = Table(title=f"model: {type(module.rule).__name__}, encoder {type(module.encoder).__name__} "
                        f"(T={module.encoder.time_steps}), readout {module.readout_mode}")
    for col in ("layer", "module", "output / step", "params", "neurons"):
        table.add_column(col, justify="right" if col in ("params", "neurons") else "left")
    probe = torch.zeros(1, *[int(s) for s in input_shape])
    total_params = total_neurons = 0
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for name, layer in zip(net.names, net.layers):
            inner = layer.module if isinstance(layer, TimeFolded) else layer
            what = repr(inner).split("\n")[0]
            neurons = math.prod(probe.shape[1:]) if isinstance(layer, Neuron) else 0
            probe = layer(probe.unsqueeze(0)).squeeze(0)
            params = sum(p.numel() for p in layer.parameters())
            total_params, total_neurons = total_params + params, total_neurons + neurons
            table.add_row(name, what[:70], str(list(probe.shape[1:])), f"{params:,}", f"{neurons:,}" if neurons else "")
    net.train(was_training)
    table.add_row("total", "", "", f"{total_params:,}", f"{total_neurons:,}", style="bold")
    return table


def print_start(cfg: DictConfig, module) -> None:
    """Config tree and model summary on rank 0 (a DDP job prints them once)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    @rank_zero_only
    def show():
        console = Console(soft_wrap=True)
        console.print(config_tree(cfg))
        console.print(model_table(module, cfg.dataset.input_shape))

    show()
