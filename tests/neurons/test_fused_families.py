"""Fused sequence forms of BPSA, AIA, PLIF and MAP-SNN against their reference loops over ``step``: values, and
gradients of the input, the initial state and every parameter, on random inputs."""
import math

import pytest
import torch

from snn_repro.neurons import LIF
from snn_repro.neurons import aia, bpsa, plif
from snn_repro.neurons import map as mapsnn
from snn_repro.neurons.fused import fused_form

# every test of this module runs on each backend of the fused loop (Python, CPU kernels, Triton interpreter)
pytestmark = pytest.mark.usefixtures("kernel_backend")


def compare(make, x, with_state, atol=1e-6, exact_state=True):
    """``exact_state`` False: the final states agree to float rounding (transcendental functions of two libraries);
    the spikes must still be equal."""
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        neuron = make()
        with torch.no_grad():  # move learnable parameters off their initial values, identically in both runs
            for p in neuron.parameters():
                p.add_(torch.rand_like(p) * 0.2)
        neuron.fused = fused
        assert (fused_form(neuron) is not None) == fused or not fused
        xs = x.clone().requires_grad_()
        s0 = (torch.rand_like(x[0]) * 0.5).requires_grad_() if with_state else None
        out, sT = neuron.forward_state(xs, s0)
        g = torch.Generator().manual_seed(1)
        loss = (out * torch.randn(out.shape, generator=g)).sum() + (sT * torch.randn(sT.shape, generator=g)).sum()
        loss.backward()
        grads = {"x": xs.grad, **({"s0": s0.grad} if with_state else {})}
        grads.update({n: p.grad for n, p in neuron.named_parameters()})
        results.append((out.detach(), sT.detach(), grads))
    (fo, fs, fg), (ro, rs, rg) = results
    assert torch.equal(fo, ro)
    if exact_state:
        assert torch.equal(fs, rs)
    else:
        torch.testing.assert_close(fs, rs, rtol=1e-6, atol=1e-6)
    assert 0 < (fo != 0).float().mean() < 1
    assert fg.keys() == rg.keys()
    for k in rg:
        assert rg[k] is not None and rg[k].abs().sum() > 0, k
        torch.testing.assert_close(fg[k], rg[k], rtol=1e-5, atol=atol, msg=k)


def rand_seq(T=15, shape=(3, 4, 2, 2), low=-0.3, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((T, *shape), generator=g) * (high - low) + low


@pytest.mark.parametrize("residual", [0.0, 0.2])
@pytest.mark.parametrize("with_state", [False, True])
def test_bpsa(residual, with_state):
    compare(lambda: bpsa.BPSA(threshold=0.5, decay=0.9, residual=residual), rand_seq(low=0.0, high=0.6), with_state)


@pytest.mark.parametrize("forward_f", ["identity", "half_square"])
@pytest.mark.parametrize("detach", [False, True])  # float u / uint8 codes (rectangular surrogate)
def test_aia(forward_f, detach, kernel_backend):
    # identity: the associative gradient x_t * dL/du_t inside the fused LIF, against the step form's autograd
    compare(lambda: aia.AIA(threshold=0.6, leak=0.5, detach_reset=detach, forward_f=forward_f),
            rand_seq(low=-0.5, high=1.5), with_state=True)


@pytest.mark.parametrize("beta_per", ["channel", "layer"])
@pytest.mark.parametrize("step_shape", [(4, 2, 2), (4,)])  # conv feature maps, linear features
@pytest.mark.parametrize("detach,surrogate", [(False, "sigmoid"), (True, "rectangular")])  # float u / uint8 codes
@pytest.mark.parametrize("with_state", [False, True])
def test_cached_aia(beta_per, step_shape, detach, surrogate, with_state):
    def make():
        n = aia.CachedAIA(threshold=0.6, leak=0.5, surrogate=surrogate, alpha=4.0 if surrogate == "sigmoid" else 1.0,
                          detach_reset=detach, beta_per=beta_per)
        n.build(step_shape)
        return n

    compare(make, rand_seq(shape=(3, *step_shape)), with_state)


def test_cached_aia_beta_gradient_is_eq9():
    # eq. 9: dL/dbeta_c = sum over t, batch and pixels of x * dL/du, with dL/du from the plain LIF neuron on beta * x
    x = rand_seq(T=9, shape=(3, 4, 2, 2))
    n = aia.CachedAIA(threshold=0.6, leak=0.5, surrogate="sigmoid", alpha=4.0)
    n.build((4, 2, 2))
    with torch.no_grad():
        n.beta.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0]))
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    (n(x) * w).sum().backward()
    u = (n.beta.detach().reshape(4, 1, 1) * x).requires_grad_()
    (LIF(threshold=0.6, leak=0.5, surrogate="sigmoid", alpha=4.0)(u) * w).sum().backward()
    torch.testing.assert_close(n.beta.grad, (u.grad * x).sum((0, 1, 3, 4)), rtol=1e-5, atol=1e-6)


def test_cached_aia_runs_as_one_function_on_the_unscaled_input():
    # beta * x is formed a step at a time inside the LIF function: its graph node takes x itself (no product of
    # the whole sequence before it) and beta, and saves the potentials, x (for dL/dbeta) and beta, nothing else
    x = rand_seq(T=6, shape=(3, 4, 2, 2)).requires_grad_()
    n = aia.CachedAIA()
    n.build((4, 2, 2))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = n(x)
    inputs = [f for f, _ in out.grad_fn.next_functions if f is not None]
    assert out.grad_fn.name().startswith("LIFSequence")
    assert getattr(inputs[0], "variable", None) is x  # AccumulateGrad of x itself
    assert sorted(tuple(t.shape) for t in saved) == [(4, 1, 1), tuple(x.shape), tuple(x.shape)]
    assert any(t.data_ptr() == x.data_ptr() for t in saved)


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("detach,surrogate", [(False, "rectangular"), (True, "atan")])
@pytest.mark.parametrize("with_state", [False, True])
def test_plif(decay_input, detach, surrogate, with_state):
    compare(lambda: plif.PLIF(threshold=0.5, decay_input=decay_input, detach_reset=detach, surrogate=surrogate),
            rand_seq(low=-0.3, high=1.2), with_state)


@pytest.mark.parametrize("pattern", mapsnn.PATTERNS)
@pytest.mark.parametrize("input_filter", ["none", "swish"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("size", [(4, 2, 2), None])  # a value per neuron, one per layer
def test_map(pattern, input_filter, with_state, size, kernel_backend):
    def make():
        return mapsnn.MAPNeuron(pattern=pattern, size=size, threshold=1.0, q=1.5, decay=0.5,
                                learn_threshold=True, learn_q=True, learn_decay=True, input_filter=input_filter)

    # SFA's log and q^s and the swish filter's exp: the kernels' math library rounds them, not torch's
    exact = kernel_backend == "python" or (pattern != "sfa" and input_filter == "none")
    # the parameters' gradients are sums of T * B terms of both signs, summed in another order
    compare(make, rand_seq(low=-1.0, high=4.0), with_state, atol=1e-5, exact_state=exact)


@pytest.mark.parametrize("pattern", mapsnn.PATTERNS)
@pytest.mark.parametrize("low, high", [(-1.0, 4.0), (-0.5, 1.2)])  # most elements firing / most quiet
def test_map_with_only_the_decay_learned(pattern, low, high):
    # the tables' setting (Vth and q constant): the kernels then skip the sums of dL/dVth and dL/dq
    def make():
        return mapsnn.MAPNeuron(pattern=pattern, size=(4, 2, 2), threshold=1.0, q=1.5, decay=0.5,
                                learn_threshold=False, learn_q=False, learn_decay=True)

    compare(make, rand_seq(low=low, high=high), with_state=True, atol=1e-5, exact_state=pattern != "sfa")


def test_map_sfa_near_the_quiet_bound():
    # the SFA kernels take an element with relu(m) / Vth < 0.999 as firing nothing without computing its count;
    # potentials from just below that bound to just below Vth (where the count would become 1)
    v_th = 1.25
    ratio = torch.linspace(0.9980, 0.9995, 48).view(1, 3, 4, 2, 2)
    x = torch.cat([ratio * v_th, rand_seq(T=4, low=-0.2, high=0.3)])  # the later steps add a little each

    def make():
        return mapsnn.MAPNeuron(pattern="sfa", size=(4, 2, 2), threshold=v_th, q=1.2, decay=1.0,
                                learn_threshold=True, learn_q=True, learn_decay=False)

    compare(make, x, with_state=False, atol=1e-4, exact_state=False)


def test_sfa_quiet_bound_leaves_a_margin_above_rounding():
    # why 0.999 is safe for any q the clamp allows (q >= 1.001): at the largest float below it, n* stays below 1
    # by far more than the few ulp by which two libraries' log differ
    q = torch.logspace(math.log10(1.001), 6, 2000)
    below = torch.nextafter(torch.tensor(0.999), torch.tensor(0.0))
    n = torch.log(below * (q - 1) + 1) / torch.log(q)
    assert (1 - n).min() > 5e-5


@pytest.mark.parametrize("pattern", mapsnn.PATTERNS)
def test_map_kernel_saves_only_the_potential(pattern, kernel_backend):
    # with a kernel, the MAP layer keeps one float32 tensor shaped like the input (m_t) and the neuron-sized
    # parameters, not the step recomputation's x and states
    if kernel_backend == "python":
        pytest.skip("the Python path is the step recomputation")
    x = rand_seq(T=6, low=-1.0, high=4.0).requires_grad_()
    n = mapsnn.MAPNeuron(pattern=pattern, size=(4, 2, 2), threshold=1.0)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = n(x)
    assert out.grad_fn.name().startswith("MAPSequence")
    big = [t for t in saved if t.numel() >= x.numel()]
    assert [(tuple(t.shape), t.dtype) for t in big] == [(tuple(x.shape), torch.float32)]
    assert not any(t.data_ptr() == x.data_ptr() for t in big)


def test_every_family_in_the_tree_has_a_fused_form():
    from snn_repro.neurons.lif import IF, LIF

    for cls in (LIF, IF, bpsa.BPSA, aia.AIA, aia.CachedAIA, plif.PLIF, mapsnn.MAPNeuron):
        # its own method, not one inherited from a parent whose step it changes
        owner = next(c for c in cls.__mro__ if "fused_sequence" in c.__dict__)
        assert callable(cls.fused_sequence) and ("step" not in cls.__dict__ or owner is cls), cls
