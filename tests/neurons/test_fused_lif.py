"""The fused IF/LIF sequence form against the reference loop over ``step``: values, gradients, saved memory."""
import itertools

import pytest
import torch

from snn_repro.neurons import IF, LIF
from snn_repro.neurons.backend import reference_steps
from snn_repro.neurons.fused import LIFSequence, fused_form
from snn_repro.neurons.surrogate import SURROGATE_GRADS

# every test of this module runs on each backend of the fused loop (Python, CPU kernels, Triton interpreter)
pytestmark = pytest.mark.usefixtures("kernel_backend")


def quantised_input(T, shape, seed):
    # multiples of 1/8: potentials hit the threshold and the surrogate window edges exactly, so ties are tested
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-4, 11, (T, *shape), generator=g).float() / 8


def grads(neuron, x, s0, fused, seed=1):
    """Values, final state and gradients of a loss that weighs spikes and the final state randomly."""
    x = x.clone().requires_grad_()
    s0 = None if s0 is None else s0.clone().requires_grad_()
    neuron.fused = fused
    out, sT = neuron.forward_state(x, s0)
    g = torch.Generator().manual_seed(seed)
    w_out, w_s = torch.randn(out.shape, generator=g), torch.randn(sT.shape, generator=g)
    ((out * w_out).sum() + (sT * w_s).sum()).backward()
    return out.detach(), sT.detach(), x.grad, None if s0 is None else s0.grad


CASES = list(itertools.product(["IF", "LIF"], [True, False], list(SURROGATE_GRADS), [False, True]))


@pytest.mark.parametrize("kind,strict,surrogate,detach", CASES)
@pytest.mark.parametrize("with_state", [False, True])
def test_fused_equals_steps(kind, strict, surrogate, detach, with_state):
    kw = dict(threshold=0.75, strict=strict, surrogate=surrogate, alpha=0.5, detach_reset=detach)
    neuron = IF(**kw) if kind == "IF" else LIF(leak=0.75, **kw)
    x = quantised_input(17, (3, 5), seed=len(surrogate) + 2 * strict + detach)
    s0 = quantised_input(1, (3, 5), seed=7)[0] if with_state else None
    fo, fs, fgx, fgs = grads(neuron, x, s0, fused=True)
    ro, rs, rgx, rgs = grads(neuron, x, s0, fused=False)
    assert 0 < fo.mean() < 1  # both spiking and silent steps occur
    assert torch.equal(fo, ro) and torch.equal(fs, rs)
    torch.testing.assert_close(fgx, rgx, rtol=1e-5, atol=1e-6)
    assert (rgx != 0).float().mean() > 0.2  # the surrogate passes gradient at a good share of the steps
    if with_state:
        torch.testing.assert_close(fgs, rgs, rtol=1e-5, atol=1e-6)


def test_fused_equals_steps_on_random_continuous_input():
    torch.manual_seed(0)
    x = torch.randn(50, 4, 6, 6) * 0.6 + 0.3
    neuron = LIF(threshold=1.0, leak=0.9, surrogate="sigmoid", alpha=4.0)
    fo, fs, fgx, _ = grads(neuron, x, None, fused=True)
    ro, rs, rgx, _ = grads(neuron, x, None, fused=False)
    assert torch.equal(fo, ro) and torch.equal(fs, rs)
    torch.testing.assert_close(fgx, rgx, rtol=1e-5, atol=1e-6)


def saved_tensors(neuron, x):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        neuron(x.requires_grad_())
    return saved


def test_fused_saves_one_potential_per_step_or_two_bits():
    x = quantised_input(12, (2, 3), seed=0)
    saved = saved_tensors(LIF(), x.clone())
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.float32, (12, 2, 3))]
    # detached reset + rectangular surrogate: spike and window bits in one uint8 per element
    saved = saved_tensors(LIF(detach_reset=True), x.clone())
    assert [(t.dtype, tuple(t.shape)) for t in saved] == [(torch.uint8, (12, 2, 3))]
    # the reference loop keeps several float tensors per step
    neuron = LIF()
    neuron.fused = False
    assert sum(t.numel() * t.element_size() for t in saved_tensors(neuron, x.clone())) >= 3 * 12 * 6 * 4


def test_uint8_codes_hold_spike_and_window():
    # u = 0.5, 1.1, 1.6 with Vth 1, alpha 1 (window |u - 1| < 0.5): codes 0 (silent, outside), 3 (spike, inside),
    # 1 (spike, outside)
    x = torch.tensor([[0.5, 1.1, 1.6]])
    saved = saved_tensors(IF(detach_reset=True), x)
    assert saved[0].tolist() == [[0, 3, 1]]


def test_switches_choose_the_path():
    neuron, x = LIF(), torch.rand(4, 2, requires_grad=True)
    assert neuron(x).grad_fn.name().startswith("LIFSequence")
    with reference_steps():
        assert fused_form(neuron) is None
        assert not neuron(x).grad_fn.name().startswith("LIFSequence")
    neuron.fused = False
    assert not neuron(x).grad_fn.name().startswith("LIFSequence")

    class NewStep(LIF):  # a subclass that changes step does not inherit the fused form written for LIF's
        def step(self, x, state):
            return super().step(2 * x, state)

    class SameStep(LIF):  # one that keeps LIF's step keeps its fused form
        pass

    assert fused_form(NewStep()) is None
    assert not NewStep()(x).grad_fn.name().startswith("LIFSequence")
    assert SameStep()(x).grad_fn.name().startswith("LIFSequence")
