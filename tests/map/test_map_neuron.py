"""MAP-SNN neurons: spike counts and reset amounts computed by hand, the straight-through gradient against its
formula, decay clamping, per-neuron parameters reaching the optimizer."""
import math

import pytest
import torch

from snn_repro.neurons.map import PATTERNS, MAPNeuron


def one_step(neuron, m):
    """One step from rest with input m: (spikes, state after reset and decay)."""
    m = torch.tensor(m, dtype=torch.float64)
    neuron = neuron.double()
    return neuron.step(m, torch.zeros_like(m))


def test_linear_counts_and_resets():
    neuron = MAPNeuron("linear", threshold=2.0, decay=1.0)  # decay 1: the state is m - reset
    s, u = one_step(neuron, [-1.0, 0.0, 1.9, 2.0, 3.9, 4.1, 7.5])
    assert s.tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert u.tolist() == pytest.approx([-1.0, 0.0, 1.9, 0.0, 1.9, 0.1, 1.5])


def test_sfa_counts_and_geometric_resets():
    # Vth 2, q 1.2: the k-th spike of a step costs 2 * 1.2^(k-1), so s spikes need 2, 4.4, 7.28, 10.736 in all
    neuron = MAPNeuron("sfa", threshold=2.0, q=1.2, decay=1.0)
    m = [-0.5, 1.0, 2.1, 4.3, 4.5, 7.2, 7.3, 10.8]
    s, u = one_step(neuron, m)
    assert s.tolist() == [0, 0, 1, 1, 2, 2, 3, 4]
    consumed = {0: 0.0, 1: 2.0, 2: 4.4, 3: 7.28, 4: 10.736}
    # q is stored in float32 (1.2 -> 1.20000005), hence the tolerance
    assert u.tolist() == pytest.approx([v - consumed[int(k)] for v, k in zip(m, s.tolist())], abs=1e-5)


def test_sfa_fires_fewer_spikes_than_linear_for_large_potentials():
    m = [20.0]
    assert one_step(MAPNeuron("linear"), m)[0].item() == 10  # floor(20 / 2)
    assert one_step(MAPNeuron("sfa"), m)[0].item() == 6  # log_1.2(20/2*0.2 + 1) = log_1.2(3) = 6.03


def test_ssp_at_most_one_spike_and_hard_reset():
    neuron = MAPNeuron("ssp", threshold=2.0, decay=0.5)
    s, u = one_step(neuron, [1.9, 2.0, 9.0])
    assert s.tolist() == [0, 1, 1]
    assert u.tolist() == pytest.approx([0.95, 0.0, 0.0])


def test_recurrence_over_steps_with_decay_after_reset():
    x = torch.tensor([[3.0], [3.0], [0.5]])
    # linear, Vth 2, decay 0.5: m 3 -> s 1, u (3-2)*0.5 = 0.5; m 3.5 -> s 1, u 0.75; m 1.25 -> s 0
    assert MAPNeuron("linear", decay=0.5)(x).view(-1).tolist() == [1, 1, 0]
    # SFA: m 5 -> s 2 (4.4 <= 5 < 7.28), u (5 - 4.4)*0.5 = 0.3; m 5.3 -> s 2, u 0.45; m 0.95 -> s 0
    neuron = MAPNeuron("sfa", decay=0.5).double()
    state = torch.zeros(1, dtype=torch.float64)
    expected = [(2, 0.3), (2, 0.45), (0, 0.475)]
    for xt, (s_exp, u_exp) in zip([5.0, 5.0, 0.5], expected):
        s, state = neuron.step(torch.tensor([xt], dtype=torch.float64), state)
        assert s.item() == s_exp and state.item() == pytest.approx(u_exp)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_straight_through_gradient_of_the_spike_count(pattern):
    vth, q = 2.0, 1.2
    ms = [-1.0, 0.5, 1.9, 2.5, 5.0, 12.0]
    m = torch.tensor(ms, dtype=torch.float64, requires_grad=True)
    neuron = MAPNeuron(pattern, threshold=vth, q=q).double()
    s, _ = neuron.spikes_and_reset(m)
    s.sum().backward()

    def ds_dm(v):  # ds/dn* = 1 where m > 0, times dn*/dm
        if v <= 0:
            return 0.0
        if pattern == "sfa":
            return (q - 1) / (vth * math.log(q) * (v / vth * (q - 1) + 1))
        return 1 / vth

    assert m.grad.tolist() == pytest.approx([ds_dm(v) for v in ms])


def test_reset_is_not_detached():
    # state = (m - Vth (q^s - 1)/(q - 1)) * d  =>  d state/dm = d (1 - Vth q^s ln q / (q - 1) * ds/dm)
    vth, q, d, mv = 2.0, 1.2, 0.5, 5.0
    m = torch.tensor([mv], dtype=torch.float64, requires_grad=True)
    neuron = MAPNeuron("sfa", threshold=vth, q=q, decay=d).double()
    _, u = neuron.step(m, torch.zeros_like(m))
    u.sum().backward()
    s = 2
    ds_dm = (q - 1) / (vth * math.log(q) * (mv / vth * (q - 1) + 1))
    assert m.grad.item() == pytest.approx(d * (1 - vth * q ** s * math.log(q) / (q - 1) * ds_dm))


@pytest.mark.parametrize("raw,applied,grad", [(1.5, 1.0, 0.0), (-0.3, 0.0, 0.0), (0.4, 0.4, 1.0)])
def test_decay_clamped_to_unit_interval(raw, applied, grad):
    neuron = MAPNeuron("linear", size=1, decay=raw)
    x = torch.tensor([[1.0]])  # no spike: state = 1.0 * clamp(decay)
    _, u = neuron.step(x, torch.zeros_like(x))
    assert u.item() == pytest.approx(applied)
    u.sum().backward()
    assert neuron.decay.grad.item() == pytest.approx(grad)  # d u / d decay = m inside [0, 1], 0 outside


@pytest.mark.parametrize("decay_clamp,grads", [("hardtanh", [0.0, 1.0, 0.0]), ("clamp", [1.0, 1.0, 1.0])])
def test_decay_gradient_at_exactly_zero_and_one(decay_clamp, grads):
    """The reference's relu6(6 d) / 6 has zero gradient at d = 0 and d = 1; torch.clamp passes 1 there."""
    neuron = MAPNeuron("linear", size=3, decay=0.5, decay_clamp=decay_clamp)
    with torch.no_grad():
        neuron.decay.copy_(torch.tensor([0.0, 0.5, 1.0]))
    x = torch.ones(1, 3)  # no spike: state = 1.0 * clamp(decay)
    _, u = neuron.step(x, torch.zeros_like(x))
    assert u.tolist() == [[0.0, 0.5, 1.0]]
    u.sum().backward()
    assert neuron.decay.grad.tolist() == grads
    d = torch.tensor([0.0, 0.5, 1.0], requires_grad=True)
    torch.nn.functional.relu6(6 * d).div(6).sum().backward()
    assert (d.grad.tolist() == grads) == (decay_clamp == "hardtanh")


def test_per_neuron_parameters_and_learnable_options():
    neuron = MAPNeuron("sfa", size=3, learn_threshold=True, learn_q=True)
    params = dict(neuron.named_parameters())
    assert set(params) == {"v_th", "q", "decay"} and all(p.shape == (3,) for p in params.values())
    # the published code's default: only the decay is learned
    assert {n for n, _ in MAPNeuron("sfa", size=3).named_parameters()} == {"decay"}
    # per-neuron thresholds act per neuron: Vth (1, 2, 4) on m = 4 gives 4, 2, 1 linear spikes
    lin = MAPNeuron("linear", size=3, learn_threshold=True)
    with torch.no_grad():
        lin.v_th.copy_(torch.tensor([1.0, 2.0, 4.0]))
    s, _ = lin.step(torch.full((1, 3), 4.0), torch.zeros(1, 3))
    assert s.tolist() == [[4, 2, 1]]
    s.sum().backward()
    assert lin.v_th.grad.tolist() == pytest.approx([-4.0, -1.0, -0.25])  # d(m/Vth)/dVth = -m/Vth^2


def test_swish_input_filter():
    neuron = MAPNeuron("linear", input_filter="swish", filter_beta=10.0, decay=1.0)
    x = torch.tensor([-1.0, 0.3])
    _, u = neuron.step(x, torch.zeros_like(x))
    swish = [v / (1 + math.exp(-10 * v)) for v in (-1.0, 0.3)]
    assert u.tolist() == pytest.approx(swish)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="pattern"):
        MAPNeuron("burst")
    with pytest.raises(ValueError, match="q > 1"):
        MAPNeuron("sfa", q=1.0)


def test_network_counts_every_spike_and_optimizer_sees_decays(cfg_factory):
    from snn_repro.network import build_network
    from snn_repro.readout import readout

    cfg = cfg_factory("+experiment=map/shd_msp", "arch.convsyn.enabled=true")
    net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
    decays = [p for n, p in net.named_parameters() if n.endswith("decay")]
    assert [tuple(p.shape) for p in decays] == [(400,), (400,), (20,)]
    assert sum(n.endswith(("a", "b", "delay")) for n, _ in net.named_parameters()) == 6  # two ConvSyn layers
    torch.manual_seed(0)
    x = torch.poisson(torch.full((6, 2, 700), 3.0))
    with torch.no_grad():
        hidden = net.layers[1](net.layers[0](x))  # first Linear + MAP neurons
        net.record = True
        net(x)
    assert hidden.max() > 1  # several spikes in one step
    assert net.spike_counts["1_neuron"] == pytest.approx(float(hidden.sum()))  # every spike counted
    assert readout(hidden, "count", 6, net.threshold).tolist() == hidden.sum(0).tolist()
