"""ASF-BP: backpropagation through the accumulated spiking flow (Wu et al., AAAI 2021).

A training step has two parts:

1. Simulation, time-outermost and without autograd: every step runs through all layers once, and per *stage* (the
   ops between two neurons, ending in a neuron) the spike count FO = sum_t o_t is accumulated. Nothing per time
   step is kept, so memory does not grow with T. The summed input current FI = sum_t x_t is not accumulated: the
   ops are linear, so FI = ops(FO of the previous stage) (paper eq. 8), which the equivalent pass computes anyway
   (equal to the per-step sum up to float rounding; an accumulation would cost as much as a neuron update).
2. One differentiable pass of the *equivalent network*: z = ops(FO of the previous stage) recomputed with autograd,
   then a gate whose value is the exact count FO and whose gradient is S_l * 1[FI > 0] (paper eq. 10-11, the mask
   as in the reference code). The output layer never fires: scores = W_out * FO_last / (Vth * T), which is what the
   configured readout computes on the summed output (``readout: membrane``).

Ops inside a stage must be linear in the per-step input for op(FO_prev) == FI to hold: bias-free conv and linear,
average pooling, flatten. Max pooling on per-step spikes is not linear; its accumulated per-step output is kept as
the value that the next op sees and the gradient is routed through max pooling of the previous equivalent value
(``maxpool_value: accumulated``). The reference code instead feeds max pooling of the counts to the next layer
(``maxpool_value: counts``); the two differ only in the value the following layer's weight gradient sees.

A spiking residual block (``snn_repro.ops.resblock``: y = N2(conv2(N1(conv1(x))) + shortcut(x))) is two stages:
conv1 -> N1, then conv2 -> N2 with the shortcut of the block's input added. FI of a sum of linear paths is the sum of
their FIs, FI_2 = conv2(FO_1) + shortcut(FO_in), so the equivalent pass adds the shortcut of the input stage's
equivalent value and the gradient reaches both paths. The block's convs must be linear too (no batch norm, no bias).

Outside scale-factor refreshes, a stage whose count the next stage reads only through 2x2 (power-of-two) average
pooling does not sum its count: the simulation sums the pooled spikes instead (a quarter of the size), which is
pooling of FO bit for bit on integer counts, and the equivalent pass takes it as the pooling's value. A refresh needs
every FO (the mask FI >= FO is elementwise), so refresh steps sum them all. Parametrised weights (APBS) are computed
once per simulation (``torch.nn.utils.parametrize.cached``), not once per time step.

Scale factors S_l (one per stage) live in the ``scale`` buffer, so they are saved in checkpoints. They change only
while ``refresh_momentum`` is set (by ``snn_repro.callbacks.scale_factor.ScaleFactorRefresh``, which decides the
epochs and batches): S <- m * S_batch + (1 - m) * S, computed before this batch's backward, as the reference does.
S_batch = sum(FO[mask]) / sum(FI[mask]) over the batch (the global batch under DDP) with mask = FI >= FO for synaptic stages (reference;
``mask: false`` gives the paper's eq. 12 without a mask) and no mask for spiking pools; 1 where sum(FI) < eps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from snn_repro.distributed import all_sum
from snn_repro.layers import TimeFolded
from snn_repro.neurons.base import Neuron, full_precision
from snn_repro.neurons.lif import IF, LIF
from snn_repro.ops.resblock import SpikingResBlock
from snn_repro.rules.base import LearningRule

# per-step ops for which op(sum_t x_t) == sum_t op(x_t)
_LINEAR = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, nn.Identity)
# per-step ops whose accumulated output is recorded during the simulation
_ACCUMULATED = (nn.MaxPool2d,)


@dataclass
class Stage:
    """Keys of the ops feeding one neuron layer, and that neuron's key. A key is a layer index, or (layer index,
    attribute) for a module inside a residual block (``_module``)."""

    ops: list
    neuron: int | tuple | None  # None for the output ops after the last neuron
    pool: bool = False  # a spiking pool (only pooling ops): its scale factor is never masked
    accumulated: list[int] = field(default_factory=list)  # ops among ``ops`` that are recorded (max pooling)
    skip: tuple | None = None  # a residual block's shortcut, added to the ops' output
    skip_from: int = -1  # the stage whose count the shortcut reads (-1: the input)


def _module(net, key) -> nn.Module:
    """The per-step module at ``key``: the module a layer wraps, or (layer index, attribute) in a residual block."""
    return getattr(net.layers[key[0]], key[1]) if isinstance(key, tuple) else net.layers[key].module


def _neuron(net, key) -> nn.Module:
    return getattr(net.layers[key[0]], key[1]) if isinstance(key, tuple) else net.layers[key]


def _residual_part(block: nn.Module, name: str, index: int) -> None:
    part = getattr(block, name)
    for m in (part if isinstance(part, nn.Sequential) else [part]):
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            raise ValueError(f"asf: layer {index} ({name}) has a bias; ASF-BP needs bias-free synapses")
        if not isinstance(m, _LINEAR):
            raise ValueError(f"asf: layer {index} ({name}: {type(m).__name__}) is not linear; ASF-BP takes residual "
                             "blocks of bias-free convs only (bn: false)")


def _per_step_module(layer: nn.Module, index: int) -> nn.Module:
    if not isinstance(layer, TimeFolded):
        raise ValueError(f"asf: layer {index} ({type(layer).__name__}) works along time; ASF-BP needs per-step ops")
    m = layer.module
    if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
        raise ValueError(f"asf: layer {index} has a bias; ASF-BP needs bias-free synapses (set arch bias: false)")
    if not isinstance(m, _LINEAR + _ACCUMULATED):
        raise ValueError(f"asf: layer {index} ({type(m).__name__}) is not supported; supported: conv, linear, "
                         "avgpool, maxpool, flatten")
    return m


def _inplace_neuron(neuron: nn.Module):
    """(init_state, step) of a no-grad IF/LIF step (hard reset, leak after reset) that updates the membrane and a
    spike buffer in place: the same values as ``LIF.step`` (u - u*o is 0 where fired and u where silent, then the
    leak), with a fraction of its memory traffic, which on a CPU is most of a neuron update. ``step(x, state,
    count)`` also adds the spikes to ``count`` where one is given (the first step's spikes are its initial value).
    None for other neuron types, which run their own ``init_state`` and ``step``."""
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


class _PoolOfSum(torch.autograd.Function):
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


def _pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _compare(op, a, b) -> torch.Tensor:
    """``op(a, b).to(a.dtype)``, written as 1.0 / 0.0 straight into a float tensor (half the passes)."""
    return op(a, b, out=torch.empty_like(a))


def _exact_pool(m: nn.Module) -> bool:
    """Average pooling whose per-window divisor is one power of two everywhere: on spike counts (integers) its
    output is exact, so sum_t pool(o_t) == pool(sum_t o_t) bit for bit."""
    if not isinstance(m, nn.AvgPool2d) or m.ceil_mode or m.divisor_override is not None:
        return False
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    area = k[0] * k[1]
    return pad == (0, 0) and area & (area - 1) == 0


class _StraightThrough(torch.autograd.Function):
    """Value: ``value`` (a simulated sum, exactly); gradient w.r.t. ``z``: the incoming gradient times ``gain``
    (None: passed on unchanged). The same gradient as ``g = z * gain; g + (value - g).detach()``, without that
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


class ASF(nn.Module, LearningRule):
    def __init__(self, mask: bool = True, eps: float = 1e-3, maxpool_value: str = "accumulated",
                 divide_by: str = "steps", time_block: int = 1):
        """``divide_by``: the readout divides by all simulated steps (``steps``: T * repeat) or by the number of
        input frames T (``frames``: the reference's "inject 3 times" on CIFAR10-DVS). ``time_block`` (k > 1): the
        simulation runs k steps at a time through each stage (``simulate``), k times fewer kernel launches."""
        super().__init__()
        if not isinstance(time_block, int) or time_block < 1:
            raise ValueError(f"time_block must be an integer >= 1, got {time_block!r}")
        self.time_block = time_block
        if maxpool_value not in ("accumulated", "counts"):
            raise ValueError(f"maxpool_value must be 'accumulated' or 'counts', got {maxpool_value!r}")
        if divide_by not in ("steps", "frames"):
            raise ValueError(f"divide_by must be 'steps' or 'frames', got {divide_by!r}")
        self.mask, self.eps, self.maxpool_value, self.divide_by = mask, eps, maxpool_value, divide_by
        self.stages: list[Stage] = []
        self.out: Stage = Stage([], None)
        self.stage_names: list[str] = []
        #: EMA momentum of the next scale-factor update; None: frozen (set by the ScaleFactorRefresh callback)
        self.refresh_momentum: float | None = None
        self.register_buffer("scale", torch.ones(0))

    # --- structure -----------------------------------------------------------------------------
    def attach(self, net) -> None:
        """Split the network into stages; one scale factor per neuron layer, starting at 1 (reference)."""
        self.stages, pending = [], []
        for i, layer in enumerate(net.layers):
            if isinstance(layer, SpikingResBlock):
                if pending:
                    raise ValueError(f"asf: layer {i} (resblock) must follow a neuron layer or the input directly")
                for name in ("conv1", "conv2", "shortcut"):
                    _residual_part(layer, name, i)
                block_input = len(self.stages) - 1
                self.stages.append(Stage([(i, "conv1")], (i, "neuron1")))
                self.stages.append(Stage([(i, "conv2")], (i, "neuron2"), skip=(i, "shortcut"), skip_from=block_input))
            elif isinstance(layer, Neuron):
                mods = [net.layers[j].module for j in pending]
                pool = bool(mods) and all(isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) for m in mods)
                acc = [j for j in pending if isinstance(net.layers[j].module, _ACCUMULATED)]
                self.stages.append(Stage(pending, i, pool, acc))
                pending = []
            else:
                _per_step_module(layer, i)
                pending.append(i)
        if not self.stages:
            raise ValueError("asf: the network has no neuron layer")
        for s in self.stages:  # the equivalent pass has no route to a neuron's own parameters: they would not train
            neuron = _neuron(net, s.neuron)
            learnable = [n for n, p in neuron.named_parameters() if p.requires_grad]
            if learnable:
                from snn_repro.schema import ConfigError

                where = net.names[s.neuron] if isinstance(s.neuron, int) else f"{net.names[s.neuron[0]]}.{s.neuron[1]}"
                raise ConfigError(f"learning_rule=asf: neuron layer {where} "
                                  f"({type(neuron).__name__}) has learnable parameters "
                                  f"({', '.join(learnable)}) that ASF-BP gives no gradient; use a neuron without "
                                  f"them (lif, if) or learning_rule=bptt")
        acc = [j for j in pending if isinstance(net.layers[j].module, _ACCUMULATED)]
        self.out = Stage(pending, None, False, acc)
        self.stage_names = [f"{net.names[s.neuron[0]]}.{s.neuron[1]}" if isinstance(s.neuron, tuple)
                            else net.names[s.neuron] for s in self.stages]
        self.scale = torch.ones(len(self.stages), device=self.scale.device)

    def scale_factors(self) -> dict[str, float]:
        return {name: float(s) for name, s in zip(self.stage_names, self.scale)}

    # --- simulation (eq. 7) -------------------------------------------------------------------------
    @torch.no_grad()
    def simulate_reference(self, net, encoder, x) -> dict:
        """Eq. 7 as the paper writes it: every step runs through all stages (ops, then the neuron's own ``step``),
        and per stage the count FO^n = sum_t o_t^n is summed; also the input sum, the recorded (max-pool) op outputs
        and the output layer's membrane sum, which the equivalent pass needs. ``simulate`` is its speed path (the
        same sums: tests/asf/test_asf_sim_paths.py)."""
        if not self.stages:
            self.attach(net)
        sums: dict = {}
        states: list = [None] * len(self.stages)
        spikes: list = [None] * len(self.stages)

        def add(key, value):
            sums[key] = value.clone() if key not in sums else sums[key] + value

        def ops(stage, h):
            for j in stage.ops:
                h = _module(net, j)(h)
                if j in stage.accumulated:
                    add(("acc", j), h)
            return h

        for x_t in encoder.steps(x):
            add("input", x_t)
            h = x_t
            for k, stage in enumerate(self.stages):
                h = ops(stage, h)
                if stage.skip is not None:  # a residual block's second stage: its input flow plus the shortcut's
                    h = h + _module(net, stage.skip)(x_t if stage.skip_from < 0 else spikes[stage.skip_from])
                neuron = _neuron(net, stage.neuron)
                if states[k] is None:
                    states[k] = neuron.init_state(h)
                h, states[k] = neuron.step(h, states[k])
                add(("FO", k), h)
                spikes[k] = h
            add("output", ops(self.out, h))
        return sums

    def pooled_stages(self, net) -> list[int]:
        """Stages whose count FO the next stage reads only through exact average pooling (``_exact_pool``): there
        ``simulate(pooled=True)`` sums the pooled spikes, a quarter of the size for 2x2 pooling, instead of FO."""
        shortcut_inputs = {s.skip_from for s in self.stages if s.skip is not None}  # read by a shortcut: FO is kept
        return [k for k, nxt in enumerate(self.stages[1:]) if not nxt.accumulated and nxt.ops
                and k not in shortcut_inputs and _exact_pool(_module(net, nxt.ops[0]))]

    @torch.no_grad()
    def simulate(self, net, encoder, x, flows: bool = True, pooled: bool = False) -> dict:
        """The speed path of ``simulate_reference`` (eq. 7), with the same sums: IF/LIF stages update their state
        in place (``_inplace_neuron``), and the options below. All T steps, time-outermost, accumulating the summed output and, with ``flows``, the input, the spike
        count FO per stage and the recorded op outputs. Returns those sums only (FI is recomputed from them:
        eq. 8, FI = W * FO_prev). With ``pooled``, a stage in ``pooled_stages`` has no FO; the next stage's
        pooling output is summed instead (``("acc", j)``, equal to pooling FO: the equivalent pass uses it as that
        op's value), which serves every use of FO except a scale-factor refresh. Parametrised weights (e.g.
        APBS) are computed once for all steps (``torch.nn.utils.parametrize.cached``), not once per step."""
        if not self.stages:
            self.attach(net)
        pooled_set = set(self.pooled_stages(net)) if flows and pooled else set()
        with parametrize.cached():
            if self.time_block > 1:
                return self._simulate_blocks(net, encoder, x, flows, pooled_set)
            return self._simulate(net, encoder, x, flows, pooled_set)

    def _recorded_ops(self, flows: bool, pooled: set) -> set:
        """The ops whose summed output a simulation keeps: max pooling (with ``flows``), and the pooling after a
        pooled stage."""
        recorded = {j for s in self.stages + [self.out] for j in s.accumulated} if flows else set()
        return recorded | {self.stages[k + 1].ops[0] for k in pooled}

    def _shortcuts(self, net) -> dict:
        """Per stage with a residual shortcut: (the shortcut module, the stage whose output it reads; -1: input)."""
        return {k: (_module(net, s.skip), s.skip_from) for k, s in enumerate(self.stages) if s.skip is not None}

    def _simulate(self, net, encoder, x, flows: bool, pooled: set) -> dict:
        layers = net.layers
        recorded = self._recorded_ops(flows, pooled)
        # per stage: its ops as (module, recorded), the neuron's (init_state, step, in-place), whether its count is
        # summed, its name (None inside a residual block, whose neurons ``forward`` does not count either)
        plan = []
        for k, s in enumerate(self.stages):
            neuron = _neuron(net, s.neuron)
            fast = _inplace_neuron(neuron)
            init_state, step = fast or (neuron.init_state, neuron.step)
            ops = [(_module(net, j), j in recorded) for j in s.ops]
            plan.append((ops, s.ops, init_state, step, fast is not None, flows and k not in pooled,
                         None if isinstance(s.neuron, tuple) else net.names[s.neuron]))
        out_ops = [(layers[j].module, j in recorded) for j in self.out.ops]
        shortcuts = self._shortcuts(net)
        spikes: list = [None] * len(self.stages)  # this step's output of each stage (a shortcut reads it)
        states: list = [None] * len(self.stages)
        counts: list = [None] * len(self.stages)
        sums: dict = {}
        count = net._count if net.record else None

        def add(key, value):
            acc = sums.get(key)
            if acc is None:
                sums[key] = value.clone()
            else:
                acc.add_(value)

        def run_ops(ops, index, h):
            for (m, rec), j in zip(ops, index):
                h = full_precision(m(h))  # under autocast: states and sums stay float32 (counts > 256 are exact)
                if rec:
                    add(("acc", j), h)
            return h

        for h in encoder.steps(x):
            step_input = h
            if flows:
                add("input", h)
            for k, (ops, index, init_state, step, fast, summed, name) in enumerate(plan):
                h = run_ops(ops, index, h)
                if k in shortcuts:
                    shortcut, source = shortcuts[k]
                    h = h + full_precision(shortcut(step_input if source < 0 else spikes[source]))
                if states[k] is None:
                    states[k] = init_state(h)
                if fast and counts[k] is not None:
                    h, states[k] = step(h, states[k], counts[k])  # the count added inside the neuron update
                else:
                    with torch.autocast(h.device.type, enabled=False):
                        h, states[k] = step(h, states[k])
                    if summed:
                        if counts[k] is None:
                            counts[k] = h.clone()
                        else:
                            counts[k].add_(h)
                if count is not None and name is not None:
                    count(name, h, batch_dim=0)
                spikes[k] = h
            add("output", run_ops(out_ops, self.out.ops, h))
        for k, c in enumerate(counts):
            if c is not None:
                sums["FO", k] = c
        return sums

    def _simulate_blocks(self, net, encoder, x, flows: bool, pooled: set) -> dict:
        """``_simulate`` with ``time_block`` = k steps at a time: the encoder's next k steps go through every stage
        as one sequence [k, B, ...] (each op once on the k steps folded into the batch, the neuron's fused form over
        the k steps from the state the previous block left), so each stage launches its kernels T / k times instead
        of T times; on a GPU, where a step of a small layer is launch-bound, that is most of the simulation's time.
        The counts are the same (spikes are equal where the ops give equal values on a folded batch: exactly in
        float64, up to the ops' rounding in float32); sums of analog values round in another order."""
        recorded, shortcuts = self._recorded_ops(flows, pooled), self._shortcuts(net)
        count = net._count if net.record else None
        states: list = [None] * len(self.stages)
        spikes: list = [None] * len(self.stages)  # this block's output of each stage (a shortcut reads it)
        sums: dict = {}

        def add(key, seq):  # the sum over the block's steps, added to the sum so far
            block_sum = seq.sum(0)
            if key in sums:
                sums[key].add_(block_sum)
            else:
                sums[key] = block_sum

        def folded(m, seq):  # a per-step op on all the block's steps at once
            return full_precision(m(seq.flatten(0, 1))).unflatten(0, seq.shape[:2])

        def run_ops(index, h):
            for j in index:
                h = folded(_module(net, j), h)
                if j in recorded:
                    add(("acc", j), h)
            return h

        steps = iter(encoder.steps(x))
        while block := [x_t for _, x_t in zip(range(self.time_block), steps)]:
            block_input = h = torch.stack(block)
            if flows:
                add("input", h)
            for k, stage in enumerate(self.stages):
                h = run_ops(stage.ops, h)
                if k in shortcuts:
                    shortcut, source = shortcuts[k]
                    h = h + folded(shortcut, block_input if source < 0 else spikes[source])
                h, states[k] = _neuron(net, stage.neuron).forward_state(h, states[k])
                if flows and k not in pooled:
                    add(("FO", k), h)
                if count is not None and not isinstance(stage.neuron, tuple):
                    count(net.names[stage.neuron], h, batch_dim=1)
                spikes[k] = h
            add("output", run_ops(self.out.ops, h))
        return sums

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
    def update_scale(self, k: int, fi: torch.Tensor, fo: torch.Tensor, momentum: float) -> None:
        """S_k <- momentum * S_batch + (1 - momentum) * S_k."""
        new = self.batch_scale(fi, fo, self.stages[k].pool).to(self.scale)
        self.scale[k] = momentum * new + (1 - momentum) * self.scale[k]

    # --- the equivalent network (eq. 8-11) -------------------------------------------------------
    def _ops(self, net, stage: Stage, z: torch.Tensor, sums: dict, mode: str) -> torch.Tensor:
        for j in stage.ops:
            m = _module(net, j)
            if ("acc", j) in sums and j not in stage.accumulated:  # a pooled stage's sum (simulate(pooled=True))
                z = _PoolOfSum.apply(z, sums["acc", j], m)
                continue
            z = m(z)
            if j in stage.accumulated and mode == "accumulated":
                z = _StraightThrough.apply(z, sums["acc", j], None)  # value: the simulated sum; gradient: op(prev)
        return z

    def flows_in(self, net, k: int, z: torch.Tensor, fo_prev: torch.Tensor, sums: dict) -> torch.Tensor:
        """FI of stage k: the equivalent pass's pre-activation value (eq. 8), or, where that value is max pooling of
        counts (maxpool_value: counts), the ops on the simulated max-pool sums."""
        stage = self.stages[k]
        if stage.accumulated and self.maxpool_value != "accumulated":
            with torch.no_grad():
                return self._ops(net, stage, fo_prev, sums, "accumulated")
        return z.detach()

    def equivalent(self, net, sums: dict, refresh_momentum: float | None = None) -> torch.Tensor:
        """The differentiable pass: values are the simulated counts, gradients follow eq. 10-11. With
        ``refresh_momentum`` each stage's scale factor is updated from this batch's flows before it is used."""
        z = sums["input"]
        outputs = []  # each stage's equivalent output (a shortcut reads it)
        for k, stage in enumerate(self.stages):
            fo_prev = z.detach()
            z = self._ops(net, stage, z, sums, self.maxpool_value)
            if stage.skip is not None:  # residual addition: FI of a sum of linear paths is the sum of their FIs
                z = z + _module(net, stage.skip)(sums["input"] if stage.skip_from < 0 else outputs[stage.skip_from])
            fi = self.flows_in(net, k, z, fo_prev, sums)
            if refresh_momentum is not None:
                self.update_scale(k, fi, sums["FO", k], refresh_momentum)
            # value: the count FO; gradient: S_k * 1[FI > 0]. Without FO (a pooled stage: only the next op's summed
            # output is used, as its value), the value is FI, which nothing reads.
            z = _StraightThrough.apply(z, sums.get(("FO", k), fi), _compare(torch.gt, fi, 0).mul_(self.scale[k]))
            outputs.append(z)
        out = self._ops(net, self.out, z, sums, self.maxpool_value)
        return _StraightThrough.apply(out, sums["output"], None)  # the value is exactly the simulated membrane sum

    def _scores(self, out_sum: torch.Tensor, encoder, read) -> torch.Tensor:
        # the readout reduces a sequence [T, B, K] over time: hand it T equal steps that sum to the output
        steps = encoder.time_steps
        if self.divide_by == "frames":
            out_sum = out_sum * (steps / encoder.T)
        return read((out_sum / steps).unsqueeze(0).expand(steps, *out_sum.shape))

    # --- LearningRule -------------------------------------------------------------------------------
    def train_scores(self, net, encoder, x, read):
        # a refresh needs every stage's FO; otherwise pooled stages sum their pooled spikes (the same values)
        sums = self.simulate(net, encoder, x, pooled=self.refresh_momentum is None)
        # the equivalent pass in float32 under autocast too: FI, the mask FI >= FO and S are then float32's
        with torch.autocast(x.device.type, enabled=False):
            return self._scores(self.equivalent(net, sums, self.refresh_momentum), encoder, read)

    @torch.no_grad()
    def eval_scores(self, net, encoder, x, read):
        return self._scores(self.simulate(net, encoder, x, flows=False)["output"], encoder, read)

    def extra_repr(self) -> str:
        return (f"stages={self.stage_names}, mask={self.mask}, maxpool_value={self.maxpool_value}, "
                f"divide_by={self.divide_by}")
