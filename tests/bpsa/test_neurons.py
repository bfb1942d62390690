"""BPSA / BPSA+BPTA / baseline nodes: forward values by hand, gradients against independently written recursions."""
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from snn_repro.neurons.bpsa import BPSA
from tests.conftest import CONF

VTH, LAM = 0.5, 0.9


def neuron_from_conf(name):
    return instantiate(OmegaConf.load(CONF / "neuron" / f"{name}.yaml"))


def grads(neuron, xs, weights, form="steps"):
    """dL/dx_t for L = sum_t weights_t * o_t of one neuron driven by xs, through the loop over ``step`` (the
    reference form) or ``forward`` (whatever sequence form the neuron runs by default)."""
    x = torch.tensor(xs, dtype=torch.float64).view(-1, 1).requires_grad_()
    o = (neuron.forward_steps(x) if form == "steps" else neuron(x)).view(-1)
    (o * torch.tensor(weights, dtype=torch.float64)).sum().backward()
    return o.detach().numpy(), x.grad.view(-1).numpy()


def forward_by_hand(xs):
    u, s, out, us = 0.0, 0.0, [], []
    for x in xs:
        u = s + x
        o = float(u >= VTH)
        out.append(o)
        us.append(u)
        s = LAM * u * (1 - o)
    return np.array(out), np.array(us)


def bpsa_backward(xs, weights, c):
    """The BPSA(+BPTA) gradient of the docstring, written as a reverse recursion over u."""
    o, u = forward_by_hand(xs)
    g = np.where(o == 1, 1 / u, 0.0)
    delta = np.zeros(len(xs) + 1)  # dL/du_t; delta[T] = 0
    for t in reversed(range(len(xs))):
        delta[t] = weights[t] * g[t] + delta[t + 1] * (LAM * (1 - o[t]) + LAM * c * g[t])  # d u_{t+1}/d u_t
    return delta[:-1]


def baseline_backward(xs, weights):
    """STBP with a rectangular surrogate 1[|u - Vth| < 0.5] and the gradient through the reset s = lam*u*(1-o)."""
    o, u = forward_by_hand(xs)
    g = (np.abs(u - VTH) < 0.5).astype(float)
    delta = np.zeros(len(xs) + 1)
    for t in reversed(range(len(xs))):
        delta[t] = weights[t] * g[t] + delta[t + 1] * (LAM * (1 - o[t]) - LAM * u[t] * g[t])
    return delta[:-1]


@pytest.mark.parametrize("name", ["bpsa", "bpsa_bpta"])
def test_bpsa_nodes_share_the_reference_forward(name):
    # u: 0.3, 0.27+0.3=0.57 spike, reset; 0.5 (== Vth: spike, u >= Vth); 0.2, 0.18+0.2=0.38, 0.342+0.2=0.542 spike
    xs = [0.3, 0.3, 0.5, 0.2, 0.2, 0.2]
    o, _ = grads(neuron_from_conf(name), xs, [1.0] * len(xs))
    assert o.tolist() == [0, 1, 1, 0, 0, 1]
    assert o.tolist() == forward_by_hand(xs)[0].tolist()


def test_baseline_fires_strictly_above_threshold():
    """The reference baseline (and the paper's eq. 4) fires on u > 0.5: u == 0.5 does not spike."""
    # u: 0.3, 0.57 spike, reset; 0.5 (== Vth: no spike), 0.45+0.2=0.65 spike, reset; 0.2, 0.18+0.2=0.38
    xs = [0.3, 0.3, 0.5, 0.2, 0.2, 0.2]
    o, _ = grads(neuron_from_conf("bpsa_baseline"), xs, [1.0] * len(xs))
    assert o.tolist() == [0, 1, 0, 1, 0, 0]


def test_spike_gradient_is_one_over_u_at_spikes_and_zero_elsewhere():
    u = torch.tensor([0.1, 0.49, 0.5, 0.8, 2.0, 0.0], dtype=torch.float64, requires_grad=True)
    o, _ = BPSA().step(u, torch.zeros_like(u))
    o.sum().backward()
    assert o.tolist() == [0, 0, 1, 1, 1, 0]
    assert u.grad.tolist() == pytest.approx([0, 0, 1 / 0.5, 1 / 0.8, 1 / 2.0, 0])


@pytest.mark.parametrize("c", [0.2, 0.8])
def test_two_step_gradients_by_hand(c):
    # spike at t1 (u1 = 0.6), reset, spike at t2 (u2 = 0.55); L = o2
    _, g = grads(BPSA(residual=0.0), [0.6, 0.55], [0.0, 1.0])
    assert g.tolist() == pytest.approx([0.0, 1 / 0.55])  # BPSA alone: the reset cuts the temporal path
    _, g = grads(BPSA(residual=c), [0.6, 0.55], [0.0, 1.0])
    assert g.tolist() == pytest.approx([(1 / 0.55) * LAM * c / 0.6, 1 / 0.55])  # BPTA: lambda*c/u1 across the spike
    # no spike at t1 (u1 = 0.3, carried 0.27), spike at t2 (u2 = 0.57): the plain leak path, BPTA adds nothing
    for r in (0.0, c):
        _, g = grads(BPSA(residual=r), [0.3, 0.3], [0.0, 1.0])
        assert g.tolist() == pytest.approx([LAM / 0.57, 1 / 0.57])


@pytest.mark.parametrize("form", ["steps", "forward"])
@pytest.mark.parametrize("name,c", [("bpsa", 0.0), ("bpsa_bpta", 0.2)])
def test_sequence_gradient_matches_reverse_recursion(name, c, form):
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 0.45, 40).tolist()
    weights = rng.normal(size=40).tolist()
    o, g = grads(neuron_from_conf(name), xs, weights, form)
    assert 5 < o.sum() < 35  # the recursion is exercised across several spikes
    assert g == pytest.approx(bpsa_backward(xs, weights, c), rel=1e-10, abs=1e-12)


def test_paper_residual_changes_only_the_cross_spike_terms():
    rng = np.random.default_rng(1)
    xs, weights = rng.uniform(0, 0.45, 30).tolist(), rng.normal(size=30).tolist()
    _, g_code = grads(BPSA(residual=0.2), xs, weights)
    _, g_paper = grads(BPSA(residual=0.8), xs, weights)
    assert g_paper == pytest.approx(bpsa_backward(xs, weights, 0.8), rel=1e-10, abs=1e-12)
    assert not np.allclose(g_code, g_paper)


def test_baseline_rectangular_surrogate_with_gradient_through_reset():
    neuron = neuron_from_conf("bpsa_baseline")
    u = torch.tensor([-0.1, 0.0, 0.01, 0.5, 0.99, 1.0, 1.3], dtype=torch.float64, requires_grad=True)
    o, _ = neuron.step(u, torch.zeros_like(u))
    o.sum().backward()
    assert u.grad.tolist() == [0, 0, 1, 1, 1, 0, 0]  # 1[|u - 0.5| < 0.5]
    rng = np.random.default_rng(2)
    xs, weights = rng.uniform(0, 0.45, 40).tolist(), rng.normal(size=40).tolist()
    _, g = grads(neuron, xs, weights)
    assert g == pytest.approx(baseline_backward(xs, weights), rel=1e-10, abs=1e-12)


def test_config_values_and_validation():
    assert (neuron_from_conf("bpsa").residual, neuron_from_conf("bpsa_bpta").residual) == (0.0, 0.2)
    n = neuron_from_conf("bpsa_bpta")
    assert (n.threshold, n.decay) == (0.5, 0.9)
    with pytest.raises(ValueError, match="positive threshold"):
        BPSA(threshold=0.0)
    with pytest.raises(ValueError, match="residual"):
        BPSA(residual=-0.1)
