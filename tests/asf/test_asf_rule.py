"""ASF-BP: forward values are the step-by-step simulation; gradients are the paper's eq. 9-11 (with the reference's
mask); nothing per time step is kept for the backward; the scale-factor ratio and its masks."""
import pytest
import torch

from snn_repro.encoders import Frames
from snn_repro.network import build_network
from snn_repro.readout import readout
from snn_repro.rules.asf import ASF
from tests.asf.conftest import firing_network

FC_ARCH = {"init": "default", "bias": False, "layers": [
    {"op": "linear", "out": 3}, {"op": "neuron"},
    {"op": "linear", "out": 3}, {"op": "neuron"},
    {"op": "linear", "out": 2}]}
# hand-set weights with several decimals, so that no membrane sum lands exactly on the threshold (a float32 tie
# would make the torch run and the float64 hand simulation disagree about a spike)
W1 = [[0.9137, 0.4021, -0.3089, 0.6173], [0.2213, 0.7039, 0.8147, -0.5081], [-0.6029, 0.3141, 0.5077, 0.9011]]
W2 = [[0.8123, -0.4057, 0.7031], [0.5119, 0.9027, -0.2143], [-0.7061, 0.6089, 0.4013]]
W3 = [[0.6071, -0.3013, 0.9049], [-0.4039, 0.8011, 0.5023]]


def lif(leak=1.0, threshold=1.0):
    return {"_target_": "snn_repro.neurons.LIF", "threshold": threshold, "leak": leak}


def fc_net(leak):
    net = build_network(FC_ARCH, lif(leak), (4,))
    with torch.no_grad():
        for layer, w in zip([net.layers[0], net.layers[2], net.layers[4]], [W1, W2, W3]):
            layer.module.weight.copy_(torch.tensor(w))
    return net


def hand_simulation(frames, weights, leak, vth=1.0):
    """Plain-Python IF/LIF (strict u > Vth, hard reset, leak after reset) of one sample: input sum, (FI, FO) per
    hidden layer and the output membrane sum."""
    n_layers = len(weights) - 1
    u = [[0.0] * len(weights[k]) for k in range(n_layers)]
    fi = [[0.0] * len(weights[k]) for k in range(n_layers)]
    fo = [[0.0] * len(weights[k]) for k in range(n_layers)]
    out = [0.0] * len(weights[-1])
    inp = [0.0] * len(frames[0])
    for x in frames:
        inp = [a + b for a, b in zip(inp, x)]
        for k in range(n_layers):
            cur = [sum(w * v for w, v in zip(row, x)) for row in weights[k]]
            spikes = []
            for i, c in enumerate(cur):
                fi[k][i] += c
                v = u[k][i] + c
                s = 1.0 if v > vth else 0.0
                u[k][i] = leak * v * (1 - s)
                fo[k][i] += s
                spikes.append(s)
            x = spikes
        out = [o + sum(w * v for w, v in zip(row, x)) for o, row in zip(out, weights[-1])]
    return inp, fi, fo, out


def eq_9_11_gradients(inp, fi, fo, out, label, scale, T, vth=1.0):
    """dL/dW for L = ||out/(T Vth) - Y||^2 (sum-reduced, no 1/2), by the paper's eq. 9-11 with the gate mask FI > 0."""
    K = len(out)
    err = [2 * (out[j] / (T * vth) - (1.0 if j == label else 0.0)) / (T * vth) for j in range(K)]
    g_w3 = [[err[j] * fo[1][i] for i in range(3)] for j in range(K)]
    d_fo2 = [sum(err[j] * W3[j][i] for j in range(K)) for i in range(3)]  # eq. 9
    delta2 = [d_fo2[j] * scale[1] * (fi[1][j] > 0) for j in range(3)]
    g_w2 = [[delta2[j] * fo[0][i] for i in range(3)] for j in range(3)]  # eq. 11
    d_fo1 = [sum(delta2[j] * W2[j][i] for j in range(3)) for i in range(3)]  # eq. 10
    delta1 = [d_fo1[j] * scale[0] * (fi[0][j] > 0) for j in range(3)]
    g_w1 = [[delta1[j] * inp[i] for i in range(4)] for j in range(3)]
    return g_w1, g_w2, g_w3


@pytest.mark.parametrize("leak", [1.0, 0.9])
def test_gradient_equals_eq_10_11_on_hand_set_network(leak):
    T = 7
    gen = torch.Generator().manual_seed(1)
    frames = (torch.rand(2, T, 4, generator=gen) < 0.6).float()
    labels = torch.tensor([0, 1])
    net, rule = fc_net(leak), ASF()
    rule.attach(net)
    rule.scale.copy_(torch.tensor([0.7, 0.4]))
    enc = Frames(T)
    scores = rule.train_scores(net, enc, frames, lambda s: readout(s, "membrane", T, net.threshold))
    loss = ((scores - torch.nn.functional.one_hot(labels, 2).float()) ** 2).sum()
    loss.backward()

    want = [torch.zeros(3, 4), torch.zeros(3, 3), torch.zeros(2, 3)]
    for b in range(2):
        inp, fi, fo, out = hand_simulation(frames[b].tolist(), [W1, W2, W3], leak)
        assert torch.allclose(scores[b].detach(), torch.tensor(out) / T, atol=1e-6)
        for k, g in enumerate(eq_9_11_gradients(inp, fi, fo, out, int(labels[b]), [0.7, 0.4], T)):
            want[k] += torch.tensor(g)
    got = [net.layers[i].module.weight.grad for i in (0, 2, 4)]
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-5), (g, w)
    assert rule.scale.tolist() == pytest.approx([0.7, 0.4])  # frozen: no refresh requested


def test_gate_mask_zeroes_gradient_of_neurons_without_input():
    """A neuron whose summed input current is <= 0 passes no gradient back (1[FI > 0])."""
    net, rule = fc_net(1.0), ASF()
    rule.attach(net)
    frames = torch.tensor([[[0.0, 0.0, 1.0, 0.0]] * 5])  # only input 2: FI of hidden unit 0 is -0.3089*5 < 0
    scores = rule.train_scores(net, Frames(5), frames, lambda s: readout(s, "membrane", 5, 1.0))
    scores.sum().backward()
    g = net.layers[0].module.weight.grad
    assert torch.all(g[0] == 0) and g[1, 2] != 0


CONV_ARCH = {"init": "kaiming_normal", "bias": False, "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "neuron"},
    {"op": "avgpool", "k": 2}, {"op": "neuron", "threshold": 0.75},
    {"op": "conv", "out": 6, "k": 3, "pad": 1}, {"op": "neuron"},
    {"op": "maxpool", "k": 2}, {"op": "flatten"},
    {"op": "linear", "out": 5}, {"op": "neuron"},
    {"op": "linear", "out": 3}]}


def conv_setup(T, leak=1.0, seed=0):
    return firing_network(CONV_ARCH, lif(leak), T, seed)


@pytest.mark.parametrize("leak", [1.0, 0.95])
def test_forward_values_equal_layer_by_layer_simulation(leak):
    T = 12
    net, frames = conv_setup(T, leak)
    enc, rule = Frames(T), ASF()
    rule.attach(net)

    def read(s):
        return readout(s, "membrane", T, net.threshold)

    net.record = True
    net.reset_counts()
    with torch.no_grad():
        reference = read(net(enc(frames)))  # the whole sequence, layer by layer (the BPTT path)
    ref_counts = dict(net.spike_counts)
    net.reset_counts()
    scores = rule.train_scores(net, enc, frames, read)
    assert net.spike_counts == pytest.approx(ref_counts)
    assert all(c > 0 for c in ref_counts.values())
    assert torch.allclose(scores.detach(), reference, rtol=1e-5, atol=1e-6)
    assert torch.allclose(rule.eval_scores(net, enc, frames, read), reference, rtol=1e-5, atol=1e-6)


def test_rate_readout_also_matches():
    T = 6
    net, frames = conv_setup(T)
    rule = ASF()
    with torch.no_grad():
        reference = readout(net(Frames(T)(frames)), "rate", T, 1.0)
    got = rule.eval_scores(net, Frames(T), frames, lambda s: readout(s, "rate", T, 1.0))
    assert torch.allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_divide_by_frames_scales_by_repeat():
    T = 4
    net, frames = conv_setup(T)
    read = lambda s: readout(s, "membrane", 3 * T, 1.0)  # noqa: E731
    steps = ASF(divide_by="steps").eval_scores(net, Frames(T, repeat=3), frames, read)
    torch.manual_seed(0)
    per_frame = ASF(divide_by="frames").eval_scores(net, Frames(T, repeat=3), frames, read)
    assert torch.allclose(per_frame, 3 * steps, rtol=1e-5)


def _graph_size(t):
    seen, todo = set(), [t.grad_fn]
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        todo += [g for g, _ in f.next_functions]
    return len(seen)


def test_backward_graph_does_not_grow_with_T():
    sizes = []
    for T in (3, 30):
        net, frames = conv_setup(T)
        scores = ASF().train_scores(net, Frames(T), frames, lambda s: readout(s, "membrane", T, 1.0))
        sizes.append(_graph_size(scores))
    assert sizes[0] == sizes[1]


def test_maxpool_value_options():
    """accumulated: the layer after max pooling sees sum_t maxpool(o_t); counts: maxpool(sum_t o_t) (reference)."""
    T = 10
    grads = {}
    for mode in ("accumulated", "counts"):
        net, frames = conv_setup(T)
        rule = ASF(maxpool_value=mode)
        rule.attach(net)
        sums = rule.simulate(net, Frames(T), frames)
        if mode == "counts":
            # a sum of maxima >= the maximum of sums, strictly somewhere for this input
            mp = torch.nn.functional.max_pool2d(sums.counts[2], 2)
            assert torch.all(sums.maxpool[6] >= mp) and torch.any(sums.maxpool[6] > mp)
        rule.equivalent(sums).sum().backward()
        grads[mode] = net.layers[8].module.weight.grad.clone()
    assert not torch.allclose(grads["accumulated"], grads["counts"])


def test_batch_scale_masks_and_fallback():
    rule = ASF()
    fi = torch.tensor([2.0, 1.0, 0.5, 3.0])
    fo = torch.tensor([1.0, 2.0, 0.0, 1.0])
    assert float(rule.batch_scale(fi, fo, pool=False)) == pytest.approx(2 / 5.5)  # FI >= FO drops unit 1
    assert float(rule.batch_scale(fi, fo, pool=True)) == pytest.approx(4 / 6.5)  # pools: no mask
    assert float(ASF(mask=False).batch_scale(fi, fo, pool=False)) == pytest.approx(4 / 6.5)  # paper eq. 12
    assert float(rule.batch_scale(torch.tensor([5e-4, 0.5]), torch.tensor([0.0, 1.0]), pool=False)) == 1.0
    assert float(rule.batch_scale(torch.tensor([-1.0, 0.5]), torch.tensor([0.0, 1.0]), pool=True)) == 1.0


def test_update_scale_is_an_ema_per_layer():
    net, rule = fc_net(1.0), ASF()
    rule.attach(net)
    rule.scale.copy_(torch.tensor([1.0, 0.5]))
    rule.update_scale(0, torch.tensor([[2.0, 4.0, 1.0]]), torch.tensor([[1.0, 1.0, 2.0]]), 0.6)
    rule.update_scale(1, torch.tensor([[1.0, 0.0, 3.0]]), torch.tensor([[0.0, 0.0, 3.0]]), 0.6)
    assert rule.scale.tolist() == pytest.approx([0.6 * 2 / 6 + 0.4 * 1.0, 0.6 * 3 / 4 + 0.4 * 0.5])


def test_refresh_uses_summed_input_current_of_the_simulation():
    """With momentum 1, S is this batch's masked ratio with FI = sum_t W x_t summed step by step (hand loop)."""
    T = 9
    frames = (torch.rand(4, T, 4, generator=torch.Generator().manual_seed(3)) < 0.7).float()
    net, rule = fc_net(1.0), ASF()
    rule.attach(net)
    rule.refresh_momentum = 1.0
    rule.train_scores(net, Frames(T), frames, lambda s: readout(s, "membrane", T, 1.0))
    fi = [[], []]
    fo = [[], []]
    for b in range(4):
        _, f_in, f_out, _ = hand_simulation(frames[b].tolist(), [W1, W2, W3], 1.0)
        for k in range(2):
            fi[k] += f_in[k]
            fo[k] += f_out[k]
    for k in range(2):
        kept = [(i, o) for i, o in zip(fi[k], fo[k]) if i >= o]
        want = sum(o for _, o in kept) / sum(i for i, _ in kept)
        assert float(rule.scale[k]) == pytest.approx(want, rel=1e-5)


def test_rejects_bias_and_unsupported_ops():
    with pytest.raises(ValueError, match="bias"):
        ASF().attach(build_network({**FC_ARCH, "bias": True}, lif(), (4,)))
    arch = {"layers": [{"op": "linear", "out": 3}, {"op": "relu"}, {"op": "neuron"}, {"op": "linear", "out": 2}]}
    with pytest.raises(ValueError, match="ReLU"):
        ASF().attach(build_network(arch, lif(), (4,)))
