"""BPSA settings that follow the reference code (per-step BatchNorm) and the rows of the paper text (alpha 0.8)."""
import torch
from torch import nn

from snn_repro.layers import TimeFolded
from snn_repro.network import build_network
from snn_repro.tables.catalog import job_args
from tests.conftest import compose_config

ARCH = {"bias": True, "layers": [{"op": "conv", "out": 3, "k": 3, "pad": 1}, {"op": "bn", "per_step": True},
                                 {"op": "relu"}]}


def test_per_step_bn_equals_a_loop_over_steps_and_differs_from_folded():
    torch.manual_seed(0)
    net = build_network(ARCH, {"_target_": "snn_repro.neurons.LIF"}, (2, 5, 5), fold_time=True)
    conv, bn = net.layers[0].module, net.layers[1].module
    assert net.layers[0].fold_time and not net.layers[1].fold_time
    ref = nn.BatchNorm2d(3)
    ref.load_state_dict(bn.state_dict())
    x = torch.randn(4, 6, 2, 5, 5) + torch.linspace(0, 3, 4).view(4, 1, 1, 1, 1)  # a different mean at each step
    y = net(x)
    with torch.no_grad():
        expected = torch.stack([torch.relu(ref(conv(x_t))) for x_t in x])
    torch.testing.assert_close(y, expected)
    # one running-stat update per step: T updates, each with that step's statistics
    assert int(bn.num_batches_tracked) == 4
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    # folded statistics would normalise every step with the mean over all steps
    folded = nn.BatchNorm2d(3)
    with torch.no_grad():
        y_folded = torch.relu(folded(conv(x.flatten(0, 1)))).unflatten(0, (4, 6))
    assert not torch.allclose(y, y_folded, atol=1e-3)


def test_bpsa_rows_use_per_step_batch_norm():
    for experiment in ["bpsa/cifar10dvs", "bpsa/nmnist", "bpsa/mnist", "bpsa/dvsgesture_large", "bpsa/nmnist_middle"]:
        cfg = compose_config(job_args(experiment))
        assert cfg.arch.bn_per_step is True, experiment
        net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape, fold_time=cfg.fold_time)
        norms = [l for l in net.layers if isinstance(l, TimeFolded) and isinstance(l.module, nn.BatchNorm2d)]
        assert norms and all(not l.fold_time for l in norms), experiment
        assert any(l.fold_time for l in net.layers if isinstance(l, TimeFolded) and isinstance(l.module, nn.Conv2d))


def test_alpha_08_rows_differ_from_their_reference_row_only_by_the_bpta_coefficient():
    from omegaconf import OmegaConf

    for ds in ("dvsgesture", "cifar10dvs"):
        ref = OmegaConf.to_container(compose_config([f"+experiment=bpsa/{ds}"]), resolve=True)
        paper = OmegaConf.to_container(compose_config(job_args(f"bpsa/{ds}_alpha08")), resolve=True)
        assert (ref["neuron"]["residual"], paper["neuron"]["residual"]) == (0.2, 0.8)
        for cfg in (ref, paper):
            cfg["neuron"].pop("residual")
            cfg.pop("tags")
            cfg.pop("meta", None)
        assert ref == paper, ds
