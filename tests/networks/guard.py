"""One training step of a whole network, as the run trains it, against the reference path.

The reference path: every neuron runs its loop over ``step`` in Python (no fused form, no kernel), nothing saved in
compact form, ASF-BP's simulation as eq. 7 is written (``fast: false``), plain autograd. A candidate: the same
module, the same weights, batch and random draws, with the fused forms on one kernel backend and the learning rule's
own settings (BPTT's ``compact_spikes``, ASF-BP's ``fast`` included). Both
run the LightningModule's own ``training_step`` (encoder, rule, readout, loss), then ``backward``.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import warnings
from dataclasses import dataclass

import torch
from omegaconf import open_dict

from snn_repro.neurons.backend import kernel_backend, reference_steps
from snn_repro.neurons.base import Neuron
from snn_repro.schema import ConfigError
from snn_repro.train import build_module
from tests.conftest import compose_config


RTOL_FLOAT32 = 2e-4  # measured: at most ~1e-5 between backends on these nets
RTOL_FLOAT64 = 1e-9
T_SMALL = 5


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
    # the rule's speed switches (BPTT's compact_spikes, ASF's fast): off on the reference path
    saved = {name: getattr(rule, name) for name in ("compact_spikes", "fast") if hasattr(rule, name)}
    try:
        if reference:
            for name in saved:
                setattr(rule, name, False)
        with contextlib.ExitStack() as stack:
            stack.enter_context(kernel_backend("python" if reference else backend))
            if reference:
                stack.enter_context(reference_steps())
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")  # self.log outside a Trainer
            torch.manual_seed(seed)  # the encoder's and dropout's draws, the same for every path
            loss = module.training_step((x, y), 0)
            loss.backward()
    finally:
        for name, value in saved.items():
            setattr(rule, name, value)
    grads = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}
    return Step(loss.detach().clone(), grads)


@torch.no_grad()
def neuron_outputs(module, x, seed: int = 1) -> dict[str, torch.Tensor]:
    """Each neuron layer's output sequence on the batch (the reference path), by layer name."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.clone()))
             for name, layer in module.net.named_modules() if isinstance(layer, Neuron)]
    try:
        with kernel_backend("python"), reference_steps():
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


def shrink(cfg, size: int | None):
    """T and the input's height and width made small (``size`` None: the input as configured)."""
    with open_dict(cfg):
        cfg.dataset.T = T_SMALL
        if "checkpoint_every" in cfg.learning_rule and cfg.learning_rule.checkpoint_every is not None:
            cfg.learning_rule.checkpoint_every = 2  # blocks of 2, 2, 1 steps: a boundary inside the sequence
        shape = list(cfg.dataset.input_shape)
        if size is not None and len(shape) == 3:
            cfg.dataset.input_shape = [shape[0], size, size]
    return cfg


def build(overrides: list[str]):
    """The module of the smallest input size the arch accepts (its own size where a layer fixes it)."""
    cfg = compose_config(overrides)
    shape = list(cfg.dataset.input_shape)
    sizes = [s for s in (8, 16, 32, 64) if len(shape) == 3 and s < shape[1]] + [None]
    for size in sizes:
        small = shrink(cfg.copy(), size)
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
    cfg, module = build(list(overrides))
    x, y = _exercising_batch(cfg, module)
    return module, x, y, training_step(copies(module), x, y, backend=None)


def check(overrides: list[str], backend: str, float64: bool = True) -> None:
    module, x, y, reference = _prepared(tuple(overrides))
    candidate = training_step(copies(module), x, y, backend=backend)
    problems = compare(candidate, reference, RTOL_FLOAT32)
    assert not problems, f"{backend} vs the reference path, float32:\n" + "\n".join(problems)
    if float64 and backend == "python":  # no kernel takes float64: the Python fused forms and the compaction alone
        x64 = x.double()
        reference = training_step(copies(module, torch.float64), x64, y, backend=None)
        candidate = training_step(copies(module, torch.float64), x64, y, backend="python")
        problems = compare(candidate, reference, RTOL_FLOAT64)
        assert not problems, "python vs the reference path, float64:\n" + "\n".join(problems)
