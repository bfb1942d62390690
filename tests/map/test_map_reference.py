"""MAP-SNN settings that follow the reference code: bias init of the Linear layers, the SHD framing variant."""
import torch

from snn_repro.network import build_network
from tests.conftest import compose_config


def test_bias_init_default_keeps_pytorch_biases_and_zeros_is_the_default():
    arch = {"init": "xavier_normal", "bias": True, "layers": [{"op": "linear", "out": 400}]}
    net = build_network(arch, {"_target_": "snn_repro.neurons.LIF"}, (700,))
    assert torch.equal(net.layers[0].module.bias, torch.zeros(400))
    torch.manual_seed(0)
    kept = build_network({**arch, "bias_init": "default"}, {"_target_": "snn_repro.neurons.LIF"}, (700,))
    bias, bound = kept.layers[0].module.bias, 1 / 700 ** 0.5  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert bias.abs().max() <= bound and bias.abs().max() > 0.9 * bound and bias.std() > 0.4 * bound


def test_shd_reference_framing_variant_bins_50_x_16ms_from_the_first_spike():
    import numpy as np

    from snn_repro.data.events import make_events
    from snn_repro.data.framing import frame_events

    ref = compose_config(["+experiment=map/shd_msp", "dataset=shd_ref"]).dataset
    default = compose_config(["+experiment=map/shd_msp"]).dataset
    assert (ref.T, ref.framing.value, ref.options.window_origin) == (50, 16, "first_event")
    assert (default.T, default.options.window_origin) == (88, "zero")
    # a recording whose first spike comes at 100 ms: the reference's first bin starts there
    ev = make_events([3, 3, 5], 0, [100_000, 115_999, 100_000 + 16_000 * 50], 0)
    frames = frame_events(ev, (700, 1, 1), int(ref.T), "window_ms", 16, origin=ref.options.window_origin)
    assert frames.shape == (50, 700) and frames[0, 3] == 2 and frames.sum() == 2  # the last is past 800 ms



def test_rows_keep_pytorch_biases_and_the_reference_decay_clamp():
    """The reference code initialises only the weights (Xavier-normal) and clamps the decay by relu6(6d)/6."""
    for exp in ("map/shd_msp", "map/nmnist_msp", "map/shd_ssp", "map/nmnist_msp_convsyn"):
        cfg = compose_config([f"+experiment={exp}"])
        assert cfg.arch.bias_init == "default" and cfg.neuron.decay_clamp == "hardtanh", exp
        torch.manual_seed(0)
        net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert linears and all(m.bias.abs().max() > 0 for m in linears), exp
        assert all(n.decay_clamp == "hardtanh" for _, n in net.neuron_layers())


def test_nmnist_rows_use_the_reference_subset_and_top_left_crop():
    for exp in ("map/nmnist_msp", "map/nmnist_ssp", "map/nmnist_msp_convsyn"):
        ds = compose_config([f"+experiment={exp}"]).dataset
        assert (ds.spatial.mode, ds.spatial.size, ds.spatial.crop_origin) == ("crop", 32, "top_left"), exp
        assert ds.split.mode == "balanced_subset"
        assert ds.options.subset_train_per_class == ds.options.subset_test_per_class == "smallest"
