"""One training step of a whole network, as the run trains it, against the reference path.

The reference path: every neuron runs its loop over ``step`` in Python (no fused form, no kernel), nothing saved in
compact form, plain autograd. A candidate: the same module, the same weights, batch and random draws, with the
fused forms on one kernel backend and the learning rule's own settings (BPTT's ``compact_spikes`` included). Both
run the LightningModule's own ``training_step`` (encoder, rule, readout, loss), then ``backward``.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass

import torch

from snn_repro.neurons import fused
from snn_repro.neurons.base import Neuron


@dataclass
class Step:
    loss: torch.Tensor
    grads: dict[str, torch.Tensor]


def sample_batch(cfg, batch: int = 2, rate: float = 1.0, dtype=torch.float32, seed: int = 0):
    """A batch in the form the data module gives it: event frames [B, T, *shape] as Poisson counts, images
    [B, *shape] in [0, 1)."""
    g = torch.Generator().manual_seed(seed)
    shape = tuple(cfg.dataset.input_shape)
    if cfg.encoder._target_.endswith("Frames"):
        x = torch.poisson(torch.full((batch, int(cfg.dataset.T), *shape), rate, dtype=torch.float64), generator=g)
    else:
        x = torch.rand((batch, *shape), generator=g, dtype=torch.float64)
    y = torch.arange(batch) % int(cfg.dataset.num_classes)
    return x.to(dtype), y


def training_step(module, x, y, *, backend: str | None, seed: int = 1) -> Step:
    """``module.training_step`` on (x, y) and its backward. ``backend`` None: the reference path."""
    module.zero_grad(set_to_none=True)
    rule = module.rule
    reference = backend is None
    saved = getattr(rule, "compact_spikes", None)
    try:
        if reference and saved is not None:
            rule.compact_spikes = False
        with contextlib.ExitStack() as stack:
            stack.enter_context(fused.kernel_backend("python" if reference else backend))
            if reference:
                stack.enter_context(fused.reference_steps())
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")  # self.log outside a Trainer
            torch.manual_seed(seed)  # the encoder's and dropout's draws, the same for every path
            loss = module.training_step((x, y), 0)
            loss.backward()
    finally:
        if saved is not None:
            rule.compact_spikes = saved
    grads = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}
    return Step(loss.detach().clone(), grads)


@torch.no_grad()
def neuron_outputs(module, x, seed: int = 1) -> dict[str, torch.Tensor]:
    """Each neuron layer's output sequence on the batch (the reference path), by layer name."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.clone()))
             for name, layer in module.net.named_modules() if isinstance(layer, Neuron)]
    try:
        with fused.kernel_backend("python"), fused.reference_steps():
            torch.manual_seed(seed)
            module.net(module.encoder(module.as_float(x)))
    finally:
        for h in hooks:
            h.remove()
    return outputs


FLOOR = 1e-2


def compare(candidate: Step, reference: Step, rtol: float) -> list[str]:
    """What differs: the loss, a parameter missing a gradient on one side, or a gradient further from the
    reference than ``rtol`` times the reference gradient's largest magnitude, with a floor of ``rtol`` x FLOOR of
    the largest gradient of the whole network (a gradient that is zero but for rounding, e.g. a conv bias before a
    BatchNorm, has no scale of its own)."""
    problems = []
    floor = rtol * FLOOR * max((g.abs().max().item() for g in reference.grads.values()), default=0.0)
    if not torch.allclose(candidate.loss, reference.loss, rtol=rtol, atol=0.0):
        problems.append(f"loss {candidate.loss.item():.9g} vs {reference.loss.item():.9g}")
    if candidate.grads.keys() != reference.grads.keys():
        problems.append(f"parameters with a gradient differ: {sorted(candidate.grads.keys() ^ reference.grads.keys())}")
    for name in sorted(candidate.grads.keys() & reference.grads.keys()):
        got, want = candidate.grads[name], reference.grads[name]
        scale = want.abs().max().item()
        diff = (got - want).abs().max().item()
        if diff > max(rtol * scale, floor):
            problems.append(f"{name}: max |diff| {diff:.3g} = {diff / max(scale, 1e-30):.3g} of its largest value")
    return problems


def copies(module, dtype=torch.float32):
    return copy.deepcopy(module).to(dtype)
