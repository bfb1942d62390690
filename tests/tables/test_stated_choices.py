"""Choices the papers leave open or where paper and reference code differ: each table says which one its rows
make, and the rows' composed configs make exactly that one."""
import pytest

from snn_repro.tables.catalog import load_table
from tests.conftest import compose_config


def _rows(name):
    table = load_table(name)
    return table, [compose_config([f"+experiment={r.experiment}", *r.override_args()]) for r in table.rows.values()]


@pytest.mark.parametrize("name", ["map_t1", "map_t2", "map_f6c", "map_f6d"])
def test_map_tables_state_the_code_neuron_and_the_papers_convsyn(name):
    table, cfgs = _rows(name)
    text = table.conventions["paper_vs_code"]
    assert "constant Vth 2 and q 1.2" in text and "Swish" in text and "causal" in text
    for cfg in cfgs:
        n = cfg.neuron
        assert (n.threshold, n.q, n.learn_threshold, n.learn_q, n.input_filter) == (2.0, 1.2, False, False, "none")
        assert n.learn_decay is True and cfg.arch.convsyn.causal is True


@pytest.mark.parametrize("name", ["asf_t1", "asf_t2", "asf_t3", "asf_f4", "apbs_t1", "apbs_t2", "apbs_t3",
                                  "apbs_f4"])
def test_asf_apbs_tables_state_the_loss_without_the_half_and_the_coupled_decay(name):
    table, cfgs = _rows(name)
    assert "without the paper's 1/2" in table.conventions["loss"] and "coupled" in table.conventions["loss"]
    for cfg in cfgs[:3]:
        assert (cfg.loss.name, cfg.loss.reduction, cfg.loss.factor) == ("mse", "sum", 1.0)
        assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.weight_decay == 5e-4


@pytest.mark.parametrize("name", ["aia_t1", "aia_t2"])
def test_aia_tables_state_their_unstated_choices_and_rows_make_them(name):
    table, cfgs = _rows(name)
    for key in ("training", "batch_norm", "cache"):
        assert key in table.conventions, key
    for cfg in cfgs:
        assert (cfg.dataset.batch_size, cfg.trainer.max_epochs, cfg.optimizer.weight_decay) == (32, 100, 0.0)
        assert (cfg.scheduler.name, cfg.scheduler.warmup_epochs) == ("cosine", 0)
        ops = [layer["op"] for layer in cfg.arch.layers]
        assert all(ops[i - 1] == "bn" for i, op in enumerate(ops) if op == "neuron")  # BN before every neuron
        if cfg.neuron._target_.endswith("CachedAIA"):
            assert cfg.neuron.beta_per == "channel" and cfg.neuron.beta_init == 1.0
        if cfg.neuron._target_.endswith("PLIF"):  # the cited implementation's surrogate
            assert (cfg.neuron.surrogate, cfg.neuron.alpha) == ("sigmoid", 4.0)
        else:
            assert (cfg.neuron.surrogate, cfg.neuron.alpha) == ("rectangular", 1.0)
    if name == "aia_t2":
        assert "sigmoid" in table.conventions["plif_surrogate"]


@pytest.mark.parametrize("ds", ["cifar10dvs", "ncaltech101"])
def test_aia_raw_input_option_multiplies_the_gradient_by_the_conv_output(ds):
    import torch

    from snn_repro.network import build_network
    from snn_repro.schema import validate

    cfg = compose_config([f"+experiment=aia/{ds}_aia_raw_input"])
    validate(cfg)
    ops = [layer["op"] for layer in cfg.arch.layers]
    assert cfg.neuron._target_ == "snn_repro.neurons.LIF" and ops.count("associate") == ops.count("conv") == 8
    assert all(ops[i + 1] == "associate" and ops[i + 2] == "bn" for i, op in enumerate(ops) if op == "conv")
    net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
    assoc = [m for m in net.modules() if type(m).__name__ == "Associate"]
    assert len(assoc) == 8
    x = torch.randn(3, 4, requires_grad=True)
    y = assoc[0](x)
    g = torch.randn(3, 4)
    y.backward(g)
    assert torch.equal(y, x) and torch.allclose(x.grad, g * x)
