"""ASF-BP: backpropagation through the accumulated spiking flow (Wu et al., AAAI 2021).

Algorithm 1 (one training step), in the paper's notation; a *stage* n is the ops W^n between two neuron layers and
the neuron layer it feeds (IF/LIF, eq. 3: u^n_t = l * u^n_{t-1} * (1 - o^n_{t-1}) + x^n_t, o^n_t = 1[u^n_t > Vth]):

    Forward (lines 2-10), ``simulate``: T steps without autograd, time-outermost; per stage the spiking flow
        FO^n = sum_t o^n_t                                         (eq. 7)
      and the output layer's membrane sum (it never fires). FI^n = sum_t x^n_t (eq. 7) is not summed: the ops are
      linear, so FI^n = W^n FO^{n-1} (eq. 8), which the equivalent pass computes anyway.
    CalculateScale (lines 11-13), ``update_scale``: one factor per layer (eq. 12),
        S^n = sum(FO^n[m]) / sum(FI^n[m]),  m = FI^n >= FO^n (the reference code's mask; ``mask: false``: the paper,
      no mask; spiking pools: no mask), 1 where sum(FI) < eps; S^n <- a * S^n_batch + (1 - a) * S^n, a the
      ``refresh_momentum`` (0.6) on the batches the ScaleFactorRefresh callback picks, frozen otherwise. The ``scale`` buffer holds it,
      so checkpoints keep it; under DDP the sums run over the global batch.
    Loss (line 14): scores = FI^N / (Vth * T) (eq. 6; the configured ``readout: membrane``).
    Backward (lines 15-21), ``equivalent``: one differentiable pass of the equivalent network, z^n = W^n FO^{n-1}
      with value FO^n and d FO^n / d FI^n = S^n * 1[FI^n > 0] (eq. 10-11; the mask 1[FI > 0] as in the reference
      code), so autograd gives dL/dFO^n = sum_j dL/dFO^{n+1}_j S^{n+1} w^{n+1}_j (eq. 10) and
      dL/dw^n = dL/dFO^n S^n FO^{n-1} (eq. 11).

``simulate`` here is eq. 7 as written, each neuron's own ``step``; ``fast: true`` (the default) runs
``snn_repro.rules.asf_fast.simulate_fast`` instead, its speed path with the same sums (tests/asf/test_asf_fast.py).

Max pooling on per-step spikes is not linear: its summed output is recorded during the simulation. The value the
next layer sees in the equivalent pass is max pooling of the counts (``maxpool_value: counts``, the reference code,
default) or that recorded sum (``accumulated``); the gradient goes through max pooling of the previous layer's value.
A spiking residual block (``snn_repro.ops.resblock``: y = N2(conv2(N1(conv1(x))) + shortcut(x))) is two stages;
FI of a sum of linear paths is the sum of their FIs, FI_2 = conv2(FO_1) + shortcut(FO_in).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from snn_repro.distributed import all_sum
from snn_repro.layers import TimeFolded
from snn_repro.neurons.base import Neuron, full_precision
from snn_repro.ops.resblock import SpikingResBlock
from snn_repro.rules.asf_fast import PoolOfSum, simulate_fast
from snn_repro.rules.base import LearningRule
from snn_repro.schema import ConfigError

# per-step ops for which op(sum_t x_t) == sum_t op(x_t)
LINEAR = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, nn.Identity)
MAXPOOL = nn.MaxPool2d  # not linear: its summed output is recorded
MAXPOOL_VALUES = ("counts", "accumulated")  # the first is the default (the reference code's)


@dataclass
class Stage:
    """Eq. 7's layer n: the per-step ops W^n feeding the neuron layer LIF^n."""

    ops: list[tuple]  # (key, module): key a layer index, or (layer index, attribute) inside a residual block
    neuron: Neuron | None  # None: the output ops after the last neuron layer (never fires)
    name: str  # the neuron layer's name ("<block>.<attribute>" inside a residual block)
    counted: bool = True  # the network counts this layer's spikes (SpikingNetwork.forward does not count inside blocks)
    pool: bool = False  # only pooling ops: a spiking pool, whose scale factor is never masked
    shortcut: nn.Module | None = None  # a residual block's shortcut, added to the ops' output
    shortcut_from: int = -1  # the stage whose count the shortcut reads (-1: the input)


@dataclass
class Flows:
    """The sums over the T steps that the simulation hands the equivalent pass."""

    input: torch.Tensor | None  # the network input summed: layer 1's FO^0 (None: inference, no flows)
    counts: list  # FO^n per stage; None where not summed (no flows, or the fast path's ``pooled`` instead)
    maxpool: dict  # key of a max pooling -> its summed output
    pooled: dict  # fast path: key of the pooling after a stage without FO^n -> its summed output (= pool(FO^n))
    output: torch.Tensor | None  # the output ops' summed output (the never-firing output layer's membrane)


def _check_linear(m: nn.Module, where: str, maxpool: bool = True) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
        raise ValueError(f"asf: {where} has a bias; ASF-BP needs bias-free synapses (set arch bias: false)")
    if not isinstance(m, LINEAR + ((MAXPOOL,) if maxpool else ())):
        raise ValueError(f"asf: {where} ({type(m).__name__}) is not linear; ASF-BP takes bias-free conv, linear, "
                         "avgpool, flatten, and maxpool outside residual blocks (whose convs need bn: false)")


class _StraightThrough(torch.autograd.Function):
    """Value: ``value`` (a simulated sum, exactly); gradient w.r.t. ``z``: the incoming gradient times ``gain``
    (None: passed on unchanged). The gradient of ``g = z * gain; g + (value - g).detach()``, without that
    expression's elementwise passes and its rounding of the value."""

    @staticmethod
    def forward(ctx, z, value, gain):
        ctx.has_gain = gain is not None
        if ctx.has_gain:
            ctx.save_for_backward(gain)
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        if not ctx.has_gain:
            return grad, None, None
        (gain,) = ctx.saved_tensors
        return grad * gain, None, None


def _compare(op, a, b) -> torch.Tensor:
    """``op(a, b).to(a.dtype)``, written as 1.0 / 0.0 straight into a float tensor (half the passes)."""
    return op(a, b, out=torch.empty_like(a))


def _add(total: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    return value.clone() if total is None else total.add_(value)


class ASF(nn.Module, LearningRule):
    def __init__(self, mask: bool = True, eps: float = 1e-3, maxpool_value: str = MAXPOOL_VALUES[0],
                 divide_by: str = "steps", fast: bool = True, time_block: int = 1):
        """``divide_by``: the readout divides by all simulated steps (``steps``: T * repeat) or by the number of
        input frames T (``frames``: the reference's "inject 3 times" on CIFAR10-DVS). ``fast``: simulate with
        ``simulate_fast`` (false: eq. 7 as written); ``time_block`` (k > 1, fast only): k steps at a time."""
        super().__init__()
        if maxpool_value not in MAXPOOL_VALUES:
            raise ValueError(f"maxpool_value must be one of {MAXPOOL_VALUES}, got {maxpool_value!r}")
        if divide_by not in ("steps", "frames"):
            raise ValueError(f"divide_by must be 'steps' or 'frames', got {divide_by!r}")
        if not isinstance(time_block, int) or time_block < 1:
            raise ValueError(f"time_block must be an integer >= 1, got {time_block!r}")
        if time_block > 1 and not fast:
            raise ValueError("learning_rule.time_block > 1 is a setting of the fast simulation (learning_rule.fast)")
        self.mask, self.eps, self.maxpool_value, self.divide_by = mask, eps, maxpool_value, divide_by
        self.fast, self.time_block = fast, time_block
        self.stages: list[Stage] = []
        self.out = Stage([], None, "output")
        #: EMA momentum of the next scale-factor update; None: frozen (set by the ScaleFactorRefresh callback)
        self.refresh_momentum: float | None = None
        self.register_buffer("scale", torch.ones(0))

    # --- structure -----------------------------------------------------------------------------
    def attach(self, net) -> None:
        """Split the network into stages; one scale factor per neuron layer, starting at 1 (reference)."""
        self.stages, ops = [], []
        for i, (name, layer) in enumerate(zip(net.names, net.layers)):
            if isinstance(layer, SpikingResBlock):
                if ops:
                    raise ValueError(f"asf: layer {i} (resblock) must follow a neuron layer or the input directly")
                for part in ("conv1", "conv2", "shortcut"):
                    for m in getattr(layer, part).modules():
                        if not isinstance(m, nn.Sequential):
                            _check_linear(m, f"layer {i} ({part})", maxpool=False)
                block_input = len(self.stages) - 1
                self.stages.append(Stage([((i, "conv1"), layer.conv1)], layer.neuron1, f"{name}.neuron1", False))
                self.stages.append(Stage([((i, "conv2"), layer.conv2)], layer.neuron2, f"{name}.neuron2", False,
                                         shortcut=layer.shortcut, shortcut_from=block_input))
            elif isinstance(layer, Neuron):
                pool = bool(ops) and all(isinstance(m, (nn.AvgPool2d, MAXPOOL)) for _, m in ops)
                self.stages.append(Stage(ops, layer, name, pool=pool))
                ops = []
            elif isinstance(layer, TimeFolded):
                _check_linear(layer.module, f"layer {i}")
                ops.append((i, layer.module))
            else:
                raise ValueError(f"asf: layer {i} ({type(layer).__name__}) works along time; ASF-BP needs per-step ops")
        if not self.stages:
            raise ValueError("asf: the network has no neuron layer")
        for s in self.stages:  # the equivalent pass has no route to a neuron's own parameters: they would not train
            learnable = [n for n, p in s.neuron.named_parameters() if p.requires_grad]
            if learnable:
                raise ConfigError(f"learning_rule=asf: neuron layer {s.name} ({type(s.neuron).__name__}) has "
                                  f"learnable parameters ({', '.join(learnable)}) that ASF-BP gives no gradient; "
                                  f"use a neuron without them (lif, if) or learning_rule=bptt")
        self.out = Stage(ops, None, "output")
        self.scale = torch.ones(len(self.stages), device=self.scale.device)

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def scale_factors(self) -> dict[str, float]:
        return {s.name: float(v) for s, v in zip(self.stages, self.scale)}

    # --- simulation (eq. 7) -------------------------------------------------------------------------
    @torch.no_grad()
    def simulate(self, net, encoder, x, flows: bool = True, pooled: bool = False) -> Flows:
        """All T steps, time-outermost: the summed output and, with ``flows``, the input, every stage's count FO^n
        and every max pooling's output summed. ``pooled`` allows the fast path to sum a stage's pooled spikes
        instead of its count where only exact pooling reads it (not for a scale-factor refresh: eq. 12 needs FO)."""
        if not self.stages:
            self.attach(net)
        if self.fast:
            return Flows(*simulate_fast(self, net, encoder, x, flows, pooled))
        sums = Flows(None, [None] * len(self.stages), {}, {}, None)
        state, spikes = [None] * len(self.stages), [None] * len(self.stages)
        for x_t in encoder.steps(x):
            if flows:
                sums.input = _add(sums.input, x_t)
            h = x_t
            for n, stage in enumerate(self.stages):
                h = self._step_ops(stage, h, sums.maxpool if flows else None)
                if stage.shortcut is not None:
                    source = x_t if stage.shortcut_from < 0 else spikes[stage.shortcut_from]
                    h = h + full_precision(stage.shortcut(source))
                with torch.autocast(h.device.type, enabled=False):  # the membrane in float32 (neurons/base.py)
                    if state[n] is None:
                        state[n] = stage.neuron.init_state(h)
                    h, state[n] = stage.neuron.step(h, state[n])
                if flows:
                    sums.counts[n] = _add(sums.counts[n], h)
                if net.record and stage.counted:
                    net._count(stage.name, h, batch_dim=0)
                spikes[n] = h
            sums.output = _add(sums.output, self._step_ops(self.out, h, sums.maxpool if flows else None))
        return sums

    @staticmethod
    def _step_ops(stage: Stage, h: torch.Tensor, maxpool: dict | None) -> torch.Tensor:
        for key, m in stage.ops:
            h = full_precision(m(h))  # under autocast: states and sums stay float32 (counts > 256 are exact)
            if maxpool is not None and isinstance(m, MAXPOOL):
                maxpool[key] = _add(maxpool.get(key), h)
        return h

    # --- the equivalent network (eq. 8, 10, 11) -------------------------------------------------------
    def _equivalent_ops(self, stage: Stage, z: torch.Tensor, sums: Flows, maxpool_value: str) -> torch.Tensor:
        for key, m in stage.ops:
            if key in sums.pooled:  # the fast path's sum of this pooling's output: pool(FO) exactly
                z = PoolOfSum.apply(z, sums.pooled[key], m)
                continue
            z = m(z)
            if isinstance(m, MAXPOOL) and maxpool_value == "accumulated":
                z = _StraightThrough.apply(z, sums.maxpool[key], None)  # value: the simulated sum; gradient: op(prev)
        return z

    def flows_in(self, stage: Stage, z: torch.Tensor, fo_prev: torch.Tensor, sums: Flows) -> torch.Tensor:
        """FI^n (eq. 8): the equivalent pass's pre-activation value, or, where that value is max pooling of counts
        (maxpool_value: counts), the ops on the simulated max-pool sums (what the simulation's neuron received)."""
        if self.maxpool_value == "counts" and any(isinstance(m, MAXPOOL) for _, m in stage.ops):
            with torch.no_grad():
                return self._equivalent_ops(stage, fo_prev, sums, "accumulated")
        return z.detach()

    def equivalent(self, sums: Flows, refresh_momentum: float | None = None) -> torch.Tensor:
        """The differentiable pass: values are the simulated counts, gradients follow eq. 10-11. With
        ``refresh_momentum`` each stage's scale factor is updated from this batch's flows before it is used."""
        z = sums.input
        outputs = []  # each stage's equivalent output (a shortcut reads it)
        for n, stage in enumerate(self.stages):
            fo_prev = z.detach()
            z = self._equivalent_ops(stage, z, sums, self.maxpool_value)
            if stage.shortcut is not None:  # residual addition: FI of a sum of linear paths is the sum of their FIs
                z = z + stage.shortcut(sums.input if stage.shortcut_from < 0 else outputs[stage.shortcut_from])
            fi = self.flows_in(stage, z, fo_prev, sums)
            if refresh_momentum is not None:
                self.update_scale(n, fi, sums.counts[n], refresh_momentum)
            # value: the count FO^n (eq. 7); gradient: S^n * 1[FI^n > 0] (eq. 10-11). A stage without FO^n (the fast
            # path's pooled stage) takes FI^n as its value: nothing reads it, the next pooling has its own sum.
            fo = sums.counts[n] if sums.counts[n] is not None else fi
            z = _StraightThrough.apply(z, fo, _compare(torch.gt, fi, 0).mul_(self.scale[n]))
            outputs.append(z)
        out = self._equivalent_ops(self.out, z, sums, self.maxpool_value)
        return _StraightThrough.apply(out, sums.output, None)  # the value is exactly the simulated membrane sum

    # --- scale factors (eq. 12) ---------------------------------------------------------------------
    def batch_scale(self, fi: torch.Tensor, fo: torch.Tensor, pool: bool) -> torch.Tensor:
        """This batch's ratio sum(FO) / sum(FI) for one layer (masked by FI >= FO unless a pool or mask=False)."""
        if self.mask and not pool:
            m = _compare(torch.ge, fi, fo)  # a product, not indexing: no device synchronisation
            fi, fo = fi * m, fo * m
        # under DDP the sums run over the global batch (all ranks), so every rank gets the same S_batch
        s_in, s_out = all_sum(torch.stack([fi.sum(), fo.sum()]))
        return torch.where(s_in < self.eps, torch.ones_like(s_in), s_out / s_in.clamp_min(self.eps))

    @torch.no_grad()
    def update_scale(self, n: int, fi: torch.Tensor, fo: torch.Tensor, momentum: float) -> None:
        """S^n <- momentum * S^n_batch + (1 - momentum) * S^n."""
        new = self.batch_scale(fi, fo, self.stages[n].pool).to(self.scale)
        self.scale[n] = momentum * new + (1 - momentum) * self.scale[n]

    # --- LearningRule -------------------------------------------------------------------------------
    def _scores(self, out_sum: torch.Tensor, encoder, read) -> torch.Tensor:
        # the readout reduces a sequence [T, B, K] over time: hand it T equal steps that sum to the output
        steps = encoder.time_steps
        if self.divide_by == "frames":
            out_sum = out_sum * (steps / encoder.T)
        return read((out_sum / steps).unsqueeze(0).expand(steps, *out_sum.shape))

    def train_scores(self, net, encoder, x, read):
        # a refresh needs every stage's FO; otherwise pooled stages may sum their pooled spikes (the same values)
        sums = self.simulate(net, encoder, x, pooled=self.refresh_momentum is None)
        # the equivalent pass in float32 under autocast too: FI, the mask FI >= FO and S are then float32's
        with torch.autocast(x.device.type, enabled=False):
            return self._scores(self.equivalent(sums, self.refresh_momentum), encoder, read)

    @torch.no_grad()
    def eval_scores(self, net, encoder, x, read):
        return self._scores(self.simulate(net, encoder, x, flows=False).output, encoder, read)

    def extra_repr(self) -> str:
        return (f"stages={self.stage_names}, mask={self.mask}, maxpool_value={self.maxpool_value}, "
                f"divide_by={self.divide_by}, fast={self.fast}")
