"""Encoders, readouts, losses and schedules against hand-computed values."""
import math

import pytest
import torch

from snn_repro.encoders import Direct, Frames, Poisson, SignedPoisson
from snn_repro.readout import loss_fn, readout
from snn_repro.schedules import build_scheduler


def test_poisson_rate_matches_scaled_intensity():
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.5, 1.0, 2.0]])
    spikes = Poisson(T=4000, scale=0.5)(x)  # ASF-BP MNIST: a spike where |x|/2 > U(0,1)
    assert spikes.shape == (4000, 1, 4)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    rate = spikes.mean(0)[0]
    assert rate[0] == 0 and rate[3] == 1.0  # probability clamps at 1
    assert rate[1].item() == pytest.approx(0.25, abs=0.03) and rate[2].item() == pytest.approx(0.5, abs=0.03)


def test_signed_poisson_keeps_sign_of_normalised_input():
    torch.manual_seed(0)
    x = torch.full((1, 3, 1, 1), 0.2)
    enc = SignedPoisson(T=3000, mean=[0.5, 0.2, 0.0], std=[1.0, 1.0, 0.5])
    rate = enc(x).mean(0).view(3)
    # normalised values: -0.3, 0.0, 0.4 -> mean spike value -0.3, 0, 0.4
    assert rate.tolist() == pytest.approx([-0.3, 0.0, 0.4], abs=0.03)


def test_normalisation_statistics_leave_host_memory_once(monkeypatch):
    enc = Direct(T=2, mean=[0.5, 0.2], std=[2.0, 0.5])
    x = torch.tensor([1.5, 0.7]).view(1, 2, 1, 1)
    assert enc.normalise(x).view(2).tolist() == pytest.approx([0.5, 1.0])

    def no_copy(*args, **kwargs):
        raise AssertionError("mean/std copied from host memory again")

    monkeypatch.setattr(torch, "as_tensor", no_copy)  # a later batch on the same device reuses the tensors
    assert enc.normalise(3 * x).view(2).tolist() == pytest.approx([2.0, 3.8])


def test_direct_repeats_the_input_and_steps_equal_call():
    x = torch.rand(2, 1, 3, 3)
    enc = Direct(T=5)
    seq = enc(x)
    assert seq.shape == (5, 2, 1, 3, 3) and torch.equal(seq[3], x)
    assert torch.equal(torch.stack(list(enc.steps(x))), seq)


def test_frames_transpose_and_repeat():
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)  # [B, T, features]
    enc = Frames(T=3, repeat=2)
    seq = enc(x)
    assert enc.time_steps == 6 and seq.shape == (6, 2, 2)
    assert torch.equal(seq[4], x[:, 1]) and torch.equal(seq[1], x[:, 1])
    assert torch.equal(torch.stack(list(enc.steps(x))), seq)
    with pytest.raises(ValueError, match="T=4"):
        Frames(T=4)(x)


def test_readouts_and_losses_by_hand():
    out = torch.tensor([[[1.0, 3.0]], [[2.0, 1.0]]])  # [T=2, B=1, K=2]
    assert readout(out, "membrane", time_steps=2, threshold=2.0).tolist() == [[0.75, 1.0]]
    assert readout(out, "rate", 2, 1.0).tolist() == [[1.5, 2.0]]
    assert readout(out, "count", 2, 1.0).tolist() == [[3.0, 4.0]]
    scores, target = torch.tensor([[0.75, 1.0]]), torch.tensor([0])
    # sum-reduced MSE against one-hot [1, 0]: 0.25^2 + 1^2
    assert loss_fn(scores, target, "mse", "sum").item() == pytest.approx(1.0625)
    assert loss_fn(scores, target, "mse", "sum", factor=0.5).item() == pytest.approx(0.53125)
    assert loss_fn(scores, target, "mse", "mean").item() == pytest.approx(1.0625 / 2)
    expected_ce = -math.log(math.exp(0.75) / (math.exp(0.75) + math.exp(1.0)))
    assert loss_fn(scores, target, "ce").item() == pytest.approx(expected_ce)


def _lrs(name, epochs, **kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, name, max_epochs=epochs, **kw)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_multistep_schedule_is_cumulative():
    lrs = _lrs("multistep", 40, milestones=[10, 20, 30], gamma=0.2)
    assert lrs[9] == 1.0 and lrs[10] == pytest.approx(0.2) and lrs[20] == pytest.approx(0.04)
    assert lrs[39] == pytest.approx(0.008)


def test_cosine_with_linear_warmup():
    lrs = _lrs("cosine", 15, warmup_epochs=5)
    assert lrs[:5] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])
    cos = [0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(10)]
    assert lrs[5:] == pytest.approx(cos)


def test_cosine_with_reciprocal_warmup_is_the_bp_sta_codes():
    """BP-STA's adjust_learning_rate: lr / (warmup - epoch) in the warm-up epochs, then the same cosine."""
    lrs = _lrs("cosine", 15, warmup_epochs=5, warmup="reciprocal")
    assert lrs[:5] == pytest.approx([0.2, 0.25, 1 / 3, 0.5, 1.0])
    assert lrs[5:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(10)])
    with pytest.raises(ValueError, match="warm-up"):
        _lrs("cosine", 15, warmup_epochs=5, warmup="exp")
