"""MAP-SNN settings that follow the reference code: bias init of the Linear layers, the SHD framing variant."""
import torch

from snn_repro.network import build_network
from snn_repro.tables.catalog import job_args
from tests.conftest import compose_config


def test_bias_init_default_keeps_pytorch_biases_and_zeros_is_the_default():
    arch = {"init": "xavier_normal", "bias": True, "layers": [{"op": "linear", "out": 400}]}
    net = build_network(arch, {"_target_": "snn_repro.neurons.LIF"}, (700,))
    assert torch.equal(net.layers[0].module.bias, torch.zeros(400))
    torch.manual_seed(0)
    kept = build_network({**arch, "bias_init": "default"}, {"_target_": "snn_repro.neurons.LIF"}, (700,))
    bias, bound = kept.layers[0].module.bias, 1 / 700 ** 0.5  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert bias.abs().max() <= bound and bias.abs().max() > 0.9 * bound and bias.std() > 0.4 * bound


def test_shd_rows_frame_the_reference_window_and_the_loaders_slice_is_an_option():
    """MAP-SNN's data.py asks snntorch's spikedata.SHD for 50 steps of 16 ms: 800 ms from the first spike, the
    default; what that loader does with it (events of [0, 50 ms) only, tests/data/test_readers.py frames them) is
    the option options.slice_ms=50; the whole recording from t = 0 is dataset=shd."""
    import numpy as np

    from snn_repro.data.events import make_events
    from snn_repro.data.framing import frame_events

    for exp in ("map/shd_msp", "map/shd_ssp", "map/shd_msp_convsyn", "map/f6b_msp", "map/f6c_linear",
                "map/f6d_fixed_kernel"):
        ref = compose_config(job_args(exp)).dataset
        assert (ref.T, ref.framing.value, ref.options.window_origin, ref.options.slice_ms) == \
            (50, 16, "first_event", None), exp
    whole = compose_config(["+experiment=map/shd_msp", "dataset=shd"]).dataset
    assert (whole.T, whole.options.window_origin, whole.options.get("slice_ms")) == (88, "zero", None)
    literal = compose_config(["+experiment=map/shd_msp", "dataset.options.slice_ms=50"]).dataset
    assert literal.options.slice_ms == 50 and literal.T == 50  # snntorch's loader as called: the first 50 ms
    # the default: a recording whose first spike comes at 100 ms: the first bin starts there, 800 ms in all
    ev = make_events([3, 3, 5], 0, [100_000, 115_999, 100_000 + 16_000 * 50], 0)
    frames = frame_events(ev, (700, 1, 1), 50, "window_ms", 16, origin="first_event")
    assert frames.shape == (50, 700) and frames[0, 3] == 2 and frames.sum() == 2  # the last is past 800 ms
    assert np.all(frames[1:] == 0)
