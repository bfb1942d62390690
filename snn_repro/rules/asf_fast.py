"""The speed path of ASF-BP's simulation (eq. 7 in ``snn_repro.rules.asf``): the same sums, in less time.

``simulate_fast`` is what ``ASF.simulate`` runs with ``learning_rule.fast: true`` (the default); tests hold its sums
equal to the written form's (tests/asf/test_asf_fast.py). Its shortcuts:

- IF/LIF stages update membrane and spikes in place (``inplace_neuron``) and add the spikes to the count inside the
  update: the values of ``LIF.step`` with a fraction of its memory traffic, most of a neuron update on a CPU.
- Parametrised weights (APBS) are computed once per simulation (``torch.nn.utils.parametrize.cached``), not per step.
- ``pooled``: a stage whose count the next stage reads only through average pooling with a power-of-two window
  (``pooled_stages``) does not sum its count; the pooled spikes are summed instead (a quarter of the size for 2x2),
  which is pooling of FO bit for bit on integer counts, and the equivalent pass takes it as that pooling's value
  (``PoolOfSum``). A scale-factor refresh needs every FO (eq. 12's mask is elementwise), so refresh steps sum all.
- ``time_block`` = k > 1: k steps at a time through each stage, the ops once on the k steps folded into the batch
  and the neuron's fused sequence form, so each stage launches its kernels T / k times instead of T times (on a GPU,
  where a step of a small layer is launch-bound, most of the simulation's time). The counts are the same (exactly
  in float64, up to the ops' rounding in float32); sums of analog values round in another order.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from snn_repro.neurons.base import full_precision
from snn_repro.neurons.lif import IF, LIF


@torch.no_grad()
def simulate_fast(rule, net, encoder, x, flows: bool, pooled: bool) -> tuple:
    """``ASF.simulate``'s sums for the stages of ``rule`` (an attached ``ASF``), as the fields of its ``Flows``:
    (input, counts, maxpool, pooled, output)."""
    skipped = set(pooled_stages(rule.stages)) if flows and pooled else set()
    with parametrize.cached():
        if rule.time_block > 1:
            return _by_blocks(rule, net, encoder, x, flows, skipped)
        return _by_steps(rule, net, encoder, x, flows, skipped)


def pooled_stages(stages) -> list[int]:
    """Stages whose count FO the next stage reads only through exact average pooling (``exact_pool``)."""
    shortcut_inputs = {s.shortcut_from for s in stages if s.shortcut is not None}  # read by a shortcut: FO is kept
    return [n for n, nxt in enumerate(stages[1:]) if nxt.ops and n not in shortcut_inputs
            and not any(isinstance(m, nn.MaxPool2d) for _, m in nxt.ops) and exact_pool(nxt.ops[0][1])]


def exact_pool(m: nn.Module) -> bool:
    """Average pooling whose per-window divisor is one power of two everywhere: on spike counts (integers) its
    output is exact, so sum_t pool(o_t) == pool(sum_t o_t) bit for bit."""
    if not isinstance(m, nn.AvgPool2d) or m.ceil_mode or m.divisor_override is not None:
        return False
    k, pad = _pair(m.kernel_size), _pair(m.padding)
    area = k[0] * k[1]
    return pad == [0, 0] and area & (area - 1) == 0


def _pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


class PoolOfSum(torch.autograd.Function):
    """Average pooling of ``z`` whose value is already known (``value``, the simulated sum of the pooled spikes):
    returns that value and back-propagates through the pooling as autograd would, without the forward pooling."""

    @staticmethod
    def forward(ctx, z, value, pool):
        ctx.save_for_backward(z)
        k = _pair(pool.kernel_size)
        ctx.args = (k, _pair(pool.stride) if pool.stride else k, _pair(pool.padding), pool.ceil_mode,
                    pool.count_include_pad, pool.divisor_override)
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return torch.ops.aten.avg_pool2d_backward(grad.contiguous(), z, *ctx.args), None, None


def inplace_neuron(neuron: nn.Module):
    """(init_state, step) of a no-grad IF/LIF step (hard reset, leak after reset) that updates the membrane and a
    spike buffer in place: the values of ``LIF.step`` (u - u*o is 0 where fired and u where silent, then the leak).
    ``step(x, state, count)`` also adds the spikes to ``count`` where one is given. None for other neuron types."""
    if type(neuron) not in (LIF, IF):
        return None
    threshold, leak = neuron.threshold, neuron.leak
    compare = torch.gt if neuron.strict else torch.ge

    def init_state(x):
        return torch.zeros_like(x), torch.empty_like(x)

    def step(x, state, count=None):
        u, o = state
        u.add_(x)
        compare(u, threshold, out=o)
        u.addcmul_(u, o, value=-1.0)
        if leak != 1.0:
            u.mul_(leak)
        if count is not None:
            count.add_(o)
        return o, state

    return init_state, step


def _sinks(rule, flows: bool, skipped: set) -> dict:
    """Key of an op whose summed output is kept -> "maxpool" or "pooled" (the pooling after a skipped stage)."""
    sinks = {rule.stages[n + 1].ops[0][0]: "pooled" for n in skipped}
    if flows:
        sinks.update({key: "maxpool" for s in rule.stages + [rule.out] for key, m in s.ops
                      if isinstance(m, nn.MaxPool2d)})
    return sinks


def _add(sums: dict, key, value: torch.Tensor) -> None:
    total = sums.get(key)
    if total is None:
        sums[key] = value.clone()
    else:
        total.add_(value)


def _by_steps(rule, net, encoder, x, flows: bool, skipped: set) -> tuple:
    sinks = _sinks(rule, flows, skipped)
    sums = {"maxpool": {}, "pooled": {}, "totals": {}}
    # per stage: the neuron's (init_state, step), whether that step is in place, whether its count is summed
    plan = []
    for n, s in enumerate(rule.stages):
        inplace = inplace_neuron(s.neuron)
        plan.append((*(inplace or (s.neuron.init_state, s.neuron.step)), inplace is not None,
                     flows and n not in skipped))
    spikes: list = [None] * len(rule.stages)  # this step's output of each stage (a shortcut reads it)
    states: list = [None] * len(rule.stages)
    counts: list = [None] * len(rule.stages)
    count = net._count if net.record else None

    def run_ops(ops, h):
        for key, m in ops:
            h = full_precision(m(h))  # under autocast: states and sums stay float32 (counts > 256 are exact)
            if key in sinks:
                _add(sums[sinks[key]], key, h)
        return h

    for h in encoder.steps(x):
        step_input = h
        if flows:
            _add(sums["totals"], "input", h)
        for n, (stage, (init_state, step, inplace, summed)) in enumerate(zip(rule.stages, plan)):
            h = run_ops(stage.ops, h)
            if stage.shortcut is not None:
                h = h + full_precision(stage.shortcut(step_input if stage.shortcut_from < 0
                                                      else spikes[stage.shortcut_from]))
            if states[n] is None:
                states[n] = init_state(h)
            if inplace and counts[n] is not None:
                h, states[n] = step(h, states[n], counts[n])  # the count added inside the neuron update
            else:
                with torch.autocast(h.device.type, enabled=False):
                    h, states[n] = step(h, states[n])
                if summed:
                    if counts[n] is None:
                        counts[n] = h.clone()
                    else:
                        counts[n].add_(h)
            if count is not None and stage.counted:
                count(stage.name, h, batch_dim=0)
            spikes[n] = h
        _add(sums["totals"], "output", run_ops(rule.out.ops, h))
    return sums["totals"].get("input"), counts, sums["maxpool"], sums["pooled"], sums["totals"]["output"]


def _by_blocks(rule, net, encoder, x, flows: bool, skipped: set) -> tuple:
    sinks = _sinks(rule, flows, skipped)
    sums = {"maxpool": {}, "pooled": {}, "totals": {}, "counts": {}}
    count = net._count if net.record else None
    states: list = [None] * len(rule.stages)
    spikes: list = [None] * len(rule.stages)  # this block's output of each stage (a shortcut reads it)

    def add(kind, key, seq):  # the sum over the block's steps, added to the sum so far
        block_sum = seq.sum(0)
        if key in sums[kind]:
            sums[kind][key].add_(block_sum)
        else:
            sums[kind][key] = block_sum

    def folded(m, seq):  # a per-step op on all the block's steps at once
        return full_precision(m(seq.flatten(0, 1))).unflatten(0, seq.shape[:2])

    def run_ops(ops, h):
        for key, m in ops:
            h = folded(m, h)
            if key in sinks:
                add(sinks[key], key, h)
        return h

    steps = iter(encoder.steps(x))
    while block := [x_t for _, x_t in zip(range(rule.time_block), steps)]:
        block_input = h = torch.stack(block)
        if flows:
            add("totals", "input", h)
        for n, stage in enumerate(rule.stages):
            h = run_ops(stage.ops, h)
            if stage.shortcut is not None:
                h = h + folded(stage.shortcut, block_input if stage.shortcut_from < 0 else spikes[stage.shortcut_from])
            h, states[n] = stage.neuron.forward_state(h, states[n])
            if flows and n not in skipped:
                add("counts", n, h)
            if count is not None and stage.counted:
                count(stage.name, h, batch_dim=1)
            spikes[n] = h
        add("totals", "output", run_ops(rule.out.ops, h))
    counts = [sums["counts"].get(n) for n in range(len(rule.stages))]
    return sums["totals"].get("input"), counts, sums["maxpool"], sums["pooled"], sums["totals"]["output"]
