"""The ASF-BP step loop reads nothing back to the host: a read (``.item()``, ``bool(t)``, ``float(t)``, ``.tolist()``,
``.cpu()``) waits for the GPU to finish everything queued, so one per layer and time step makes a GPU run
launch-bound. On the CPU the same reads are made to raise while a training step, the energy / NeuroBench counters
and the finite-loss watch run; the counts and scores equal those of a run without the guard."""
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch

from snn_repro.callbacks.energy import EnergyCounter
from snn_repro.metrics import NeuroBenchMetrics
from snn_repro.module import NonFiniteLoss
from snn_repro.train import build_module
from tests.conftest import compose_config

READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextmanager
def no_host_reads():
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def refuse(name):
        def read(*args, **kwargs):
            raise AssertionError(f"host read torch.Tensor.{name} inside the step loop")
        return read

    try:
        for name in READS:
            setattr(torch.Tensor, name, refuse(name))
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


def asf_module(*overrides):
    cfg = compose_config(["learning_rule=asf", "neuron=lif", "arch.bias=false", "encoder.T=6", *overrides])
    module = build_module(cfg)
    module.log = lambda *args, **kwargs: None  # Lightning's logging needs a trainer; it reads nothing either
    return module


def batch(module, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_training_step_and_counters_read_nothing_back():
    torch.manual_seed(0)
    module = asf_module()
    x, y = batch(module)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    rng = torch.get_rng_state()
    reference = module.rule.train_scores(module.net, module.encoder, x, module.read)
    # the same step under the guard, with every per-step counter attached
    module.load_state_dict(state)
    torch.set_rng_state(rng)
    host = SimpleNamespace(net=module.net, encoder=module.encoder, log=lambda *a, **k: None)
    energy, neurobench = EnergyCounter(), NeuroBenchMetrics()
    energy.on_test_epoch_start(None, host)
    neurobench.on_test_epoch_start(None, host)
    with no_host_reads():
        scores = module.rule.train_scores(module.net, module.encoder, x, module.read)
        loss = module._shared((x, y), "train")
        loss.backward()
    assert torch.equal(scores, reference)
    for cb in (energy, neurobench):
        cb.on_test_batch_end(None, host, None, (x, y), 0)
        cb.on_test_epoch_end(None, host)
    assert host.energy_summary["ac_snn"] > 0 and host.neurobench_summary["synops"]["effective_acs"] > 0


def test_a_non_finite_loss_is_found_after_the_loop_with_its_step():
    module = asf_module("loss.factor=nan")
    x, y = batch(module)
    with no_host_reads():
        for _ in range(2):
            module._shared((x, y), "train")  # recorded on the device, not raised here
    with pytest.raises(NonFiniteLoss, match=r"^train loss is nan at epoch 0, step 0: lower the learning rate"):
        module.check_finite()
    with pytest.raises(NonFiniteLoss):
        module.on_save_checkpoint({})  # never a checkpoint after it


def test_a_finite_run_passes_the_check():
    module = asf_module()
    module._shared(batch(module), "train")
    module.check_finite()


def test_convsyn_reads_its_lags_on_the_host_not_from_the_buffer():
    from snn_repro.ops.convsyn import ConvSyn

    torch.manual_seed(0)
    op = ConvSyn(3, kernel_size=5, causal=False)
    x = torch.rand(8, 2, 3, 4)
    expected = op(x)
    with no_host_reads():
        got = op(x)
    assert torch.equal(got, expected)
    # the lags the host reads are the buffer's: out[t] = sum_l C[l] * x[t - l] at t = 4 by hand
    kernel = op.kernel()
    by_hand = sum(kernel[i][None, :, None] * x[4 - lag] for i, lag in enumerate(op.lags.tolist()))
    assert torch.allclose(got[4], by_hand, atol=1e-6)
