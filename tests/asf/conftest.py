"""Helpers of the ASF-BP tests."""
import torch

from snn_repro.network import build_network


def firing_network(arch: dict, neuron: dict, T: int, seed: int = 0):
    """(net, frames): ``arch`` built for 2x8x8 inputs with its weights doubled, so that every layer fires, and a batch
    of 3 random binary frame sequences of ``T`` steps; the same for the same ``seed``."""
    torch.manual_seed(seed)
    net = build_network(arch, neuron, (2, 8, 8))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    frames = (torch.rand(3, T, 2, 8, 8) < 0.4).float()
    return net, frames
